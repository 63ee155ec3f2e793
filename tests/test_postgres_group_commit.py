"""PostgreSQL group commit: deliveries that arrive together share one transaction (one
WAL flush) on a real server, yet each caller gets its own exact outcome, a failing
delivery fails alone, and replicas recording the same deliveries never deadlock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from helpers.storetools import execute_sql

from bot.store.ports import Delivery, JobState, NewJob, StoreError
from bot.store.postgres import PostgresStore

BURST = 50


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _delivery(delivery_id: str) -> Delivery:
    return Delivery(delivery_id, "github", "pull_request", "queued")


def _job(n: int, key: str | None = None) -> NewJob:
    return NewJob("plan", f'{{"n": {n}}}', key or f"plan:github:o/r#{n}")


async def together(store: PostgresStore, deliveries: list[tuple[str, NewJob | None]]) -> list[Any]:
    """Each answer (or error): all the calls are waiting before the first group starts
    (asyncio runs the gathered calls in order, the committer after them)."""
    calls = [store.record_delivery(_delivery(d), job) for d, job in deliveries]
    return await asyncio.gather(*calls, return_exceptions=True)


def _transactions(url: str, table: str) -> int:
    """How many transactions wrote the table's rows (each row's xmin is its writer)."""
    sql = f"SELECT count(DISTINCT xmin::text) FROM {table}"  # noqa: S608 - a fixed name
    return int(execute_sql(url, sql)[0][0])


async def test_a_burst_is_one_transaction_and_each_delivery_gets_its_answer(
    postgres_url: str,
) -> None:
    ids = [f"d-{n:02}" for n in range(BURST)]
    async with opened(postgres_url) as store:
        assert await store.record_delivery(_delivery("before"), _job(-1))
        burst = [(d, _job(n)) for n, d in enumerate(ids)] + [("d-07", _job(7)), ("before", None)]
        answers = await together(store, burst)

    assert answers == [True] * BURST + [False, False]  # a duplicate in the group, one before
    stored = execute_sql(postgres_url, "SELECT id FROM deliveries ORDER BY id")
    assert [row[0] for row in stored] == sorted([*ids, "before"])
    assert _transactions(postgres_url, "deliveries") == 2  # "before", then the whole burst
    ready = execute_sql(postgres_url, "SELECT count(*) FROM jobs WHERE state = 'ready'")
    assert ready == [(BURST + 1,)]


async def test_in_a_group_each_job_supersedes_the_waiting_ones_before_it(
    postgres_url: str,
) -> None:
    key = "plan:github:o/r#1"
    async with opened(postgres_url) as store:
        assert await store.record_delivery(_delivery("earlier"), _job(0, key))
        steady = NewJob("notify", "{}", key, supersedes=False)
        answers = await together(
            store, [("a", _job(1, key)), ("b", steady), ("c", _job(3, key)), ("d", steady)]
        )
        assert answers == [True] * 4
        counts = await store.job_counts()

    rows = execute_sql(postgres_url, "SELECT delivery_id, state FROM jobs ORDER BY id")
    assert rows == [
        ("earlier", "superseded"),
        ("a", "superseded"),
        ("b", "superseded"),
        ("c", "ready"),
        ("d", "ready"),
    ]
    assert counts[JobState.READY] == 2 and _transactions(postgres_url, "deliveries") == 2


async def test_a_delivery_that_fails_in_a_group_fails_alone(postgres_url: str) -> None:
    broken = NewJob(None, "{}")  # type: ignore[arg-type]  # jobs.kind is NOT NULL
    burst: list[tuple[str, NewJob | None]] = [(f"d-{n:02}", _job(n)) for n in range(BURST)]
    burst.insert(BURST // 2, ("broken", broken))
    async with opened(postgres_url) as store:
        answers = await together(store, burst)

    failed = answers.pop(BURST // 2)
    assert isinstance(failed, StoreError) and "kind" in str(failed)
    assert answers == [True] * BURST
    # The failed delivery is undone whole: it is not kept without its job.
    stored = execute_sql(postgres_url, "SELECT id FROM deliveries ORDER BY id")
    assert [row[0] for row in stored] == [f"d-{n:02}" for n in range(BURST)]


async def test_after_a_failure_the_group_is_stored_again_in_arrival_order(
    postgres_url: str,
) -> None:
    key = "plan:github:o/r#1"
    broken = NewJob(None, "{}", key)  # type: ignore[arg-type]  # jobs.kind is NOT NULL
    steady = NewJob("notify", "{}", key, supersedes=False)
    burst = [("a", _job(1, key)), ("broken", broken), ("b", _job(2, key)), ("c", steady)]
    async with opened(postgres_url) as store:
        answers = await together(store, burst)

    assert answers[0] is True and isinstance(answers[1], StoreError) and answers[2:] == [True] * 2
    rows = execute_sql(postgres_url, "SELECT delivery_id, state FROM jobs ORDER BY id")
    assert rows == [("a", "superseded"), ("b", "ready"), ("c", "ready")]


async def test_replicas_recording_the_same_deliveries_in_opposite_orders_store_each_once(
    postgres_url: str,
) -> None:
    # Without one lock order, each group would insert its first half and then wait for
    # the other's: a deadlock, which the server breaks after a second by failing one.
    deliveries = [(f"d-{n:03}", _job(n, f"key-{n % 7}")) for n in range(BURST * 2)]
    async with opened(postgres_url) as one, opened(postgres_url) as two:
        for _ in range(5):
            answers = await asyncio.gather(
                together(one, deliveries), together(two, deliveries[::-1])
            )
            firsts = [a or b for a, b in zip(answers[0], answers[1][::-1], strict=True)]
            boths = [a and b for a, b in zip(answers[0], answers[1][::-1], strict=True)]
            assert firsts == [True] * len(deliveries) and not any(boths)
            deliveries = [(f"again-{d}", job) for d, job in deliveries]

    assert execute_sql(postgres_url, "SELECT count(*) FROM deliveries") == [(BURST * 10,)]
    # One group per replica and round: none failed (by a deadlock) and was redone singly.
    assert _transactions(postgres_url, "deliveries") <= 2 * 5
    ready = execute_sql(postgres_url, "SELECT count(*) FROM jobs WHERE state = 'ready'")
    assert ready == [(7,)]  # the last job of each key: it superseded all before it


async def test_the_deliveries_waiting_when_the_store_closes_are_answered_first(
    postgres_url: str,
) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    calls = [store.record_delivery(_delivery(f"d-{n:02}"), _job(n)) for n in range(BURST)]
    pending = asyncio.gather(*calls)
    await asyncio.sleep(0)  # every call is waiting for its group
    await store.close()

    assert pending.done() and pending.result() == [True] * BURST
    assert execute_sql(postgres_url, "SELECT count(*) FROM deliveries") == [(BURST,)]
