"""PostgreSQL group commit: deliveries that arrive together share one transaction (one
WAL flush) on a real server, yet each caller gets its own exact outcome, a failing
delivery fails alone, and replicas recording the same deliveries never deadlock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from helpers import failedgroups
from helpers.storetools import execute_sql
from helpers.turns import relayed

from bot.store.pgintake import DeliveryGroups, delivery_lock_id, key_lock_id
from bot.store.ports import Delivery, JobState, NewJob, StoreError
from bot.store.postgres import PostgresStore

BURST = 50
SHARED = 100  # deliveries both replicas record
OWN = 5  # deliveries one replica records: a group stored again one by one shows in them
GUARD_SECONDS = 60  # a guard against a hang, not a timing claim
# The locks the other connections of this database hold (advisory) or wait for (any).
_LOCKS = """
SELECT l.pid, l.locktype, l.classid, l.objid, l.granted FROM pg_locks AS l
JOIN pg_stat_activity AS a USING (pid)
WHERE a.datname = current_database() AND l.pid NOT IN (pg_backend_pid(), %s)
  AND (l.locktype = 'advisory' OR NOT l.granted)
"""


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


@asynccontextmanager
async def holding(url: str, delivery_id: str) -> AsyncIterator[int]:
    """Another connection's open transaction that holds the delivery's group lock and has
    written its row: a group with the delivery stops there, whether it waits for the lock
    or for the row. Rolled back on leaving. Yields that connection's server process id."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (delivery_lock_id(delivery_id),))
        await conn.execute(
            "INSERT INTO deliveries (id, forge, event, outcome, received_at) "
            "VALUES (%s, 'github', 'push', 'queued', 0)",
            (delivery_id,),
        )
        try:
            yield conn.info.backend_pid
        finally:
            await conn.rollback()


async def both_waiting(url: str, holder: int) -> dict[int, tuple[set[int], int | None]]:
    """Once two other server processes wait for a lock: for each, the advisory locks it
    holds and the one it waits for (None: it waits for a row's writer). It polls the
    server's lock table; the held transaction, not the poll, orders what happens."""
    deadline = asyncio.get_running_loop().time() + GUARD_SECONDS
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as watcher:
        while True:
            rows = await (await watcher.execute(_LOCKS, (holder,))).fetchall()
            waiting = {pid: _advisory(row) for pid, *row, granted in rows if not granted}
            if len(waiting) == 2:
                break
            assert asyncio.get_running_loop().time() < deadline, f"not both waiting: {rows}"
            await asyncio.sleep(0.01)
    taken = {
        pid: {_advisory(row) for p, *row, granted in rows if p == pid and granted}
        for pid in waiting
    }
    return {pid: (taken[pid], waiting[pid]) for pid in waiting}


def _advisory(lock: list[Any]) -> int | None:
    """The signed 64-bit key of an advisory lock (pg_locks shows its two halves)."""
    locktype, high, low = lock
    if locktype != "advisory":
        return None
    return int.from_bytes(((high << 32) | low).to_bytes(8, "big"), "big", signed=True)


def _below(lock: int, group: list[tuple[str, NewJob | None]]) -> set[int]:
    """The group's advisory locks (of its deliveries and keys) that sort below `lock`."""
    locks = {delivery_lock_id(delivery) for delivery, _ in group}
    locks |= {key_lock_id(job.coalesce_key) for _, job in group if job and job.coalesce_key}
    return {taken for taken in locks if taken < lock}


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


# A value the server refuses, and one the driver cannot even encode (nothing is sent).
_BROKEN: dict[str, tuple[str, NewJob, type[Exception], str]] = {
    # jobs.kind is NOT NULL
    "refused": ("broken", NewJob(None, "{}"), StoreError, "kind"),  # type: ignore[arg-type]
    "unencodable": ("broken", _job(0, key="plan:\udcff"), UnicodeEncodeError, "surrogates"),
}


@pytest.mark.parametrize("broken", sorted(_BROKEN))
async def test_a_delivery_that_fails_in_a_group_fails_alone(postgres_url: str, broken: str) -> None:
    delivery_id, job, error, words = _BROKEN[broken]
    burst: list[tuple[str, NewJob | None]] = [(f"d-{n:02}", _job(n)) for n in range(BURST)]
    burst.insert(BURST // 2, (delivery_id, job))
    async with opened(postgres_url) as store:
        answers = await together(store, burst)

    failed = answers.pop(BURST // 2)
    assert isinstance(failed, error) and words in str(failed)
    assert answers == [True] * BURST
    # The failed delivery is undone whole: it is not kept without its job.
    stored = execute_sql(postgres_url, "SELECT id FROM deliveries ORDER BY id")
    assert [row[0] for row in stored] == [f"d-{n:02}" for n in range(BURST)]


async def test_after_a_failure_the_group_is_stored_again_in_arrival_order(
    postgres_url: str,
) -> None:
    # The arrival order is neither the ids' order nor its reverse: stored again in any
    # other order, the jobs would have other ids (their order) or other states.
    async with opened(postgres_url) as store:
        answers = await together(
            store, [(delivery.id, job) for delivery, job in failedgroups.BURST]
        )

    assert isinstance(answers.pop(failedgroups.FAILING), StoreError), answers
    assert answers == [True] * (len(failedgroups.BURST) - 1)
    rows = execute_sql(postgres_url, "SELECT delivery_id, state FROM jobs ORDER BY id")
    assert rows == failedgroups.STORED


async def test_replicas_held_up_half_way_through_opposite_orders_never_deadlock(
    postgres_url: str,
) -> None:
    # Each group stops at the held delivery: with one lock order the first to get there
    # holds every lock below it and the other waits for the first of them, holding none of
    # the first's. Locking in arrival order, each would hold half and wait for the other's
    # half; without the locks, each would write its rows up to the held one, then wait for
    # the other's: a deadlock, which the server breaks (after a second) by failing one.
    shared = [(f"d-{n:03}", _job(n, f"key-{n % 7}")) for n in range(SHARED)]
    ones = shared + [(f"one-{n}", None) for n in range(OWN)]
    twos = shared[::-1] + [(f"two-{n}", None) for n in range(OWN)]
    held = sorted((d for d, _ in shared), key=delivery_lock_id)[SHARED // 2]
    assert 0 < int(held[2:]) < SHARED - 1  # a row is written on each side of it, too
    async with opened(postgres_url) as one, opened(postgres_url) as two:
        async with holding(postgres_url, held) as holder:
            recording = asyncio.gather(together(one, ones), together(two, twos))
            waits = await both_waiting(postgres_url, holder)
        answers = await asyncio.wait_for(recording, GUARD_SECONDS)

    mirrored = answers[1][SHARED - 1 :: -1]
    once = ((True, False), (False, True))
    twice = [d for n, (d, _) in enumerate(shared) if (answers[0][n], mirrored[n]) not in once]
    assert not twice, f"not stored by exactly one replica: {twice}"
    assert answers[0][SHARED:] == answers[1][SHARED:] == [True] * OWN
    # Had a deadlock failed a group, the server would have rolled it back and the store
    # stored it again one delivery at a time: a transaction for each of its own.
    groups = _transactions(postgres_url, "deliveries")
    assert groups == 2, f"{groups} transactions, not one per replica: a group was redone"
    lock = delivery_lock_id(held)
    at_held = [taken for taken, waiting_for in waits.values() if waiting_for == lock]
    assert len(at_held) == 1, f"{len(at_held)} groups waited at the held delivery, not one"
    above = {taken for taken in at_held[0] if taken > lock}
    assert not above and at_held[0] in [_below(lock, group) for group in (ones, twos)], (
        f"the group waiting at the held delivery holds {len(at_held[0])} of its locks, "
        f"{len(above)} of them above that one's: it did not take them in ascending order"
    )
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


async def test_an_answer_comes_once_its_group_is_committed_and_its_locks_are_free(
    postgres_url: str,
) -> None:
    # A group is one implicit transaction, ended by the pipeline's Sync: by the time a
    # caller hears back, other connections see its rows and may take its locks, whether
    # the group was stored or failed.
    async with opened(postgres_url) as store:
        assert await store.record_delivery(_delivery("first"), _job(1, "key-1"))
        assert execute_sql(postgres_url, "SELECT id FROM deliveries") == [("first",)]
        broken = NewJob(None, "{}", "key-2")  # type: ignore[arg-type]  # kind is NOT NULL
        with pytest.raises(StoreError, match="kind"):
            await store.record_delivery(_delivery("broken"), broken)
        locks = (delivery_lock_id("first"), key_lock_id("key-1"), delivery_lock_id("broken"))
        free = execute_sql(
            postgres_url,
            "SELECT bool_and(pg_try_advisory_lock(id)) FROM unnest(%s::bigint[]) AS id",
            ([*locks, key_lock_id("key-2")],),
        )
        assert free == [(True,)]
        assert await store.record_delivery(_delivery("after"), _job(2, "key-2"))
    stored = execute_sql(postgres_url, "SELECT id FROM deliveries ORDER BY id")
    assert stored == [("after",), ("first",)]


async def test_a_connection_outside_autocommit_is_refused_not_answered_as_stored(
    postgres_url: str,
) -> None:
    # Outside autocommit psycopg would open a transaction that the group never commits:
    # the caller would hear "stored" of rows rolled back when the connection closes.
    @asynccontextmanager
    async def in_a_transaction() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            yield conn

    async with opened(postgres_url):  # the schema
        pass
    groups = DeliveryGroups(in_a_transaction)
    with pytest.raises(StoreError, match="autocommit"):
        await groups.record(_delivery("d-1"), _job(1))
    assert execute_sql(postgres_url, "SELECT count(*) FROM deliveries") == [(0,)]


async def test_a_failed_group_leaves_the_connection_fit_for_the_next_whatever_it_prepared(
    postgres_url: str,
) -> None:
    # psycopg prepares a statement on the server after a few runs: whichever run of the
    # group's statements fails (the one that prepares them among them), the groups after
    # it on the same connection are stored, with no transaction left open to roll back.
    broken = NewJob(None, "{}")  # type: ignore[arg-type]  # jobs.kind is NOT NULL
    for fails_at in range(8):
        async with opened(postgres_url) as store:
            for n in range(fails_at + 4):
                delivery = _delivery(f"{fails_at}-{n}")
                if n == fails_at:
                    with pytest.raises(StoreError, match="kind"):
                        await store.record_delivery(delivery, broken)
                else:
                    assert await store.record_delivery(delivery, _job(n))
    stored = execute_sql(postgres_url, "SELECT count(*) FROM deliveries")
    assert stored == [(sum(fails_at + 3 for fails_at in range(8)),)]


async def test_a_group_is_one_round_trip_to_the_server(postgres_url: str) -> None:
    # Its statements, its commit and the WAL flush before the answer: a client that
    # waited for a BEGIN, or for its statements before a COMMIT, would speak again.
    groups = 20
    async with relayed(postgres_url) as (url, turns), opened(url) as store:
        assert await store.record_delivery(_delivery("first"), _job(0))
        before = turns.count
        for n in range(1, groups + 1):
            assert await store.record_delivery(_delivery(f"d-{n:02}"), _job(n))
        assert turns.count - before == groups
    stored = execute_sql(postgres_url, "SELECT count(*) FROM deliveries")
    assert stored == [(groups + 1,)]
