"""Group commit of deliveries for the PostgreSQL store: one transaction, one WAL flush.

The deliveries that arrive while a group is being committed wait, and go together into
the next group: its statements are sent at once (psycopg's pipeline mode) in one
transaction on one connection, so a burst costs one round trip and one flush, not one
of each per delivery. Each statement still runs alone, in arrival order, and sees the
ones before it: a duplicate within a group is found, and a job supersedes the waiting
jobs of its key queued just before it, exactly as one statement per delivery would.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import psycopg

from bot.store.ports import Delivery, NewJob, StoreError

Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]
MOST_PER_GROUP = 256  # a bound on the first caller's wait behind the others' statements

# A delivery and its job in one statement (data-modifying CTEs run once, to completion,
# read or not): the job and the superseding of waiting jobs of its key happen only when
# the delivery is new; every time in it is the server's one reading.
RECORD_DELIVERY = """
WITH t AS (SELECT extract(epoch FROM clock_timestamp())::double precision AS now),
d AS (
    INSERT INTO deliveries (id, forge, event, outcome, received_at)
    SELECT %(id)s, %(forge)s, %(event)s, %(outcome)s, now FROM t
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
superseded AS (
    UPDATE jobs SET state = 'superseded', finished_at = (SELECT now FROM t)
    WHERE %(supersedes)s::boolean AND coalesce_key = %(key)s::text AND state = 'ready'
      AND EXISTS (SELECT 1 FROM d)
),
queued AS (
    INSERT INTO jobs (kind, payload, coalesce_key, supersedes, delivery_id, state,
                      run_after, created_at)
    SELECT %(kind)s::text, %(payload)s::text, %(key)s::text, %(supersedes)s::boolean,
           %(id)s, 'ready', now, now
    FROM t
    WHERE %(has_job)s::boolean AND EXISTS (SELECT 1 FROM d)
)
SELECT count(*) FROM d
"""
# Taken first, in one order everywhere: two groups (of two replicas) that share a delivery
# or a key then wait for each other here, never half way through, which could deadlock.
_LOCK_ALL = "SELECT count(pg_advisory_xact_lock(id)) FROM unnest(%s::bigint[]) AS id"


@dataclass(frozen=True)
class _Waiting:
    values: dict[str, Any]
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
        self._waiting.append(_Waiting(delivery_values(delivery, job), done))
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
                    outcomes = await self._outcomes([w.values for w in group])
                except Exception as exc:  # no caller may wait for ever
                    outcomes = [exc] * len(group)
                _settle(group, outcomes)
        finally:
            self._committer = None

    async def _outcomes(self, group: list[dict[str, Any]]) -> list[bool | Exception]:
        """Each delivery's answer. When the group fails, nothing of it was stored (or, if
        the connection broke at COMMIT, all of it): each is tried again on its own, so a
        failure fails alone and a delivery stored already is answered as received before."""
        try:
            return list(await self._commit(group))
        except StoreError as exc:
            if len(group) == 1:
                return [exc]
        return list(await asyncio.gather(*(self._alone(values) for values in group)))

    async def _alone(self, values: dict[str, Any]) -> bool | Exception:
        try:
            (new,) = await self._commit([values])
        except StoreError as exc:
            return exc
        return new

    async def _commit(self, group: list[dict[str, Any]]) -> list[bool]:
        """Run the group's statements in order in one transaction, sent at once."""
        async with self._connect() as conn:
            cursor = conn.cursor()
            async with conn.pipeline(), conn.transaction():
                await conn.execute(_LOCK_ALL, (_lock_ids(group),))
                await cursor.executemany(RECORD_DELIVERY, group, returning=True)
            return [bool(row and row[0]) async for row in _first_rows(cursor)]


async def _first_rows(cursor: psycopg.AsyncCursor[Any]) -> AsyncIterator[tuple[Any, ...] | None]:
    async for result in cursor.results():
        yield await result.fetchone()


def delivery_values(delivery: Delivery, job: NewJob | None) -> dict[str, Any]:
    """The parameters of RECORD_DELIVERY."""
    return {
        "id": delivery.id,
        "forge": delivery.forge,
        "event": delivery.event,
        "outcome": delivery.outcome,
        "has_job": job is not None,
        "kind": job.kind if job else None,
        "payload": job.payload if job else None,
        "key": job.coalesce_key if job else None,
        "supersedes": job.supersedes if job else False,
    }


def _lock_ids(group: list[dict[str, Any]]) -> list[int]:
    """Sorted advisory lock ids of the group's deliveries and coalescing keys."""
    names = {f"delivery:{values['id']}" for values in group}
    names |= {f"key:{values['key']}" for values in group if values["key"] is not None}
    return sorted(_lock_id(name) for name in names)


def _lock_id(name: str) -> int:
    """A stable signed 64-bit advisory lock id (apart from the claims' key locks)."""
    digest = hashlib.sha256(b"intake\0" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _settle(group: list[_Waiting], outcomes: list[bool | Exception]) -> None:
    """Hand each caller its outcome, unless it stopped waiting (it was cancelled)."""
    for waiting, outcome in zip(group, outcomes, strict=True):
        if waiting.done.done():
            continue
        if isinstance(outcome, Exception):
            waiting.done.set_exception(outcome)
        else:
            waiting.done.set_result(outcome)
