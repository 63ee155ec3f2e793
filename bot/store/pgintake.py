"""Group commit of deliveries for the PostgreSQL store: one transaction, one WAL flush.

The deliveries that arrive while a group is being committed wait, and go together into
the next group: one statement records them all (a set, from arrays), sent with its lock
at once (psycopg's pipeline mode, one implicit transaction) on one connection, so a burst
costs one round trip, one plan and one flush, not one of each per delivery. The statement
decides what one statement per delivery, run in arrival order, would: a delivery seen
before (or earlier in the group) is not recorded again, and a job supersedes the waiting
jobs of its key queued before it, in the table or earlier in the group.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import psycopg

from bot.store.ports import Delivery, NewJob, StoreError

Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]
MOST_PER_GROUP = 256  # a bound on the first caller's wait behind the others' rows

# Data-modifying CTEs run once, to completion, on one snapshot: the UPDATE does not see
# the jobs the statement inserts, so a job replaced later in the group is inserted as
# superseded; the others supersede the key's waiting jobs that were there before. Every
# time in it is the server's one reading. Answers the positions (from 1) that were new.
RECORD_DELIVERIES = """
WITH t AS (SELECT extract(epoch FROM clock_timestamp())::double precision AS now),
given AS (
    SELECT * FROM unnest(%(id)b::text[], %(forge)b::text[], %(event)b::text[],
                         %(outcome)b::text[], %(has_job)b::boolean[], %(kind)b::text[],
                         %(payload)b::text[], %(key)b::text[], %(supersedes)b::boolean[])
        WITH ORDINALITY
        AS g(id, forge, event, outcome, has_job, kind, payload, key, supersedes, position)
),
firsts AS (SELECT DISTINCT ON (id) * FROM given ORDER BY id, position),
d AS (
    INSERT INTO deliveries (id, forge, event, outcome, received_at)
    SELECT id, forge, event, outcome, now FROM firsts, t ORDER BY position
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
new AS (
    SELECT f.*, f.key IS NOT NULL AND coalesce(bool_or(f.supersedes) OVER (
        PARTITION BY f.key ORDER BY f.position
        ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), false) AS replaced
    FROM firsts AS f JOIN d USING (id)
    WHERE f.has_job
),
superseded AS (
    UPDATE jobs SET state = 'superseded', finished_at = (SELECT now FROM t)
    WHERE state = 'ready'
      AND coalesce_key IN (SELECT key FROM new WHERE supersedes AND key IS NOT NULL)
),
queued AS (
    INSERT INTO jobs (kind, payload, coalesce_key, supersedes, delivery_id, state,
                      run_after, created_at, finished_at)
    SELECT kind, payload, key, supersedes, id,
           CASE WHEN replaced THEN 'superseded' ELSE 'ready' END, now, now,
           CASE WHEN replaced THEN now END
    FROM new, t
    ORDER BY position
)
SELECT array_agg(position) FROM firsts JOIN d USING (id)
"""
# Taken first, in one order everywhere: two groups (of two replicas) that share a delivery
# or a key then wait for each other here, never half way through, which could deadlock.
_LOCK_ALL = "SELECT count(pg_advisory_xact_lock(id)) FROM unnest(%b::bigint[]) AS id"


@dataclass(frozen=True)
class _Waiting:
    delivery: Delivery
    job: NewJob | None
    done: asyncio.Future[bool]


class DeliveryGroups:
    """Records deliveries in groups; each caller hears back once its group is committed."""

    def __init__(self, connect: Connect, most: int = MOST_PER_GROUP) -> None:
        self._connect, self._most = connect, most
        self._waiting: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None

    async def record(self, delivery: Delivery, job: NewJob | None) -> bool:
        """Whether the delivery is new; its job is queued with it, durably, if so."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(delivery, job, done))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_waiting())
        return await done

    async def drain(self) -> None:
        """Return once every delivery asked for so far has its answer."""
        if self._committer is not None:
            await asyncio.shield(self._committer)

    async def _commit_waiting(self) -> None:
        try:
            while self._waiting:
                group = self._waiting[: self._most]
                del self._waiting[: self._most]
                try:
                    outcomes = await self._outcomes(group)
                except Exception as exc:  # no caller may wait for ever
                    outcomes = [exc] * len(group)
                _settle(group, outcomes)
        finally:
            self._committer = None

    async def _outcomes(self, group: list[_Waiting]) -> list[bool | Exception]:
        """Each delivery's answer. When the group fails, nothing of it was stored (or, if
        the connection broke at COMMIT, all of it): each is tried again on its own, in
        arrival order (superseding depends on it), so a failure fails alone and a delivery
        stored already is answered as received before. That holds for a failure before
        anything was sent, too (a text the driver cannot encode). Once the server cannot
        be reached, the rest get that error instead of waiting for it one by one."""
        try:
            return list(await self._commit(group))
        except Exception as exc:
            if len(group) == 1:
                return [exc]
        outcomes: list[bool | Exception] = []
        for waiting in group:
            last = outcomes[-1] if outcomes else None
            if isinstance(last, StoreError) and _is_unreachable(last):
                outcomes.append(last)
            else:
                outcomes.append(await self._alone(waiting))
        return outcomes

    async def _alone(self, waiting: _Waiting) -> bool | Exception:
        try:
            (new,) = await self._commit([waiting])
        except Exception as exc:
            return exc
        return new

    async def _commit(self, group: list[_Waiting]) -> list[bool]:
        """Record the group in one transaction, sent at once: whether each was new.

        The two statements go in one pipeline with no BEGIN or COMMIT: the server runs
        the statements before a Sync as one implicit transaction, commits it (and flushes
        its WAL) at the Sync, and only then answers the Sync, which leaving the pipeline
        waits for. One round trip. psycopg's transaction() in a pipeline nests pipelines
        of its own that sync on entering and on leaving: four round trips, each an
        event-loop hop. Each statement still takes its own snapshot, so the second sees
        every group committed while the first waited for the locks."""
        values = _columns(group)
        async with self._connect() as conn:
            if not conn.autocommit:  # psycopg would open a transaction nothing commits
                raise StoreError("the intake's connection must be in autocommit mode")
            async with conn.pipeline():
                await conn.execute(_LOCK_ALL, (_lock_ids(values),))
                cursor = await conn.execute(RECORD_DELIVERIES, values)
            row = await cursor.fetchone()
        new = set(row[0] or ()) if row else set()
        return [position in new for position in range(1, len(group) + 1)]


def _columns(group: list[_Waiting]) -> dict[str, list[Any]]:
    """The parameters of RECORD_DELIVERIES: one array per column, in arrival order."""
    jobs = [waiting.job for waiting in group]
    return {
        "id": [waiting.delivery.id for waiting in group],
        "forge": [waiting.delivery.forge for waiting in group],
        "event": [waiting.delivery.event for waiting in group],
        "outcome": [waiting.delivery.outcome for waiting in group],
        "has_job": [job is not None for job in jobs],
        "kind": [job.kind if job else None for job in jobs],
        "payload": [job.payload if job else None for job in jobs],
        "key": [job.coalesce_key if job else None for job in jobs],
        "supersedes": [job.supersedes if job else False for job in jobs],
    }


def _lock_ids(values: dict[str, list[Any]]) -> list[int]:
    """Sorted advisory lock ids of the group's deliveries and coalescing keys."""
    ids = {delivery_lock_id(delivery) for delivery in values["id"]}
    ids |= {key_lock_id(key) for key in values["key"] if key is not None}
    return sorted(ids)


def delivery_lock_id(delivery_id: str) -> int:
    """The advisory lock a group holds on one of its deliveries until it commits. Public
    so that a test can hold it from another connection and stop a group there."""
    return _lock_id(f"delivery:{delivery_id}")


def key_lock_id(coalesce_key: str) -> int:
    """The advisory lock a group holds on a coalescing key of its jobs until it commits."""
    return _lock_id(f"key:{coalesce_key}")


def _lock_id(name: str) -> int:
    """A stable signed 64-bit advisory lock id (apart from the claims' key locks)."""
    digest = hashlib.sha256(b"intake\0" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _is_unreachable(error: StoreError) -> bool:
    """Whether the error is the server's or the connection's, not one delivery's."""
    return isinstance(error.__cause__, psycopg.OperationalError)


def _settle(group: list[_Waiting], outcomes: list[bool | Exception]) -> None:
    """Hand each caller its outcome, unless it stopped waiting (it was cancelled)."""
    for waiting, outcome in zip(group, outcomes, strict=True):
        if waiting.done.done():
            continue
        if isinstance(outcome, Exception):
            waiting.done.set_exception(outcome)
        else:
            waiting.done.set_result(outcome)
