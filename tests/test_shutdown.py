"""Graceful shutdown: `gitops-bot serve` gets SIGTERM while signed deliveries stream in.

It stops being ready and claims no new job, keeps storing (and acknowledging) deliveries
until it stops listening, lets the jobs in hand finish, or releases them to the queue
when they outlive the grace period, and exits 0. After a restart every delivery that was
acknowledged with a 2xx is processed exactly once: one job that ends done, one GitHub
deployment per commit and environment.

The jobs are held at a gate in the fake GitHub (their first deployment request waits
there), so what runs when the signal arrives is decided by the test, not by timing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from helpers.botprocess import BotProcess, Delivery, bot_environment, deliver, push
from helpers.botprocess import origin_with_commits as make_origin
from helpers.fakegithub import FakeGitHub, OpenAPIDescription
from helpers.storetools import execute_sql, wait_until_idle

from bot.store.ports import JobState

WORKERS = 3
DELIVERIES = 12  # each for its own repository: no two jobs coalesce, every one must run
GUARD_SECONDS = 120  # against a hang, never a timing claim


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


class Gate:
    """Holds the bot's deployment requests until opened. A request whose sender went away
    meanwhile (its bot process ended) is dropped, never answered late."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.waiting = 0

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method == "POST" and request.path.endswith("/deployments"):
            self.waiting += 1
            try:
                await self.opened.wait()
            finally:
                self.waiting -= 1
            if request.transport is None or request.transport.is_closing():
                raise web.HTTPServiceUnavailable()  # nobody is listening any more
        return await handler(request)


async def _fake_github(
    openapi: OpenAPIDescription, aiohttp_server: Any
) -> tuple[FakeGitHub, Gate, str]:
    fake = FakeGitHub(openapi, time.time)
    fake.personal_token = "ghp_" + uuid.uuid4().hex
    gate = Gate()
    app = fake.make_app()
    app.middlewares.append(gate.middleware)
    server = await aiohttp_server(app)
    return fake, gate, str(server.make_url("")).rstrip("/")


def _bot(database_url: str, api: str, fake: FakeGitHub, tmp_path: Path, grace: int) -> BotProcess:
    environment = bot_environment(
        database_url,
        api,
        fake.personal_token or "",
        tmp_path / "data",
        worker_count=str(WORKERS),
        shutdown_grace_seconds=str(grace),
    )
    return BotProcess(environment, tmp_path / "bot.log")


async def test_sigterm_mid_stream_finishes_jobs_in_hand_and_loses_nothing(
    database_url: str, tmp_path: Path, openapi: OpenAPIDescription, aiohttp_server: Any
) -> None:
    fake, gate, api = await _fake_github(openapi, aiohttp_server)
    origin, commits = make_origin(tmp_path / "origin", DELIVERIES, linear=False)
    pushes = [push(origin, f"stop/repo-{n}", commit) for n, commit in enumerate(commits)]
    bot = _bot(database_url, api, fake, tmp_path, grace=300)
    answers: dict[str, list[int | None]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await bot.start(session)
        first, rest = pushes[: DELIVERIES // 2], pushes[DELIVERIES // 2 :]
        await _send(session, bot, first, answers)
        await _until_busy(database_url, gate)  # every worker holds a job, mid-apply
        bot.terminate()
        await _until_not_ready(session, bot)
        await _send(session, bot, rest, answers)  # stored while the bot drains
        assert all(answers[d.id] == [202] for d in rest), answers
        gate.opened.set()
        assert await bot.exit_code(GUARD_SECONDS) == 0, bot.log.read_text()[-3000:]
        # The jobs in hand finished; no job was claimed after the signal; none is left held.
        states = _states(database_url)
        assert states[JobState.RUNNING] == 0
        assert states[JobState.DONE] == WORKERS
        assert _claimed(database_url) == WORKERS
        await bot.start(session)
        await _redeliver_unanswered(session, bot, pushes, answers)
        await wait_until_idle(database_url, GUARD_SECONDS, poll=0.2)
        await bot.stop()
    _check_exactly_once(database_url, fake, answers, commits)


async def test_sigterm_releases_jobs_that_outlive_the_grace_period(
    database_url: str, tmp_path: Path, openapi: OpenAPIDescription, aiohttp_server: Any
) -> None:
    fake, gate, api = await _fake_github(openapi, aiohttp_server)
    origin, commits = make_origin(tmp_path / "origin", DELIVERIES, linear=False)
    pushes = [push(origin, f"stop/repo-{n}", commit) for n, commit in enumerate(commits)]
    bot = _bot(database_url, api, fake, tmp_path, grace=3)
    answers: dict[str, list[int | None]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await bot.start(session)
        await _send(session, bot, pushes, answers)
        await _until_busy(database_url, gate)
        bot.terminate()  # the gate stays shut: the jobs in hand can never finish
        assert await bot.exit_code(GUARD_SECONDS) == 0, bot.log.read_text()[-3000:]
        released = execute_sql(
            database_url,
            "SELECT id FROM jobs WHERE state = 'ready' AND last_error LIKE %s",
            ("%released by%",),
        )
        assert len(released) == WORKERS, "each job in hand went back to the queue"
        assert _states(database_url)[JobState.RUNNING] == 0
        assert "released: it runs again" in bot.log.read_text()
        gate.opened.set()
        await bot.start(session)  # no lease to wait out: the released jobs run at once
        await _redeliver_unanswered(session, bot, pushes, answers)
        await wait_until_idle(database_url, GUARD_SECONDS, poll=0.2)
        await bot.stop()
    _check_exactly_once(database_url, fake, answers, commits)


async def test_a_second_signal_releases_the_jobs_in_hand_at_once(
    tmp_path: Path, openapi: OpenAPIDescription, aiohttp_server: Any
) -> None:
    """An operator's second Ctrl-C (or SIGTERM) does not wait out a long grace period."""
    database_url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    fake, gate, api = await _fake_github(openapi, aiohttp_server)
    origin, commits = make_origin(tmp_path / "origin", WORKERS, linear=False)
    pushes = [push(origin, f"stop/repo-{n}", commit) for n, commit in enumerate(commits)]
    bot = _bot(database_url, api, fake, tmp_path, grace=3600)
    answers: dict[str, list[int | None]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await bot.start(session)
        await _send(session, bot, pushes, answers)
        await _until_busy(database_url, gate)
        bot.terminate()
        await _until_not_ready(session, bot)
        bot.terminate()
        assert await bot.exit_code(GUARD_SECONDS) == 0, bot.log.read_text()[-3000:]
        states = _states(database_url)
        assert (states[JobState.READY], states[JobState.RUNNING]) == (WORKERS, 0)
        gate.opened.set()
        await bot.start(session)
        await wait_until_idle(database_url, GUARD_SECONDS, poll=0.2)
        await bot.stop()
    _check_exactly_once(database_url, fake, answers, commits)


async def _send(
    session: aiohttp.ClientSession,
    bot: BotProcess,
    items: list[Delivery],
    answers: dict[str, list[int | None]],
) -> None:
    for item in items:
        answers.setdefault(item.id, []).append(await deliver(session, bot, item))


async def _redeliver_unanswered(
    session: aiohttp.ClientSession,
    bot: BotProcess,
    items: list[Delivery],
    answers: dict[str, list[int | None]],
) -> None:
    """What an operator does after a restart: redeliver what got no 2xx."""
    for item in items:
        if not _acknowledged(answers[item.id]):
            answers[item.id].append(await deliver(session, bot, item))


def _acknowledged(statuses: list[int | None]) -> bool:
    return any(s is not None and 200 <= s < 300 for s in statuses)


async def _until_not_ready(session: aiohttp.ClientSession, bot: BotProcess) -> None:
    deadline = time.monotonic() + GUARD_SECONDS
    while True:
        async with session.get(f"{bot.url}/readyz") as response:
            if response.status == 503:
                assert "shutting down" in await response.text()
                return
        assert time.monotonic() < deadline, "the bot stayed ready after SIGTERM"
        await asyncio.sleep(0.05)


async def _until_busy(database_url: str, gate: Gate) -> None:
    """Every worker holds a job: one waits at the gate, the others behind it (the bot sends
    one content-creating request at a time per installation)."""
    deadline = time.monotonic() + GUARD_SECONDS
    while gate.waiting < 1 or _states(database_url)[JobState.RUNNING] < WORKERS:
        assert time.monotonic() < deadline, f"not every worker got a job: {_states(database_url)}"
        await asyncio.sleep(0.05)


def _states(database_url: str) -> Counter[str]:
    rows = execute_sql(database_url, "SELECT state, COUNT(*) FROM jobs GROUP BY state")
    return Counter({state: count for state, count in rows})


def _claimed(database_url: str) -> int:
    """How many claims were ever made (each claim counts an attempt)."""
    ((total,),) = execute_sql(database_url, "SELECT COALESCE(SUM(attempts), 0) FROM jobs")
    return int(total)


def _check_exactly_once(
    database_url: str, fake: FakeGitHub, answers: dict[str, list[int | None]], commits: list[str]
) -> None:
    acknowledged = {i for i, statuses in answers.items() if _acknowledged(statuses)}
    assert len(acknowledged) == len(commits), answers
    rows = execute_sql(
        database_url,
        "SELECT d.id, j.state FROM deliveries AS d JOIN jobs AS j ON j.delivery_id = d.id",
    )
    jobs: dict[str, list[str]] = {}
    for delivery_id, state in rows:
        jobs.setdefault(delivery_id, []).append(state)
    assert jobs == {delivery_id: ["done"] for delivery_id in acknowledged}
    made = Counter((d["sha"], d["environment"]) for d in fake.deployments.values())
    assert made == {(c, env): 1 for c in commits for env in ("staging", "production")}
    assert not fake.violations, "\n".join(fake.violations)
