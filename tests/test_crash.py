"""Crash test: `gitops-bot serve` killed with SIGKILL at random moments while signed
deliveries stream in, with each store backend. After the restarts, every delivery that
was acknowledged with a 2xx has been processed exactly once, and the audit ledger holds
one record per apply, chained and verifiable.

"Exactly once" is checked on what the outside world sees: one job per delivery that
ends done; one GitHub deployment per commit and environment (the fake records them); one
ledger record per apply. A job its worker was killed in runs again after its lease
runs out, so these effects must be, and are, idempotent.

The randomness is seeded; set GITOPS_BOT_CRASH_SEED to replay a run (the seed is printed).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers.botprocess import ROOT, BotProcess, Delivery, bot_environment, deliver, push
from helpers.botprocess import origin_with_commits as make_origin
from helpers.fakegithub import FakeGitHub, OpenAPIDescription
from helpers.storetools import LEDGER_KEY, execute_sql, wait_until_idle

TRIALS = 20  # kills per backend
PUSHES_PER_TRIAL = 5  # new deliveries per trial; a few earlier ones are redelivered too
REDELIVERIES_PER_TRIAL = 3
LEASE_SECONDS = "3"  # how soon a killed worker's job is taken over
DRAIN_GUARD_SECONDS = 600  # a guard against a hang, not a timing claim


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("GITOPS_BOT_CRASH_SEED") or time.time_ns() % 2**32)
    print(f"crash test seed: {value} (GITOPS_BOT_CRASH_SEED={value} replays it)")
    return value


async def test_sigkill_loses_no_acknowledged_delivery_and_repeats_no_effect(
    database_url: str, seed: int, tmp_path: Path, openapi: OpenAPIDescription, aiohttp_server: Any
) -> None:
    chance = random.Random(seed)
    fake = FakeGitHub(openapi, time.time)
    fake.personal_token = "ghp_" + uuid.uuid4().hex
    api = await aiohttp_server(fake.make_app())
    origin, commits = make_origin(tmp_path / "origin", TRIALS * PUSHES_PER_TRIAL, linear=False)
    # Every push is for its own repository: no two jobs coalesce, so every one must run.
    pushes = [push(origin, f"crash/repo-{n}", commit) for n, commit in enumerate(commits)]
    bot = BotProcess(
        bot_environment(
            database_url,
            str(api.make_url("")).rstrip("/"),
            fake.personal_token,
            tmp_path / "data",
            job_lease_seconds=LEASE_SECONDS,
            worker_count="3",
        ),
        tmp_path / "bot.log",
    )
    answers: dict[str, list[int | None]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await bot.start(session)
        for trial in range(TRIALS):
            batch = pushes[trial * PUSHES_PER_TRIAL : (trial + 1) * PUSHES_PER_TRIAL]
            sent = pushes[: trial * PUSHES_PER_TRIAL]
            batch += chance.sample(sent, min(len(sent), REDELIVERIES_PER_TRIAL))
            pauses = [chance.uniform(0, 0.1) for _ in batch]
            await _trial(session, bot, batch, pauses, chance.uniform(0.05, 1.2), answers)
        await wait_until_idle(database_url, DRAIN_GUARD_SECONDS)
        await bot.stop()
    _check_deliveries(database_url, answers, pushes)
    _check_effects(fake, commits)
    _check_ledger(database_url, commits, tmp_path)
    assert not fake.violations, "\n".join(fake.violations)


async def _trial(
    session: aiohttp.ClientSession,
    bot: BotProcess,
    batch: list[Delivery],
    pauses: list[float],
    kill_after: float,
    answers: dict[str, list[int | None]],
) -> None:
    """Stream the batch, SIGKILL the bot meanwhile, restart it, then redeliver whatever
    got no 2xx (as GitHub's redelivery would)."""
    asyncio.get_running_loop().call_later(kill_after, bot.kill)
    for item, pause in zip(batch, pauses, strict=True):
        answers.setdefault(item.id, []).append(await deliver(session, bot, item))
        await asyncio.sleep(pause)  # spread the batch, so kills land between deliveries too
    while bot.process is not None and bot.process.poll() is None:
        await asyncio.sleep(0.05)  # the kill is still to come
    await bot.start(session)
    for item in batch:
        if not _acknowledged(answers[item.id]):
            answers[item.id].append(await deliver(session, bot, item))


def _acknowledged(statuses: list[int | None]) -> bool:
    return any(s is not None and 200 <= s < 300 for s in statuses)


def _check_deliveries(
    database_url: str, answers: dict[str, list[int | None]], pushes: list[Delivery]
) -> None:
    rows = execute_sql(
        database_url,
        "SELECT d.id, j.state, j.attempts FROM deliveries AS d "
        "LEFT JOIN jobs AS j ON j.delivery_id = d.id",
    )
    jobs: dict[str, list[tuple[str, int]]] = {}
    for delivery_id, state, attempts in rows:
        jobs.setdefault(delivery_id, []).append((state, attempts))
    acknowledged = [i for i, statuses in answers.items() if _acknowledged(statuses)]
    assert len(acknowledged) == len(pushes), "every delivery is acknowledged in the end"
    for delivery_id in acknowledged:
        assert [state for state, _ in jobs[delivery_id]] == ["done"], delivery_id
    assert set(jobs) == set(acknowledged)  # nothing stored that was never sent
    unanswered = sum(s is None for statuses in answers.values() for s in statuses)
    resumed = sum(attempts > 1 for runs in jobs.values() for _, attempts in runs)
    print(f"{unanswered} deliveries unanswered at a kill; {resumed} jobs resumed after one")
    assert unanswered and resumed, "the kills never hit a delivery or a job: no crash tested"
    duplicates = Counter(s for statuses in answers.values() for s in statuses)
    assert set(duplicates) <= {None, 200, 202}, duplicates


def _check_effects(fake: FakeGitHub, commits: list[str]) -> None:
    """One GitHub deployment per commit and environment, whatever ran twice."""
    made = Counter((d["sha"], d["environment"]) for d in fake.deployments.values())
    expected = {(c, env): 1 for c in commits for env in ("staging", "production")}
    assert made == expected


def _check_ledger(database_url: str, commits: list[str], tmp_path: Path) -> None:
    rows = execute_sql(database_url, "SELECT commit_sha, environment FROM audit_ledger")
    recorded = Counter((commit, env) for commit, env in rows)
    assert recorded == {(c, env): 1 for c in commits for env in ("staging", "production")}
    done = _audit_cli(database_url, "--verify")
    assert done.returncode == 0, done.stderr
    assert f"{2 * len(commits)} records, every link verified" in done.stdout


def _audit_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", "audit", *args],
        env={**env, "GITOPS_BOT_DATABASE_URL": database_url, "GITOPS_BOT_LEDGER_KEY": LEDGER_KEY},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
