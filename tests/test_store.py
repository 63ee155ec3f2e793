"""The Store semantics, pinned once and run against every backend: SQLite and a real
PostgreSQL server. Concurrency is exercised with several stores on one database, each
with its own connections, as replicas would have."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from helpers.githubbot import FakeClock
from helpers.storetools import TEST_KEY, TEST_KEYS, database_for, execute_sql, let_time_pass

from bot.core.audit import AuditEntry
from bot.core.ledgerchain import verify_chain
from bot.store.backends import store_for_url
from bot.store.migrations import MIGRATIONS
from bot.store.ports import Delivery, JobState, NewJob, Store, StoreError
from bot.store.postgres import PostgresStore, claim_lock_id
from bot.store.sqlite import SQLiteStore

OpenStore = Callable[[], Awaitable[Store]]
GUARD_SECONDS = 60  # a guard against a hang, not a timing claim


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_for(request, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


@pytest.fixture
async def open_store(store_url: str, clock: FakeClock) -> AsyncIterator[OpenStore]:
    """Opens another store on the test's database; every one is closed at the end."""
    opened: list[Store] = []

    async def another() -> Store:
        store = store_for_url(store_url, clock)
        await store.open()
        opened.append(store)
        return store

    yield another
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()


def _job(key: str | None = "plan:github:o/r#1", payload: str = "{}") -> NewJob:
    return NewJob("plan", payload, key)


def _entry(environment: str = "staging", commit: str = "abc", **changes: object) -> AuditEntry:
    entry = AuditEntry(
        environment=environment,
        cluster=environment,
        commit=commit,
        result="succeeded",
        trigger="merge",
        started_at="2026-01-01T10:00:00.000000Z",
        finished_at="2026-01-01T10:00:05.000000Z",
        bot_version="0.1.0",
        pr_number=7,
        pr_url="https://github.com/o/r/pull/7",
        author="octocat",
        approvers=("alice",),
        objects=(
            {
                "object": "ConfigMap shop/x",
                "action": "create",
                "outcome": "applied",
                "digest": "sha256:00",
            },
        ),
    )
    return replace(entry, **changes)  # type: ignore[arg-type]


async def test_a_delivery_and_its_job_are_stored_once(store: Store) -> None:
    delivery = Delivery("d-1", "github", "pull_request", "queued")
    assert await store.record_delivery(delivery, _job())
    assert not await store.record_delivery(delivery, _job())
    assert (await store.job_counts())[JobState.READY] == 1


async def test_what_was_stored_survives_a_restart(store_url: str, clock: FakeClock) -> None:
    first = store_for_url(store_url, clock)
    await first.open()
    await first.record_delivery(Delivery("d", "github", "push", "queued"), _job(None, "[1]"))
    await first.close()

    again = store_for_url(store_url, clock)
    await again.open()  # migrations are not applied twice
    job = await again.claim_job("w", 60)
    await again.close()
    assert job is not None and job.payload == "[1]"


async def test_a_database_from_a_newer_bot_is_refused(store_url: str, clock: FakeClock) -> None:
    first = store_for_url(store_url, clock)
    await first.open()
    await first.close()
    execute_sql(store_url, "INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(StoreError, match="newer gitops-bot"):
        await store_for_url(store_url, clock).open()


async def test_replicas_starting_together_migrate_once(
    store_url: str, open_store: OpenStore
) -> None:
    await asyncio.gather(*(open_store() for _ in range(3)))
    rows = execute_sql(store_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert [row[0] for row in rows] == [version for version, _, _ in MIGRATIONS]


async def test_a_lease_expires_and_the_job_is_taken_over(
    store: Store, clock: FakeClock, store_url: str
) -> None:
    await store.add_job(_job())
    first = await store.claim_job("a", 60)
    assert first is not None and first.attempts == 1
    assert await store.claim_job("b", 60) is None

    let_time_pass(store_url, clock, 61)
    second = await store.claim_job("b", 60)
    assert second is not None and (second.id, second.attempts) == (first.id, 2)
    await store.complete_job(first)  # the old holder's word no longer counts
    assert (await store.job_counts())[JobState.RUNNING] == 1
    await store.complete_job(second)
    assert (await store.job_counts())[JobState.DONE] == 1


async def test_a_renewed_lease_keeps_the_job_until_it_is_taken_over(
    store: Store, clock: FakeClock, store_url: str
) -> None:
    await store.add_job(_job())
    job = await store.claim_job("a", 60)
    assert job is not None
    let_time_pass(store_url, clock, 50)
    assert await store.renew_lease(job, 60)
    let_time_pass(store_url, clock, 50)  # 100 s after the claim, 50 s after the renewal
    assert await store.claim_job("b", 60) is None

    let_time_pass(store_url, clock, 11)
    taken = await store.claim_job("b", 60)
    assert taken is not None and taken.id == job.id
    assert not await store.renew_lease(job, 60)  # the first holder lost it


async def test_a_new_job_supersedes_waiting_ones_with_its_key(store: Store) -> None:
    old = await store.add_job(_job(payload="old"))
    await store.add_job(_job(payload="new"))
    await store.add_job(_job("plan:github:o/r#2", "other"))

    claimed = [await store.claim_job("w", 60), await store.claim_job("w", 60)]
    assert sorted(j.payload for j in claimed if j) == ["new", "other"]
    assert (await store.job(old)).state is JobState.SUPERSEDED  # type: ignore[union-attr]


async def test_jobs_that_do_not_supersede_all_run_in_turn(store: Store) -> None:
    key = "apply:github:o/r"
    for payload in ("merge-b", "merge-a"):  # pushes can arrive newest first
        await store.add_job(NewJob("apply", payload, key, supersedes=False))

    first = await store.claim_job("w", 60)
    assert first is not None and first.payload == "merge-b"
    assert await store.claim_job("x", 60) is None  # one at a time, still
    assert not await store.is_superseded(first)
    await store.complete_job(first)
    second = await store.claim_job("w", 60)
    assert second is not None and second.payload == "merge-a"


async def test_jobs_with_one_key_run_one_at_a_time(store: Store) -> None:
    await store.add_job(_job(payload="first"))
    running = await store.claim_job("a", 60)
    await store.add_job(_job(payload="second"))

    assert await store.claim_job("b", 60) is None  # waits for the running one
    assert running is not None and await store.is_superseded(running)
    await store.complete_job(running, JobState.SUPERSEDED)
    following = await store.claim_job("b", 60)
    assert following is not None and following.payload == "second"
    assert not await store.is_superseded(following)


async def test_an_abandoned_job_runs_before_the_next_one_of_its_key(
    store: Store, clock: FakeClock, store_url: str
) -> None:
    await store.add_job(_job(payload="first"))
    assert await store.claim_job("gone", 60) is not None  # its worker dies
    await store.add_job(_job(payload="second"))

    let_time_pass(store_url, clock, 61)
    resumed = await store.claim_job("b", 60)
    assert resumed is not None and resumed.payload == "first"
    assert await store.claim_job("c", 60) is None


async def test_failures_retry_at_the_given_time_then_dead_letter(
    store: Store, clock: FakeClock, store_url: str
) -> None:
    job_id = await store.add_job(_job(None))
    job = await store.claim_job("w", 60)
    assert job is not None
    assert await store.fail_job(job, "GitHub said 502", await store.now() + 30) is JobState.READY
    assert await store.claim_job("w", 60) is None
    let_time_pass(store_url, clock, 30)
    job = await store.claim_job("w", 60)
    assert job is not None and job.attempts == 2

    assert await store.fail_job(job, "again", None) is JobState.DEAD
    dead = await store.job(job_id)
    assert dead is not None and (dead.state, dead.last_error) == (JobState.DEAD, "again")
    assert [j.id for j in await store.dead_jobs()] == [job_id]
    assert await store.claim_job("w", 60) is None

    assert await store.requeue(job_id)
    again = await store.claim_job("w", 60)
    assert again is not None and again.attempts == 1
    assert not await store.requeue(job_id)  # only dead jobs are re-queued
    assert await store.dead_jobs() == []


async def test_an_environment_lock_has_one_holder(
    store: Store, clock: FakeClock, store_url: str
) -> None:
    assert await store.lock_environment("staging", "a", 60)
    assert not await store.lock_environment("staging", "b", 60)
    assert await store.lock_environment("staging", "a", 60)  # renewal
    await store.unlock_environment("staging", "b")  # not b's to release
    assert not await store.lock_environment("staging", "b", 60)

    let_time_pass(store_url, clock, 61)
    assert await store.lock_environment("staging", "b", 60)  # expired: taken over
    await store.unlock_environment("staging", "b")
    assert await store.lock_environment("staging", "a", 60)


async def test_the_applied_commit_only_moves_forward(store: Store) -> None:
    assert await store.last_applied("staging") is None
    assert await store.record_applied("staging", "c2", 2)
    assert not await store.record_applied("staging", "c1", 1)
    applied = await store.last_applied("staging")
    assert applied is not None and (applied.commit, applied.position) == ("c2", 2)
    assert await store.record_applied("staging", "c3", 3)


async def test_the_audit_ledger_is_one_chain_in_order(store: Store, clock: FakeClock) -> None:
    first = await store.add_audit(_entry("staging"), sealing=TEST_KEY)
    clock.advance(3600)
    cut = await store.now()  # the store's time: on PostgreSQL the server's, which moved on
    second = await store.add_audit(
        _entry("production", result="superseded", objects=()), sealing=TEST_KEY
    )

    records = await store.audit_records()
    assert records == [first, second]
    assert [(r.sequence, r.entry.environment) for r in records] == [
        (1, "staging"),
        (2, "production"),
    ]
    assert records[1].previous_hash == records[0].hash
    assert records[0].entry == _entry("staging")  # read back exactly as written
    assert verify_chain(await store.audit_rows(), TEST_KEYS) is None
    assert await store.audit_records("production") == [second]
    assert await store.audit_records(since=cut) == [second]
    assert await store.audit_records("staging", since=cut) == []


async def test_an_audit_key_is_recorded_once(store: Store) -> None:
    first = await store.add_audit(_entry(commit="c1"), key="job-1:staging", sealing=TEST_KEY)
    again = await store.add_audit(
        _entry(commit="c1", result="failed"), key="job-1:staging", sealing=TEST_KEY
    )
    other = await store.add_audit(_entry(commit="c1"), key="job-2:staging", sealing=TEST_KEY)

    assert again == first
    assert [r.sequence for r in await store.audit_records()] == [1, 2]
    assert other.previous_hash == first.hash


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("entry", "REPLACE(entry, 'alice', 'mallory')"),
        ("environment", "'production'"),
        ("commit_sha", "'f00'"),
    ],
)
async def test_an_edited_ledger_row_breaks_the_chain_there(
    store: Store, store_url: str, column: str, value: str
) -> None:
    for commit in ("c1", "c2", "c3"):
        await store.add_audit(_entry(commit=commit), sealing=TEST_KEY)
    execute_sql(store_url, f"UPDATE audit_ledger SET {column} = {value} WHERE sequence = 2")  # noqa: S608

    problem = verify_chain(await store.audit_rows(), TEST_KEYS)
    assert problem is not None and problem.sequence == 2
    assert "changed after it was written" in problem.reason


async def test_replicas_appending_at_once_build_one_chain(open_store: OpenStore) -> None:
    replicas = [await open_store() for _ in range(4)]

    async def append(store: Store, replica: int) -> None:
        for n in range(10):
            await store.add_audit(
                _entry(commit=f"r{replica}-{n}"), key=f"r{replica}-{n}", sealing=TEST_KEY
            )

    await asyncio.gather(*(append(store, n) for n, store in enumerate(replicas)))
    records = await replicas[0].audit_records()
    assert len(records) == 40
    assert verify_chain(await replicas[0].audit_rows(), TEST_KEYS) is None
    assert len({r.entry.commit for r in records}) == 40


async def test_replicas_claim_each_job_once_and_one_per_key_at_a_time(
    open_store: OpenStore,
) -> None:
    replicas = [await open_store() for _ in range(4)]
    keys = [f"apply:github:o/r{n}" for n in range(3)]
    created = [await replicas[0].add_job(_job(None, f"plain-{n}")) for n in range(40)]
    created += [await replicas[0].add_job(_job(key)) for key in keys]
    claims: list[int] = []
    running: set[str] = set()
    overlaps: list[str] = []
    follow_ups = dict.fromkeys(keys, 6)  # each key gets new jobs while one of it runs
    chance = random.Random(5)

    async def work(store: Store, name: str) -> None:
        while job := await store.claim_job(name, 600):
            claims.append(job.id)
            if job.coalesce_key is not None:
                if job.coalesce_key in running:
                    overlaps.append(job.coalesce_key)
                running.add(job.coalesce_key)
                if follow_ups[job.coalesce_key] and chance.random() < 0.7:
                    follow_ups[job.coalesce_key] -= 1
                    created.append(await store.add_job(_job(job.coalesce_key)))
                await asyncio.sleep(0)
                running.discard(job.coalesce_key)
            await store.complete_job(job)

    for _ in range(5):  # a claimer can stop while a key's job is briefly blocked: go again
        await asyncio.gather(*(work(s, f"w{n}") for n, s in enumerate(replicas)))
    assert not overlaps
    assert len(claims) == len(set(claims))
    states = {(await replicas[0].job(job_id)).state for job_id in created}  # type: ignore[union-attr]
    assert states <= {JobState.DONE, JobState.SUPERSEDED}
    counts = await replicas[0].job_counts()
    assert counts[JobState.DONE] == len(claims)


async def test_replicas_taking_over_abandoned_jobs_start_one_per_key(
    open_store: OpenStore, clock: FakeClock, store_url: str
) -> None:
    replicas = [await open_store() for _ in range(4)]
    keys = [f"apply:github:o/r{n}" for n in range(12)]
    for key in keys:  # each key: a job whose worker died, and the next one waiting
        await replicas[0].add_job(_job(key, "abandoned"))
        assert await replicas[0].claim_job("dead-worker", 60) is not None
        await replicas[0].add_job(_job(key, "next"))
    let_time_pass(store_url, clock, 61)

    claimed = await asyncio.gather(
        *(replicas[n % 4].claim_job(f"w{n}", 60) for n in range(len(keys) * 2))
    )
    started = [job for job in claimed if job is not None]
    # A claimer may come back empty-handed while another decides on a key; never may two
    # start one key, nor the waiting job overtake the abandoned one.
    started_keys = [job.coalesce_key for job in started]
    assert started and len(started_keys) == len(set(started_keys))
    assert {job.payload for job in started} == {"abandoned"}
    while job := await replicas[0].claim_job("late", 60):
        assert job.payload == "abandoned" and job.coalesce_key not in started_keys
        started_keys.append(job.coalesce_key)
    assert sorted(k or "" for k in started_keys) == sorted(keys)


async def test_replicas_never_hold_an_environment_lock_together(open_store: OpenStore) -> None:
    replicas = [await open_store() for _ in range(4)]
    holders: list[str] = []
    most = 0
    turns = 0

    async def contend(store: Store, name: str) -> None:
        nonlocal most, turns
        for _ in range(15):
            if await store.lock_environment("github:o/r:staging", name, 600):
                holders.append(name)
                most = max(most, len(holders))
                turns += 1
                await asyncio.sleep(0)
                holders.remove(name)
                await store.unlock_environment("github:o/r:staging", name)
            await asyncio.sleep(0)

    await asyncio.gather(*(contend(s, f"replica-{n}") for n, s in enumerate(replicas)))
    assert most == 1 and turns > 0


async def test_a_merge_is_claimed_once_per_environment(open_store: OpenStore) -> None:
    replicas = [await open_store() for _ in range(4)]
    claims = await asyncio.gather(
        *(s.claim_merge("github:o/r:staging", "c1", f"job-{n}") for n, s in enumerate(replicas))
    )
    assert len(set(claims)) == 1  # every replica learns the one claimant
    holder = claims[0]
    assert await replicas[0].claim_merge("github:o/r:staging", "c1", holder) == holder  # re-run
    assert await replicas[1].claim_merge("github:o/r:staging", "c1", "job-9") == holder
    assert await replicas[1].claim_merge("github:o/r:production", "c1", "job-9") == "job-9"
    assert await replicas[2].claim_merge("github:o/r:staging", "c2", "job-9") == "job-9"


async def test_on_postgres_a_replica_clock_ahead_takes_over_no_live_lease(
    postgres_url: str,
) -> None:
    """Leases and locks are the database server's time: a replica whose own clock runs an
    hour ahead sees the others' leases and locks as the server does, live."""
    honest, ahead = (store_for_url(postgres_url, clock) for clock in (time.time, _ahead(3600)))
    await honest.open()
    await ahead.open()
    try:
        await honest.add_job(_job(None))
        job = await honest.claim_job("honest", 60)
        assert job is not None
        assert await ahead.claim_job("ahead", 60) is None
        assert await honest.renew_lease(job, 60)
        assert await honest.lock_environment("github:o/r:staging", "honest", 60)
        assert not await ahead.lock_environment("github:o/r:staging", "ahead", 60)
        assert abs(await ahead.now() - await honest.now()) < 3600  # one clock, the server's
    finally:
        await honest.close()
        await ahead.close()


async def test_on_postgres_a_key_another_replica_is_claiming_is_left_to_it(
    postgres_url: str,
) -> None:
    """Replica A is starting a key's later job (the earlier one, which failed, was not due
    yet) and has not committed when the earlier one falls due. B sees neither A's claim
    nor the key running: only the key's lock, which A holds, keeps B off the key."""
    key = "apply:github:o/r"
    store = store_for_url(postgres_url)
    await store.open()
    try:
        retried = await store.add_job(_job(key, "retried"))
        job = await store.claim_job("w", 60)
        assert job is not None and job.id == retried
        await store.fail_job(job, "GitHub said 502", await store.now() + 3600)
        later = await store.add_job(NewJob("notify", "later", key, supersedes=False))
        with psycopg.connect(postgres_url) as replica_a:  # its claim, held open
            replica_a.execute("SELECT pg_advisory_xact_lock(%s)", (claim_lock_id(key),))
            replica_a.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, holder = 'a', "
                "lease_until = extract(epoch FROM clock_timestamp()) + 600 WHERE id = %s",
                (later,),
            )
            execute_sql(postgres_url, "UPDATE jobs SET run_after = 0 WHERE id = %s", (retried,))
            taken = await asyncio.wait_for(store.claim_job("b", 60), GUARD_SECONDS)
            replica_a.commit()
    finally:
        await store.close()

    assert taken is None, f"b started {taken} while a was starting job {later} of its key"
    rows = execute_sql(postgres_url, "SELECT id FROM jobs WHERE state = 'running'")
    assert rows == [(later,)]


def _ahead(seconds: float) -> Callable[[], float]:
    return lambda: time.time() + seconds


def test_database_urls_name_a_backend(tmp_path: Path) -> None:
    assert isinstance(store_for_url(f"sqlite:///{tmp_path}/x.db"), SQLiteStore)
    assert isinstance(store_for_url("postgresql://bot@db:5432/gitops"), PostgresStore)
    assert isinstance(store_for_url("postgres://bot@db/gitops"), PostgresStore)
    with pytest.raises(StoreError, match="unsupported database URL 'db:5432/x'"):
        store_for_url("mysql://user:password@db:5432/x")


async def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    store = PostgresStore("postgresql://bot:hunter2@127.0.0.1:1/gitops", open_timeout=2)
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/gitops") as raised:
        await store.open()
    assert "hunter2" not in str(raised.value)
