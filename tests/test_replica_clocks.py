"""Two `gitops-bot serve` replicas on one real PostgreSQL, one on a host whose clock runs an
hour ahead. Leases are the database server's time, so the skewed replica never takes over
a job a live worker still runs, even one that runs longer than its lease (renewed)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from helpers.botprocess import BotProcess, bot_environment, comment, deliver, origin_with_commits
from helpers.fakegithub import FakeGitHub, OpenAPIDescription
from helpers.storetools import execute_sql, wait_until_idle

LEASE_SECONDS = 3
SKEW_SECONDS = 3600.0  # far more than the two thirds of a lease that used to be enough
ANSWER_SECONDS = 2 * LEASE_SECONDS  # each answer outlives its job's first lease
COMMANDS = 8
DRAIN_GUARD_SECONDS = 300  # a guard against a hang, not a timing claim


async def test_a_replica_whose_clock_runs_ahead_runs_no_job_twice(
    postgres_url: str, tmp_path: Path, openapi: OpenAPIDescription, aiohttp_server: Any
) -> None:
    fake = FakeGitHub(openapi, time.time)
    fake.personal_token = "ghp_" + uuid.uuid4().hex
    fake.answer_slowly("POST", r"/issues/\d+/comments$", ANSWER_SECONDS)
    api = await aiohttp_server(fake.make_app())
    origin, _ = origin_with_commits(tmp_path / "origin", 1)
    users = [f"user-{n}" for n in range(COMMANDS)]
    fake.permissions.update(dict.fromkeys(users, "write"))
    honest, ahead = (
        BotProcess(
            bot_environment(
                postgres_url,
                str(api.make_url("")).rstrip("/"),
                fake.personal_token,
                tmp_path / f"data-{name}",
                job_lease_seconds=str(LEASE_SECONDS),
            ),
            tmp_path / f"bot-{name}.log",
            clock_skew_seconds=skew,
        )
        for name, skew in (("honest", 0.0), ("ahead", SKEW_SECONDS))
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        await honest.start(session)
        await ahead.start(session)
        # Every delivery goes to the honest replica; the one ahead polls the queue.
        statuses = await asyncio.gather(
            *(
                deliver(session, honest, comment(origin, "clocks/repo", 7, user, "/gitops help"))
                for user in users
            )
        )
        await wait_until_idle(postgres_url, DRAIN_GUARD_SECONDS)
        assert ahead.process is not None and ahead.process.poll() is None  # alive throughout
        await honest.stop()
        await ahead.stop()

    assert statuses == [202] * COMMANDS
    jobs = execute_sql(postgres_url, "SELECT state, attempts FROM jobs")
    assert Counter(jobs) == {("done", 1): COMMANDS}  # none was started a second time
    answers = Counter(
        c["body"].split()[0] for c in fake.comments.values() if c["body"].startswith("@user-")
    )
    assert answers == {f"@{user}": 1 for user in users}
    assert not fake.violations, "\n".join(fake.violations)
