"""`gitops-bot serve` as real processes for crash and replica tests: start, kill, deliver.

The fake GitHub runs in the test process (on loopback); the bots are subprocesses that
talk to it and to the store named by their database URL. Deliveries are real signed
webhook requests built from @octokit/webhooks-examples payloads.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from helpers.fakegithub import FakeGitHub
from helpers.githubbot import CONFIG, SECRET, deployment, example, sign
from helpers.gitrepos import Repo
from helpers.storetools import LEDGER_KEY

ROOT = Path(__file__).resolve().parents[2]
START_GUARD_SECONDS = 120  # a guard against a hung start, not a timing claim


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_environment(
    database_url: str, api_url: str, token: str, data_dir: Path, **settings: str
) -> dict[str, str]:
    """The server settings of one bot process, as GITOPS_BOT_* variables."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    values = {
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "GITHUB_API_URL": api_url,
        "GITHUB_TOKEN": token,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GIT_ALLOW_FILE_REMOTES": "true",
        # These scenarios count the jobs of their own deliveries: no catch-up scans
        # (tests/test_catch_up.py has those), unless a test asks for them.
        "CATCH_UP_INTERVAL_SECONDS": "0",
        "LEDGER_KEY": LEDGER_KEY,
        **settings,
    }
    return {**keep, **{f"GITOPS_BOT_{k.upper()}": v for k, v in values.items()}}


@dataclass
class BotProcess:
    """One `gitops-bot serve`, restartable on the same port and store."""

    environment: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    clock_skew_seconds: float = 0.0  # how far this host's clock (time.time) is off

    def _command(self) -> list[str]:
        if not self.clock_skew_seconds:
            return [sys.executable, "-m", "bot", "serve"]
        # A host whose clock is off: time.time is shifted before the bot is imported,
        # so every clock the bot reads (its defaults bind time.time) is this one.
        skewed = (
            "import runpy, sys, time\n"
            "real = time.time\n"
            f"time.time = lambda: real() + {self.clock_skew_seconds!r}\n"
            "sys.argv = ['gitops-bot', 'serve']\n"
            "runpy.run_module('bot', run_name='__main__', alter_sys=True)\n"
        )
        return [sys.executable, "-c", skewed]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, session: aiohttp.ClientSession) -> None:
        env = {**self.environment, "GITOPS_BOT_PORT": str(self.port)}
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            self.process = subprocess.Popen(
                self._command(),
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        deadline = time.monotonic() + START_GUARD_SECONDS
        while not await self._ready(session):
            if self.process.poll() is not None:
                raise AssertionError(f"the bot exited: {self.log.read_text()[-3000:]}")
            assert time.monotonic() < deadline, "the bot did not become ready"
            await asyncio.sleep(0.05)

    async def _ready(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(f"{self.url}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM, as Kubernetes and Fly.io send it: the bot shuts down gracefully."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    async def exit_code(self, guard_seconds: float = 120) -> int:
        """Wait for the process to end by itself (the guard is against a hang only)."""
        assert self.process is not None
        return await asyncio.to_thread(self.process.wait, guard_seconds)

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        await asyncio.to_thread(self.process.wait, 60)


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery; sending it again with the same id is a redelivery."""

    event: str
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def body(self) -> bytes:
        return json.dumps(self.payload).encode()


async def deliver(session: aiohttp.ClientSession, bot: BotProcess, item: Delivery) -> int | None:
    """The status the bot answered, or None when no answer came (it died meanwhile)."""
    body = item.body
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": item.event,
        "X-GitHub-Delivery": item.id,
        "X-Hub-Signature-256": sign(body),
    }
    try:
        async with session.post(
            f"{bot.url}/webhooks/github", data=body, headers=headers
        ) as response:
            await response.read()
            return response.status
    except (TimeoutError, aiohttp.ClientError):
        return None


def two_environments(n: int) -> dict[str, str]:
    """The tree of merge `n` in the GitHub tests' repository layout (staging, production)."""
    manifest = deployment("web", f"registry.example.com/web:1.0.{n}")
    return {
        ".gitops-bot.yaml": CONFIG,
        "deploy/staging/web.yaml": manifest,
        "deploy/production/web.yaml": manifest,
    }


def origin_with_commits(
    path: Path,
    count: int,
    tree: Callable[[int], dict[str, str]] = two_environments,
    linear: bool = True,
) -> tuple[Repo, list[str]]:
    """A repository with `count` commits (trees `tree(0)`, `tree(1)`, ...) made in one
    `git fast-import`, oldest first: one line of history on `main`, or (`linear=False`)
    unrelated commits on a branch each, cheap to fetch one by one."""
    repo = Repo(path)
    stream = []
    for n in range(count):
        branch = "main" if linear else f"merge-{n}"
        stream.append(f"commit refs/heads/{branch}\nmark :{n + 1}\n")
        stream.append(f"committer Test <test@example.com> {1_700_000_000 + n} +0000\n")
        stream.append(_data(f"merge {n}"))
        if n and linear:
            stream.append(f"from :{n}\n")
        for name, text in tree(n).items():
            stream.append(f"M 100644 inline {name}\n" + _data(text))
    stream.append("".join(f"get-mark :{n + 1}\n" for n in range(count)))
    done = subprocess.run(
        ["git", "fast-import", "--quiet", "--cat-blob-fd=1"],
        cwd=repo.path,
        input="".join(stream),
        capture_output=True,
        text=True,
        check=True,
    )
    return repo, done.stdout.split()


def _data(text: str) -> str:
    return f"data {len(text.encode())}\n{text}\n"


def push(origin: Repo, slug: str, commit: str, before: str | None = None) -> Delivery:
    """The push a merge of `commit` into the default branch of `slug` sends."""
    payload = _pointed(example("push", ref="refs/heads/master"), origin, slug)
    payload["before"], payload["after"] = before or "0" * 40, commit
    return Delivery("push", payload)


def pull_request(
    fake: FakeGitHub, origin: Repo, slug: str, number: int, base: str, head: str
) -> Delivery:
    """Pull request `number` of `slug` opened from `head` onto `base`; the fake knows it."""
    payload = _pointed(example("pull_request", "opened"), origin, slug)
    pull = payload["pull_request"]
    payload["number"] = pull["number"] = number
    pull["base"]["sha"], pull["head"]["sha"] = base, head
    pull["base"]["repo"]["full_name"] = pull["head"]["repo"]["full_name"] = slug
    fake.pulls[number] = {**pull, "merged_at": None, "merge_commit_sha": None}
    return Delivery("pull_request", payload)


def comment(origin: Repo, slug: str, number: int, login: str, body: str) -> Delivery:
    """`login` comments `body` on pull request `number` of `slug`."""
    payload = _pointed(example("issue_comment", "created"), origin, slug)
    payload["issue"]["number"] = number
    payload["issue"]["pull_request"] = {
        "url": f"https://api.github.com/repos/{slug}/pulls/{number}"
    }
    payload["comment"]["body"] = body
    payload["comment"]["user"].update(login=login, type="User")
    return Delivery("issue_comment", payload)


def _pointed(payload: dict[str, Any], origin: Repo, slug: str) -> dict[str, Any]:
    payload["repository"].update(
        clone_url=origin.path.as_uri(), full_name=slug, default_branch="master"
    )
    payload["installation"] = {"id": 7788, "node_id": "MDIzOkludGVncmF0aW9uMQ=="}
    return payload
