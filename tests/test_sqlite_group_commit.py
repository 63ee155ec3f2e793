"""SQLite group commit: the writes that arrive together share one transaction and one
fsync, yet each caller gets its own outcome, and one failing write fails alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import pytest
from helpers import failedgroups
from helpers.storetools import execute_sql

from bot.store.ports import Delivery, JobState, NewJob, StoreError
from bot.store.sqlite import SQLiteStore

BURST = 50
GUARD_SECONDS = 60  # a guard against a hang, not a timing claim


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@asynccontextmanager
async def opened(database: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(database)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def together(database: Path, calls: Sequence[Awaitable[Any]]) -> list[Any]:
    """Each call's answer (or error), all asked for while another connection holds the
    write lock, as a replica may: the store can start at most one group before the rest
    are waiting, so they are committed in two groups at most."""
    with closing(sqlite3.connect(database, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        answers = asyncio.gather(*calls, return_exceptions=True)
        await asyncio.sleep(0)  # every call has run up to its wait for the commit
        other.execute("COMMIT")
    return await answers


def _delivery(delivery_id: str) -> Delivery:
    return Delivery(delivery_id, "github", "pull_request", "queued")


def _job(n: int) -> NewJob:
    return NewJob("plan", f'{{"n": {n}}}', f"plan:github:o/r#{n}")


def _stored(database: Path) -> tuple[list[str], int]:
    """Delivery ids and the job count, read by a fresh connection after the store closed."""
    url = f"sqlite:///{database}"
    ids = [row[0] for row in execute_sql(url, "SELECT id FROM deliveries ORDER BY id")]
    return ids, execute_sql(url, "SELECT count(*) FROM jobs")[0][0]


async def test_deliveries_arriving_together_each_get_their_answer_and_all_are_durable(
    database: Path,
) -> None:
    ids = [f"d-{n:02}" for n in range(BURST)]
    burst = [*ids, "d-07", "before"]  # one duplicate among them, one of an earlier delivery
    async with opened(database) as store:
        assert await store.record_delivery(_delivery("before"), _job(-1))
        calls = [store.record_delivery(_delivery(d), _job(n)) for n, d in enumerate(burst)]
        answers = await together(database, calls)

    assert answers == [True] * BURST + [False, False]
    async with opened(database) as reopened:  # what was answered True survived the close
        assert (await reopened.job_counts())[JobState.READY] == BURST + 1
    assert _stored(database) == (sorted([*ids, "before"]), BURST + 1)


async def test_a_write_that_fails_among_others_fails_alone(database: Path) -> None:
    broken = NewJob(None, "{}")  # type: ignore[arg-type]  # jobs.kind is NOT NULL
    async with opened(database) as store:
        calls = [store.record_delivery(_delivery(f"d-{n:02}"), _job(n)) for n in range(BURST)]
        calls.insert(BURST // 2, store.record_delivery(_delivery("broken"), broken))
        answers = await together(database, calls)

    failed = answers.pop(BURST // 2)
    assert isinstance(failed, StoreError) and "NOT NULL" in str(failed)
    assert answers == [True] * BURST
    # The failed write is undone whole: its delivery is not kept without its job.
    assert _stored(database) == ([f"d-{n:02}" for n in range(BURST)], BURST)


async def test_a_group_with_a_failing_write_keeps_the_others_in_arrival_order(
    database: Path,
) -> None:
    async with opened(database) as store:
        calls = [store.record_delivery(delivery, job) for delivery, job in failedgroups.BURST]
        answers = await together(database, calls)

    assert isinstance(answers.pop(failedgroups.FAILING), StoreError), answers
    assert answers == [True] * (len(failedgroups.BURST) - 1)
    url = f"sqlite:///{database}"
    rows = execute_sql(url, "SELECT delivery_id, state FROM jobs ORDER BY id")
    assert rows == failedgroups.STORED


async def test_writes_waiting_together_are_committed_together(database: Path) -> None:
    statements: list[str] = []
    async with opened(database) as store:
        assert store._db is not None  # observed, not changed: the SQL the store sends
        store._db.set_trace_callback(statements.append)
        deliveries = [store.record_delivery(_delivery(f"d-{n}"), _job(n)) for n in range(BURST)]
        jobs = [store.add_job(_job(BURST + n)) for n in range(5)]
        await together(database, [*deliveries, *jobs])
        counts = await store.job_counts()

    # Committed one by one, there would be a COMMIT (and an fsync) per write.
    assert statements.count("COMMIT") <= 2
    assert counts[JobState.READY] == BURST + 5


async def test_the_writes_waiting_when_the_store_closes_are_committed_first(
    database: Path,
) -> None:
    # The rest wait behind a group the store thread has started (it waits for the write
    # lock another connection holds): the thread would take up the next group only after
    # a close that did not wait for it had closed the connection.
    store = SQLiteStore(database)
    await store.open()
    started = threading.Event()
    assert store._db is not None  # observed, not changed: when the first group begins
    store._db.set_trace_callback(lambda sql: sql == "BEGIN IMMEDIATE" and started.set())
    with closing(sqlite3.connect(database, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # nothing can be committed before close begins
        first = asyncio.ensure_future(store.record_delivery(_delivery("d-00"), _job(0)))
        assert await asyncio.to_thread(started.wait, GUARD_SECONDS)
        calls = [store.record_delivery(_delivery(f"d-{n:02}"), _job(n)) for n in range(1, BURST)]
        pending = asyncio.gather(first, *calls)
        await asyncio.sleep(0)  # every call is waiting for its group
        closed = asyncio.ensure_future(store.close())
        await asyncio.sleep(0)
        other.execute("COMMIT")
    await closed

    assert pending.done(), "the store closed before the writes waiting had their answer"
    assert pending.result() == [True] * BURST
    assert _stored(database) == ([f"d-{n:02}" for n in range(BURST)], BURST)
