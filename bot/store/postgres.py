"""The PostgreSQL store: async psycopg 3 over a connection pool, shared by many replicas.

Same semantics as the SQLite reference. Where SQLite has one writer at a time, here
concurrency is handled explicitly: jobs are claimed with `FOR UPDATE SKIP LOCKED`, a
coalescing key is decided under a transaction-scoped advisory lock, ledger appends and
migrations take advisory locks of their own.

Every moment stored (leases, lock expiry, retry and ledger times) is the database
server's `clock_timestamp()`, read in the transaction that uses it: replicas on hosts
whose clocks disagree still agree on whether a lease has run out.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from bot.core.audit import AuditEntry, AuditRecord
from bot.core.ledgerchain import LedgerKey, LedgerRow, chain
from bot.store.ledger import COLUMNS, entry_text, ledger_row, record_from_row
from bot.store.migrations import MIGRATIONS, VERSION_TABLE, refuse_unknown, statements
from bot.store.pgintake import DeliveryGroups
from bot.store.ports import (
    AppliedCommit,
    Delivery,
    DriftCheckRecord,
    Job,
    JobState,
    NewJob,
    StoreError,
)
from bot.store.statements import (
    CLAIM_JOB,
    CLAIM_MERGE,
    COMPLETE_JOB,
    FAIL_JOB,
    INSERT_AUDIT,
    IS_SUPERSEDED,
    JOB_COUNTS,
    LAST_APPLIED,
    MERGE_CLAIMANT,
    PING,
    RECORD_APPLIED,
    RECORD_DRIFT_CHECK,
    RECORD_MIGRATION,
    RELEASE_LOCK,
    RENEW_LEASE,
    REQUEUE_DEAD_JOB,
    SCHEMA_VERSIONS,
    SUPERSEDE_WAITING,
    TAKE_LOCK,
    postgres,
)
from bot.store.statusreads import StatusQueries, drift_check_row

_SERIAL = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
_JOB_COLUMNS = "id, kind, payload, coalesce_key, attempts, holder, state, last_error"
# Advisory lock ids of this bot (two 32-bit keys: the bot's, then the purpose).
_BOT = 0x6B6F7073  # arbitrary ("kops"): keeps these ids apart from other applications' locks
_MIGRATIONS, _LEDGER = 1, 2
_NOW = "SELECT extract(epoch FROM clock_timestamp())::double precision"
_CANDIDATES = 8  # jobs looked at per claim; the rest wait for the next one
# One candidate at a time, so a claim holds row locks only on jobs it looked at.
_CLAIMABLE = """
SELECT id, coalesce_key FROM jobs AS j
WHERE j.id <> ALL(%(passed)s)
  AND ((j.state = 'ready' AND j.run_after <= %(now)s)
       OR (j.state = 'running' AND j.lease_until < %(now)s))
  AND (j.coalesce_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM jobs AS r
        WHERE r.coalesce_key = j.coalesce_key AND r.id <> j.id
          AND r.state = 'running' AND r.lease_until >= %(now)s))
ORDER BY j.id
LIMIT 1
FOR UPDATE OF j SKIP LOCKED
"""
# Run after the key's advisory lock is held, in a fresh snapshot: it sees every claim
# committed before, so two replicas never both start a job of one key.
_KEY_IS_FREE = """
SELECT NOT EXISTS (
    SELECT 1 FROM jobs AS r
    WHERE r.coalesce_key = %(key)s AND r.id <> %(id)s
      AND ((r.state = 'running' AND r.lease_until >= %(now)s)
           OR (r.id < %(id)s AND ((r.state = 'ready' AND r.run_after <= %(now)s)
                                  OR (r.state = 'running' AND r.lease_until < %(now)s)))))
"""


class PostgresStore(StatusQueries):
    """A Store backend for several replicas sharing one database."""

    def __init__(
        self,
        url: str,
        max_connections: int = 10,
        open_timeout: float = 30.0,
    ) -> None:
        self._url = url
        self._open_timeout = open_timeout
        self._max_connections = max_connections
        self._pool: AsyncConnectionPool | None = None
        self._where = _server_of(url)
        self._deliveries = DeliveryGroups(self._statement)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection inside one transaction; psycopg errors become StoreError."""
        if self._pool is None:
            raise StoreError("the store is not open")
        try:
            async with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store {self._where}: {exc}") from exc

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection in autocommit: the caller opens a transaction if it needs one."""
        if self._pool is None:
            raise StoreError("the store is not open")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store {self._where}: {exc}") from exc

    async def open(self) -> None:
        # Made here, not in __init__: an async pool belongs to the running event loop.
        pool = AsyncConnectionPool(
            self._url,
            min_size=1,
            max_size=self._max_connections,
            open=False,
            kwargs={"autocommit": True},
            name="gitops-bot-store",
        )
        try:
            await pool.open(wait=True, timeout=self._open_timeout)
        except psycopg.Error as exc:
            await pool.close()  # stop the pool from trying again in the background
            raise StoreError(
                f"cannot connect to the PostgreSQL store {self._where}: {exc}; check "
                "GITOPS_BOT_DATABASE_URL and that the server accepts connections"
            ) from exc
        self._pool = pool
        async with self._transaction() as conn:
            await _migrate(conn, await _now(conn))

    async def close(self) -> None:
        await self._deliveries.drain()  # the deliveries asked for before have their answer
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        async with self._transaction() as conn:
            await conn.execute(postgres(PING))

    async def now(self) -> float:
        async with self._transaction() as conn:
            return await _now(conn)

    async def record_delivery(self, delivery: Delivery, job: NewJob | None) -> bool:
        # Committed with the deliveries that wait meanwhile: one round trip and one WAL
        # flush per group, and the intake answers the forge only after it.
        return await self._deliveries.record(delivery, job)

    async def add_job(self, job: NewJob) -> int:
        async with self._transaction() as conn:
            return await _insert_job(conn, job, await _now(conn), None)

    async def claim_job(self, holder: str, lease_seconds: float) -> Job | None:
        passed: list[int] = []
        async with self._transaction() as conn:
            now = await _now(conn)
            while len(passed) < _CANDIDATES:
                cursor = await conn.execute(_CLAIMABLE, {"now": now, "passed": passed})
                row = await cursor.fetchone()
                if row is None:
                    return None
                job_id, key = row
                if key is None or await _decide_key(conn, job_id, key, now):
                    await conn.execute(
                        postgres(CLAIM_JOB),
                        (holder, now + lease_seconds, job_id),
                    )
                    return await _job(conn, job_id)
                passed.append(job_id)
        return None

    async def renew_lease(self, job: Job, lease_seconds: float) -> bool:
        return await self._write(
            postgres(RENEW_LEASE),
            lambda now: (now + lease_seconds, job.id, job.holder),
        )

    async def complete_job(self, job: Job, state: JobState = JobState.DONE) -> None:
        await self._write(
            postgres(COMPLETE_JOB),
            lambda now: (str(state), now, job.id, job.holder),
        )

    async def fail_job(self, job: Job, error: str, retry_at: float | None) -> JobState:
        state = JobState.READY if retry_at is not None else JobState.DEAD

        def values(now: float) -> tuple[Any, ...]:
            finished = None if retry_at is not None else now
            return (str(state), retry_at, error[:2000], finished, job.id, job.holder)

        await self._write(postgres(FAIL_JOB), values)
        return state

    async def _write(self, sql: str, values: Callable[[float], tuple[Any, ...]]) -> bool:
        """Run `sql` with the values made from the database's time now."""
        async with self._transaction() as conn:
            return bool((await conn.execute(sql, values(await _now(conn)))).rowcount)

    async def is_superseded(self, job: Job) -> bool:
        if job.coalesce_key is None:
            return False
        async with self._transaction() as conn:
            cursor = await conn.execute(
                postgres(IS_SUPERSEDED),
                (job.coalesce_key, job.id),
            )
            return await cursor.fetchone() is not None

    async def requeue(self, job_id: int) -> bool:
        return await self._write(
            postgres(REQUEUE_DEAD_JOB),
            lambda now: (now, job_id),
        )

    async def job_counts(self) -> dict[JobState, int]:
        async with self._transaction() as conn:
            cursor = await conn.execute(postgres(JOB_COUNTS))
            rows = await cursor.fetchall()
        counts = dict.fromkeys(JobState, 0)
        counts.update({JobState(state): count for state, count in rows})
        return counts

    async def job(self, job_id: int) -> Job | None:
        async with self._transaction() as conn:
            return await _job(conn, job_id)

    async def dead_jobs(self) -> list[Job]:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'dead' ORDER BY id"  # noqa: S608
            )
            return [_job_from_row(row) for row in await cursor.fetchall()]

    async def lock_environment(self, environment: str, holder: str, seconds: float) -> bool:
        return await self._write(
            postgres(TAKE_LOCK),
            lambda now: (environment, holder, now + seconds, now),
        )

    async def unlock_environment(self, environment: str, holder: str) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                postgres(RELEASE_LOCK),
                (environment, holder),
            )

    async def last_applied(self, environment: str) -> AppliedCommit | None:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                postgres(LAST_APPLIED),
                (environment,),
            )
            row = await cursor.fetchone()
        return AppliedCommit(*row) if row else None

    async def record_applied(self, environment: str, commit: str, position: int) -> bool:
        return await self._write(
            postgres(RECORD_APPLIED),
            lambda now: (environment, commit, position, now),
        )

    async def claim_merge(self, environment: str, commit: str, claimant: str) -> str:
        async with self._transaction() as conn:
            values = (environment, commit, claimant, await _now(conn))
            await conn.execute(postgres(CLAIM_MERGE), values)
            cursor = await conn.execute(postgres(MERGE_CLAIMANT), (environment, commit))
            row = await cursor.fetchone()
        return str(row[0]) if row else claimant

    async def add_audit(
        self, entry: AuditEntry, key: str | None = None, sealing: LedgerKey | None = None
    ) -> AuditRecord:
        async with self._transaction() as conn:
            now = await _now(conn)
            # One appender at a time across every replica, until this transaction ends.
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_BOT, _LEDGER))
            if key is not None:
                cursor = await conn.execute(
                    f"SELECT {COLUMNS} FROM audit_ledger WHERE idempotency_key = %s",  # noqa: S608
                    (key,),
                )
                first = await cursor.fetchone()
                if first is not None:
                    return record_from_row(first)
            cursor = await conn.execute(
                f"SELECT {COLUMNS} FROM audit_ledger ORDER BY sequence DESC LIMIT 1"  # noqa: S608
            )
            last = await cursor.fetchone()
            record = chain(record_from_row(last) if last else None, entry, now, sealing)
            await conn.execute(
                postgres(INSERT_AUDIT),
                (
                    record.sequence,
                    entry.environment,
                    entry.commit,
                    entry_text(entry),
                    record.previous_hash,
                    record.hash,
                    key,
                    now,
                    record.key_id,
                ),
            )
            return record

    async def audit_records(
        self, environment: str | None = None, since: float | None = None
    ) -> list[AuditRecord]:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                f"SELECT {COLUMNS} FROM audit_ledger "  # noqa: S608
                "WHERE (%(env)s::text IS NULL OR environment = %(env)s) "
                "AND (%(since)s::double precision IS NULL OR recorded_at >= %(since)s) "
                "ORDER BY sequence",
                {"env": environment, "since": since},
            )
            return [record_from_row(row) for row in await cursor.fetchall()]

    async def record_drift_check(self, check: DriftCheckRecord) -> None:
        values = drift_check_row(check)
        async with self._transaction() as conn:
            await conn.execute(postgres(RECORD_DRIFT_CHECK), values)

    async def _rows(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with self._transaction() as conn:
            cursor = await conn.execute(postgres(sql), values)
            return list(await cursor.fetchall())

    async def audit_rows(self) -> list[LedgerRow]:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                f"SELECT {COLUMNS} FROM audit_ledger ORDER BY sequence"  # noqa: S608
            )
            return [ledger_row(row) for row in await cursor.fetchall()]


async def _now(conn: psycopg.AsyncConnection[Any]) -> float:
    """The database server's time: the one clock every replica reads alike."""
    cursor = await conn.execute(_NOW)
    row = await cursor.fetchone()
    if row is None:
        raise StoreError("the PostgreSQL store did not say what time it is")
    return float(row[0])


async def _migrate(conn: psycopg.AsyncConnection[Any], now: float) -> None:
    """Apply pending migrations in this transaction, one replica at a time: the others
    wait on the advisory lock, then find nothing left to do."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_BOT, _MIGRATIONS))
    await conn.execute(VERSION_TABLE)
    cursor = await conn.execute(postgres(SCHEMA_VERSIONS))
    done = {row[0] for row in await cursor.fetchall()}
    refuse_unknown(done)
    for version, description, sql in MIGRATIONS:
        if version in done:
            continue
        for statement in statements(sql, _SERIAL):
            await conn.execute(statement)
        await conn.execute(
            postgres(RECORD_MIGRATION),
            (version, description, now),
        )


async def _decide_key(
    conn: psycopg.AsyncConnection[Any], job_id: int, key: str, now: float
) -> bool:
    """Whether this job may start now: it holds its key's lock and no other job of the
    key runs or comes first. A key another claimer is deciding on is skipped, not waited for."""
    cursor = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (claim_lock_id(key),))
    row = await cursor.fetchone()
    if not row or not row[0]:
        return False
    cursor = await conn.execute(_KEY_IS_FREE, {"key": key, "id": job_id, "now": now})
    row = await cursor.fetchone()
    return bool(row and row[0])


def claim_lock_id(key: str) -> int:
    """A stable signed 64-bit advisory lock id for a coalescing key, held while a job of
    the key is claimed. Public so that a test can hold it as another replica would."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


async def _insert_job(
    conn: psycopg.AsyncConnection[Any], job: NewJob, now: float, delivery: str | None
) -> int:
    if job.coalesce_key is not None and job.supersedes:
        await conn.execute(
            postgres(SUPERSEDE_WAITING),
            (now, job.coalesce_key),
        )
    cursor = await conn.execute(
        "INSERT INTO jobs (kind, payload, coalesce_key, supersedes, delivery_id, state, "
        "run_after, created_at) VALUES (%s, %s, %s, %s, %s, 'ready', %s, %s) RETURNING id",
        (job.kind, job.payload, job.coalesce_key, job.supersedes, delivery, now, now),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _job(conn: psycopg.AsyncConnection[Any], job_id: int) -> Job | None:
    cursor = await conn.execute(
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = %s",  # noqa: S608
        (job_id,),
    )
    row = await cursor.fetchone()
    return _job_from_row(row) if row else None


def _job_from_row(row: tuple[Any, ...]) -> Job:
    job_id, kind, payload, key, attempts, holder, state, error = row
    return Job(job_id, kind, payload, key, attempts, holder or "", JobState(state), error)


def _server_of(url: str) -> str:
    """Where the database is, for messages: never the user name or password."""
    return url.rsplit("@", 1)[-1].split("?", 1)[0]
