"""The store's bounded reads for the status page, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from helpers.githubbot import FakeClock
from helpers.storetools import let_time_pass
from test_store import _entry, _job, clock, open_store, store, store_url

from bot.store.ports import DriftCheckRecord, Store

__all__ = ["clock", "open_store", "store", "store_url"]  # the fixtures these tests share


async def test_the_newest_records_and_the_ledger_page_by_page(store: Store) -> None:
    for n in range(1, 6):
        await store.add_audit(_entry("staging" if n % 2 else "production", commit=f"c{n}"))

    assert [r.sequence for r in await store.recent_audit_records(3)] == [5, 4, 3]
    assert [r.sequence for r in await store.audit_rows_after(2, 2)] == [3, 4]
    assert [r.sequence for r in await store.audit_rows_after(4, 10)] == [5]
    assert await store.audit_rows_after(5, 10) == []
    [record] = await store.audit_records_of("staging", "c3", 5)
    assert (record.sequence, record.entry.commit) == (3, "c3")
    assert await store.audit_records_of("production", "c3", 5) == []


async def test_applied_commits_newest_first_and_limited(store: Store, clock: FakeClock) -> None:
    for n, environment in enumerate(("a", "b", "c")):
        await store.record_applied(f"github:o/r:{environment}", f"c{n}", n)
        clock.advance(10)

    applied = await store.applied_commits(2)
    assert [(a.environment, a.commit) for a in applied] == [
        ("github:o/r:c", "c2"),
        ("github:o/r:b", "c1"),
    ]


async def test_only_locks_still_held_are_listed(
    store: Store, store_url: str, clock: FakeClock
) -> None:
    assert await store.lock_environment("github:o/r:staging", "job-1", 60)
    assert await store.lock_environment("github:o/r:production", "job-2", 600)
    let_time_pass(store_url, clock, 120)

    [held] = await store.held_locks(10)
    assert (held.environment, held.holder) == ("github:o/r:production", "job-2")
    # 480 s of its lease are left, by the store's clock (PostgreSQL's has moved on a little).
    assert 470 < held.expires_at - await store.now() <= 480


async def test_a_drift_check_replaces_the_last_one_of_its_environment(
    store: Store, clock: FakeClock
) -> None:
    await store.record_drift_check(DriftCheckRecord("github:o/r:prod", "in-sync", 0, clock()))
    clock.advance(60)
    await store.record_drift_check(
        DriftCheckRecord("github:o/r:prod", "unknown", 0, clock(), "cluster unreachable")
    )
    await store.record_drift_check(DriftCheckRecord("github:o/r:dev", "drifted", 3, clock() + 1))

    checks = await store.drift_checks(10)
    assert checks == [
        DriftCheckRecord("github:o/r:dev", "drifted", 3, clock() + 1),
        DriftCheckRecord("github:o/r:prod", "unknown", 0, clock(), "cluster unreachable"),
    ]
    assert len(await store.drift_checks(1)) == 1


async def test_dead_jobs_newest_first_and_limited(store: Store) -> None:
    for n in range(3):
        await store.add_job(_job(None, payload=f'{{"n": {n}}}'))
        job = await store.claim_job("w", 60)
        assert job is not None
        await store.fail_job(job, f"error {n}", None)

    dead = await store.recent_dead_jobs(2)
    assert [(j.id, j.last_error) for j in dead] == [(3, "error 2"), (2, "error 1")]
