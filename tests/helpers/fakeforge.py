"""What the fake forges and their bot harnesses share: the record of every request, faults
on demand, the catch-all server, and the real app on a fake clock around them.

fakegithub.py and fakegitlab.py (beside this file) each check requests against their
forge's own description and answer as that forge does; githubbot.py and gitlabbot.py
build the bot against them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import MultiMapping

from bot.config.secrets import Secret
from bot.config.settings import Settings
from bot.server.app import SERVICES, Options, create_app
from bot.server.worker import run_until_idle
from bot.workflows.context import Services
from helpers.gitrepos import Repo
from helpers.storetools import LEDGER_KEY

Handler = Callable[[Any, "Call"], Any]  # (the fake, the call) -> data, or (status, data)


@dataclass(frozen=True)
class Call:
    """One request the bot made: the path without the API's prefix, values decoded."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    credential: str  # the Authorization header (GitHub), the PRIVATE-TOKEN one (GitLab)
    params: dict[str, str] = field(default_factory=dict)  # the path template's values
    if_none_match: str = ""  # the ETag of a conditional request

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Fault:
    """A canned error answer for matching requests, `times` times."""

    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    message: str
    times: int


@dataclass(kw_only=True)
class FakeForge:
    """Records each request, answers faults set up by tests, and dispatches the rest to
    the handler of its operation; subclasses check requests and hold the forge's state."""

    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)  # requests the forge would refuse
    faults: list[Fault] = field(default_factory=list)
    origin: Path | None = None  # the repository the forge serves (its merge refs are made there)
    not_modified: list[Call] = field(default_factory=list)  # conditional requests answered 304
    slow: list[tuple[str, re.Pattern[str], float]] = field(default_factory=list)

    # --- set-up and checks by tests ----------------------------------------------------

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        headers: Mapping[str, str] | None = None,
        message: str = "error",
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests of `method` on a path matching `path` so."""
        self.faults.append(
            Fault(method, re.compile(path), status, dict(headers or {}), message, times)
        )

    def edits(self) -> list[Call]:
        """Every request that changed something the forge shows (all but reads)."""
        return [c for c in self.calls if c.method != "GET" and "access_tokens" not in c.path]

    def answer_slowly(self, method: str, path: str, seconds: float) -> None:
        """Answer requests of `method` on a path matching `path` after `seconds`, as a
        forge under load does (the bot's job then runs that much longer)."""
        self.slow.append((method, re.compile(path), seconds))

    async def _delay(self, call: Call) -> None:
        for method, path, seconds in self.slow:
            if method == call.method and path.search(call.path):
                await asyncio.sleep(seconds)

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.search(pattern, c.path)]

    # --- the server ----------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def _outside(self, request: web.Request, path: str, prefix: str) -> bool:
        """Whether the request misses the API's prefix (a violation, answered 404)."""
        if path.startswith(prefix + "/"):
            return False
        self.violations.append(f"{request.method} {path}: not under {prefix}/")
        return True

    def _fault(self, call: Call) -> Fault | None:
        for fault in self.faults:
            if fault.times and fault.method == call.method and fault.path.search(call.path):
                fault.times -= 1
                return fault
        return None

    def _dispatch(
        self, handlers: Mapping[tuple[str, str], Handler], template: str, call: Call
    ) -> tuple[int, Any]:
        """(status, data) from the handler of the operation; a fake without one for an
        operation the description allows is a violation too (the test cannot vouch for it)."""
        handler = handlers.get((call.method, template))
        if handler is None:
            self.violations.append(f"the fake has no answer for {call.method} {template}")
            return 404, {"message": "404 Not Found"}
        result = handler(self, call)
        return result if isinstance(result, tuple) else (200, result)

    def conditional(
        self, call: Call, data: Any, status: int, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """A GET's answer carries an ETag of its content, as both forges send; a request
        whose If-None-Match names the current one is answered 304 Not Modified, no body."""
        if call.method != "GET" or status != 200:
            return json_response(data, status, headers)
        etag = '"' + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest() + '"'
        tagged = {**(headers or {}), "ETag": etag}
        if call.if_none_match == etag:
            self.not_modified.append(call)
            return web.Response(status=304, headers=tagged)
        return json_response(data, status, tagged)


def git_head(origin: Path, branch: str) -> str | None:
    """The commit `branch` points at in a real repository, None when there is no branch."""
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        cwd=origin,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def git_has_file(origin: Path, commit: str, path: str) -> bool:
    """Whether `path` exists at `commit` in a real repository."""
    done = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}:{path}"], cwd=origin, capture_output=True
    )
    return done.returncode == 0


def single_values(query: MultiMapping[str]) -> dict[str, str]:
    return {key: query[key] for key in query}


def json_response(data: Any, status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    if data is None:
        return web.Response(status=status, headers=headers)
    return web.json_response(data, status=status, headers=headers)


def assert_no_violations(fakes: Iterable[FakeForge], description: str) -> None:
    """Every request each fake saw was one `description` allows (run when a test ends)."""
    for fake in fakes:
        assert not fake.violations, f"requests {description} rejects:\n" + "\n".join(
            fake.violations
        )


# --- the bot around a fake forge ---------------------------------------------------------


@dataclass
class FakeClock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ForgeBot:
    """One bot, the fake forge it talks to, its origin repository and its clock."""

    client: TestClient[Any, Any]
    fake: FakeForge
    origin: Repo
    clock: FakeClock
    sleeps: list[float]  # what the bot slept, in order (each advanced the clock at once)
    database: Path

    @property
    def services(self) -> Services:
        return self.client.app[SERVICES]  # type: ignore[index]

    @property
    def clone_url(self) -> str:
        return self.origin.path.as_uri()

    async def drain(self) -> int:
        """Run every job that is due, as the workers would."""
        return await run_until_idle(self.services)


def bot_settings(tmp_path: Path, **settings: Any) -> Settings:
    """A SQLite store and data under `tmp_path`, file:// origins, three tries per job, no
    catch-up timer; the forge's own settings (and a test's overrides) on top."""
    defaults = {
        "database_url": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "data_dir": tmp_path / "data",
        "git_allow_file_remotes": True,
        "job_max_attempts": 3,
        # Tests count the jobs of their own deliveries: no catch-up scans at start-up
        # unless a test asks for them (tests/test_catch_up.py).
        "catch_up_interval_seconds": 0,
        "ledger_key": Secret(LEDGER_KEY),
    }
    return Settings(**{**defaults, **settings})


async def start_bot(
    aiohttp_client: Any, tmp_path: Path, settings: Settings, clock: FakeClock, workers: bool
) -> tuple[TestClient[Any, Any], list[float], Repo]:
    """The real app on `clock`, whose sleeps return at once and advance it; its origin."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    options = Options(clock=clock, sleep=sleep, run_workers=workers)
    client = await aiohttp_client(create_app(settings, options))
    return client, sleeps, Repo(tmp_path / "origin")
