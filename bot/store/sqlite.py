"""The SQLite store: one connection on one thread, WAL, writes committed durably in groups;
the WAL checkpointed by a second connection on a thread of its own."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.core.audit import AuditEntry, AuditRecord
from bot.core.ledgerchain import LedgerKey, LedgerRow, chain
from bot.store.ledger import COLUMNS, entry_text, ledger_row, record_from_row
from bot.store.migrations import MIGRATIONS, VERSION_TABLE, refuse_unknown, statements
from bot.store.ports import (
    AppliedCommit,
    Delivery,
    DriftCheckRecord,
    Job,
    JobState,
    NewJob,
    StoreError,
)
from bot.store.sqlitecheckpoints import Checkpointer
from bot.store.statements import (
    CLAIM_JOB,
    CLAIM_MERGE,
    COMPLETE_JOB,
    FAIL_JOB,
    INSERT_AUDIT,
    INSERT_DELIVERY,
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
)
from bot.store.statusreads import StatusQueries, drift_check_row

T = TypeVar("T")
_SERIAL = "INTEGER PRIMARY KEY"
_JOB_COLUMNS = "id, kind, payload, coalesce_key, attempts, holder, state, last_error"
_CLAIMABLE = """
SELECT id FROM jobs AS j
WHERE ((j.state = 'ready' AND j.run_after <= ?) OR (j.state = 'running' AND j.lease_until < ?))
  AND (j.coalesce_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM jobs AS r
        WHERE r.coalesce_key = j.coalesce_key AND r.id <> j.id
          AND r.state = 'running' AND r.lease_until >= ?))
ORDER BY j.id
LIMIT 1
"""


@dataclass(frozen=True)
class _Write:
    work: Callable[[sqlite3.Connection], Any]
    done: asyncio.Future[Any]


class SQLiteStore(StatusQueries):
    """The reference Store backend. Blocking sqlite3 calls run on a private thread.

    Writes are committed in groups: the writes asked for while one transaction is being
    committed go into the next one together, so a burst of deliveries costs one fsync,
    not one each. Every caller still gets its own result, once its write is on disk.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None
        self._writes: list[_Write] = []  # waiting for the next group commit
        self._writes_lock = threading.Lock()  # shared by the event loop and the store thread
        self._committing = False  # the store thread is committing groups, or is about to
        self._checkpoints = Checkpointer(path)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                raise StoreError("the store is not open")
            try:
                return work(self._db)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    def _error(self, exc: sqlite3.Error) -> StoreError:
        error = StoreError(f"SQLite store {self.path}: {exc}")
        error.__cause__ = exc
        return error

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work`'s result once it is committed, in the next group transaction."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        with self._writes_lock:
            self._writes.append(_Write(work, done))
            idle, self._committing = not self._committing, True
        if idle:
            self._thread.submit(self._commit_writes, loop)
        return await done

    def _commit_writes(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the store thread: commit the writes waiting, as one group. The writes asked
        for meanwhile make the next group, queued behind the reads already waiting."""
        with self._writes_lock:
            group, self._writes = self._writes, []
        outcomes = self._commit_group([write.work for write in group])
        self._checkpoints.wrote()
        with suppress(RuntimeError):  # the loop is closed: no one waits any more
            loop.call_soon_threadsafe(_settle, group, outcomes)
        with self._writes_lock:
            self._committing = bool(self._writes)
        if self._committing:
            self._thread.submit(self._commit_writes, loop)

    def _commit_group(self, works: list[Callable[[sqlite3.Connection], Any]]) -> list[object]:
        """For each write, its result or the StoreError (or other error) it ended with."""
        try:
            if self._db is None:
                raise StoreError("the store is not open")
            outcomes = _commit_together(self._db, works)
        except sqlite3.Error as exc:  # nothing of the group is stored
            outcomes = [self._error(exc)] * len(works)
        except Exception as exc:
            outcomes = [exc] * len(works)
        return [self._error(o) if isinstance(o, sqlite3.Error) else o for o in outcomes]

    async def open(self) -> None:
        def connect() -> None:
            for attempt in range(_OPEN_ATTEMPTS):
                try:
                    db = _connect(self.path, self._clock())
                    try:
                        self._checkpoints.start()
                    except BaseException:
                        db.close()
                        raise
                    self._db = db
                    return
                except sqlite3.OperationalError as exc:
                    # Switching a new file to WAL can meet "locked" without the busy
                    # handler being asked, when replicas open it at the same moment.
                    if "locked" not in str(exc) or attempt == _OPEN_ATTEMPTS - 1:
                        raise StoreError(
                            f"cannot open the SQLite store {self.path}: {exc}"
                        ) from exc
                    time.sleep(0.05 * 2**attempt)
                except (sqlite3.Error, OSError) as exc:
                    raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc

        await asyncio.get_running_loop().run_in_executor(self._thread, connect)

    async def close(self) -> None:
        if self._db is not None:  # once this is done, so is every write asked for before
            with suppress(StoreError):  # their callers have heard of a failure already
                await self._write(lambda db: None)

        def disconnect() -> None:
            self._checkpoints.stop()
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._thread, disconnect)
        self._thread.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute(PING).fetchone())

    async def now(self) -> float:
        """The local clock: one host serves a SQLite file (its replicas share the host's
        disk, so they share its clock too), and tests can move it."""
        return self._clock()

    async def record_delivery(self, delivery: Delivery, job: NewJob | None) -> bool:
        now = self._clock()

        def write(db: sqlite3.Connection) -> bool:
            inserted = db.execute(
                INSERT_DELIVERY,
                (delivery.id, delivery.forge, delivery.event, delivery.outcome, now),
            ).rowcount
            if inserted and job is not None:
                _insert_job(db, job, now, delivery.id)
            return bool(inserted)

        return await self._write(write)

    async def add_job(self, job: NewJob) -> int:
        now = self._clock()

        def write(db: sqlite3.Connection) -> int:
            return _insert_job(db, job, now, None)

        return await self._write(write)

    async def claim_job(self, holder: str, lease_seconds: float) -> Job | None:
        now = self._clock()

        def claim(db: sqlite3.Connection) -> Job | None:
            row = db.execute(_CLAIMABLE, (now, now, now)).fetchone()
            if row is None:
                return None
            db.execute(
                CLAIM_JOB,
                (holder, now + lease_seconds, row[0]),
            )
            return _job(db, row[0])

        return await self._write(claim)

    async def renew_lease(self, job: Job, lease_seconds: float) -> bool:
        now = self._clock()

        def write(db: sqlite3.Connection) -> bool:
            return bool(
                db.execute(
                    RENEW_LEASE,
                    (now + lease_seconds, job.id, job.holder),
                ).rowcount
            )

        return await self._write(write)

    async def complete_job(self, job: Job, state: JobState = JobState.DONE) -> None:
        await self._update_job(
            COMPLETE_JOB,
            (str(state), self._clock(), job.id, job.holder),
        )

    async def fail_job(self, job: Job, error: str, retry_at: float | None) -> JobState:
        state = JobState.READY if retry_at is not None else JobState.DEAD
        finished = None if retry_at is not None else self._clock()
        await self._update_job(
            FAIL_JOB,
            (str(state), retry_at, error[:2000], finished, job.id, job.holder),
        )
        return state

    async def _update_job(self, sql: str, values: tuple[Any, ...]) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(sql, values)

        await self._write(write)

    async def is_superseded(self, job: Job) -> bool:
        if job.coalesce_key is None:
            return False
        key = job.coalesce_key
        row = await self._run(
            lambda db: db.execute(
                IS_SUPERSEDED,
                (key, job.id),
            ).fetchone()
        )
        return row is not None

    async def requeue(self, job_id: int) -> bool:
        now = self._clock()

        def write(db: sqlite3.Connection) -> bool:
            return bool(
                db.execute(
                    REQUEUE_DEAD_JOB,
                    (now, job_id),
                ).rowcount
            )

        return await self._write(write)

    async def job_counts(self) -> dict[JobState, int]:
        rows = await self._run(lambda db: db.execute(JOB_COUNTS).fetchall())
        counts = dict.fromkeys(JobState, 0)
        counts.update({JobState(state): count for state, count in rows})
        return counts

    async def job(self, job_id: int) -> Job | None:
        return await self._run(lambda db: _job(db, job_id))

    async def dead_jobs(self) -> list[Job]:
        def read(db: sqlite3.Connection) -> list[Job]:
            ids = db.execute("SELECT id FROM jobs WHERE state = 'dead' ORDER BY id").fetchall()
            return [job for (job_id,) in ids if (job := _job(db, job_id)) is not None]

        return await self._run(read)

    async def lock_environment(self, environment: str, holder: str, seconds: float) -> bool:
        now = self._clock()

        def take(db: sqlite3.Connection) -> bool:
            db.execute(
                TAKE_LOCK,
                (environment, holder, now + seconds, now),
            )
            row = db.execute(
                "SELECT holder FROM environment_locks WHERE environment = ?", (environment,)
            ).fetchone()
            return bool(row[0] == holder)

        return await self._write(take)

    async def unlock_environment(self, environment: str, holder: str) -> None:
        def release(db: sqlite3.Connection) -> None:
            db.execute(
                RELEASE_LOCK,
                (environment, holder),
            )

        await self._write(release)

    async def last_applied(self, environment: str) -> AppliedCommit | None:
        row = await self._run(
            lambda db: db.execute(
                LAST_APPLIED,
                (environment,),
            ).fetchone()
        )
        return AppliedCommit(*row) if row else None

    async def record_applied(self, environment: str, commit: str, position: int) -> bool:
        now = self._clock()

        def write(db: sqlite3.Connection) -> bool:
            return bool(
                db.execute(
                    RECORD_APPLIED,
                    (environment, commit, position, now),
                ).rowcount
            )

        return await self._write(write)

    async def claim_merge(self, environment: str, commit: str, claimant: str) -> str:
        now = self._clock()

        def claim(db: sqlite3.Connection) -> str:
            db.execute(CLAIM_MERGE, (environment, commit, claimant, now))
            return str(db.execute(MERGE_CLAIMANT, (environment, commit)).fetchone()[0])

        return await self._write(claim)

    async def add_audit(
        self, entry: AuditEntry, key: str | None = None, sealing: LedgerKey | None = None
    ) -> AuditRecord:
        now = self._clock()

        def append(db: sqlite3.Connection) -> AuditRecord:
            # Inside BEGIN IMMEDIATE (see _commit_together): no other writer between the
            # read of the last record and the insert of the next.
            if key is not None:
                row = db.execute(
                    f"SELECT {COLUMNS} FROM audit_ledger WHERE idempotency_key = ?",  # noqa: S608
                    (key,),
                ).fetchone()
                if row is not None:
                    return record_from_row(row)
            last = db.execute(
                f"SELECT {COLUMNS} FROM audit_ledger ORDER BY sequence DESC LIMIT 1"  # noqa: S608
            ).fetchone()
            record = chain(record_from_row(last) if last else None, entry, now, sealing)
            db.execute(
                INSERT_AUDIT,
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

        return await self._write(append)

    async def audit_records(
        self, environment: str | None = None, since: float | None = None
    ) -> list[AuditRecord]:
        sql = f"SELECT {COLUMNS} FROM audit_ledger WHERE (? IS NULL OR environment = ?) "  # noqa: S608
        sql += "AND (? IS NULL OR recorded_at >= ?) ORDER BY sequence"
        values = (environment, environment, since, since)
        rows = await self._run(lambda db: db.execute(sql, values).fetchall())
        return [record_from_row(row) for row in rows]

    async def record_drift_check(self, check: DriftCheckRecord) -> None:
        values = drift_check_row(check)

        def write(db: sqlite3.Connection) -> None:
            db.execute(RECORD_DRIFT_CHECK, values)

        await self._write(write)

    async def _rows(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._run(lambda db: db.execute(sql, values).fetchall())

    async def audit_rows(self) -> list[LedgerRow]:
        sql = f"SELECT {COLUMNS} FROM audit_ledger ORDER BY sequence"  # noqa: S608
        rows = await self._run(lambda db: db.execute(sql).fetchall())
        return [ledger_row(row) for row in rows]


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT: writers queue up instead of failing half way."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # an I/O error or a full disk may have rolled it back already
            db.execute("ROLLBACK")
        raise


def _settle(group: list[_Write], outcomes: list[object]) -> None:
    """On the event loop: hand each caller its outcome."""
    for write, outcome in zip(group, outcomes, strict=True):
        if write.done.done():  # the caller was cancelled meanwhile
            continue
        if isinstance(outcome, BaseException):
            write.done.set_exception(outcome)
        else:
            write.done.set_result(outcome)


def _commit_together(
    db: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], Any]]
) -> list[object]:
    """Run the writes in order in one transaction, committed (and synced) once: for each,
    its result or the exception it raised. A write that fails is undone alone; a write on
    its own needs no savepoint for that (its failure rolls the transaction back, raised)."""
    with _transaction(db):
        if len(works) == 1:
            return [works[0](db)]
        return [_in_savepoint(db, work) for work in works]


def _in_savepoint(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], Any]) -> object:
    db.execute("SAVEPOINT write")
    try:
        result = work(db)
    except Exception as exc:
        if not db.in_transaction:  # the error ended the whole transaction: all of it failed
            raise
        db.execute("ROLLBACK TO write")
        result = exc
    db.execute("RELEASE write")
    return result


_OPEN_ATTEMPTS = 8


def _connect(path: Path, now: float) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # the commit is on disk before the 202
        db.execute("PRAGMA wal_autocheckpoint=0")  # not in a COMMIT: see sqlitecheckpoints
        db.execute("PRAGMA foreign_keys=ON")
        _migrate(db, now)
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, now: float) -> None:
    """Apply pending migrations; each one is decided and applied in one write transaction,
    so two processes opening a new database at once do not both apply it."""
    db.execute(VERSION_TABLE)
    for version, description, sql in MIGRATIONS:
        with _transaction(db):
            done = {row[0] for row in db.execute(SCHEMA_VERSIONS)}
            refuse_unknown(done)
            if version in done:
                continue
            for statement in statements(sql, _SERIAL):
                db.execute(statement)
            db.execute(
                RECORD_MIGRATION,
                (version, description, now),
            )


def _insert_job(db: sqlite3.Connection, job: NewJob, now: float, delivery: str | None) -> int:
    if job.coalesce_key is not None and job.supersedes:
        db.execute(
            SUPERSEDE_WAITING,
            (now, job.coalesce_key),
        )
    cursor = db.execute(
        "INSERT INTO jobs (kind, payload, coalesce_key, supersedes, delivery_id, state, "
        "run_after, created_at) VALUES (?, ?, ?, ?, ?, 'ready', ?, ?)",
        (job.kind, job.payload, job.coalesce_key, job.supersedes, delivery, now, now),
    )
    return int(cursor.lastrowid or 0)


def _job(db: sqlite3.Connection, job_id: int) -> Job | None:
    row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()  # noqa: S608
    if row is None:
        return None
    job_id, kind, payload, key, attempts, holder, state, error = row
    return Job(job_id, kind, payload, key, attempts, holder or "", JobState(state), error)
