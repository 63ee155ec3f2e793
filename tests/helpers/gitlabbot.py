"""The bot on a fake GitLab: real app, GitLab's documented payloads, real git remotes.

The payloads are tests/payloads/gitlab/*.json (see the README there); the fake GitLab is
tests/helpers/fakegitlab.py. Only GitLab is configured, so these tests also show that the bot
runs without any GitHub settings. What the harness shares with the GitHub one (the app,
its clock) is in tests/helpers/fakeforge.py.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse

from bot.config.secrets import Secret
from helpers.fakeforge import FakeClock, ForgeBot, assert_no_violations, bot_settings, start_bot
from helpers.fakegit import ForgeGit
from helpers.fakegitlab import FakeGitLab

PAYLOADS = Path(__file__).parents[1] / "payloads" / "gitlab"
HOOK_TOKEN = "test-gitlab-hook-token"
API_TOKEN = "glpat-test-" + "x" * 20
PROJECT = "platform/shop-deploy"
PROJECT_ID = 42
DEVELOPER, REPORTER, MAINTAINER = 30, 20, 40


@cache
def _payload_file(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return data


def payload(name: str) -> dict[str, Any]:
    """A fresh copy of one of the documented payloads."""
    return copy.deepcopy(_payload_file(name))


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value GitLab sends for a signing token's key."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass
class GitLabBot(ForgeBot):
    """One bot, its fake GitLab, its origin repository and its clock."""

    fake: FakeGitLab

    async def deliver(
        self,
        event: str,
        body: dict[str, Any] | bytes,
        token: str | None = HOOK_TOKEN,
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        """POST a delivery as GitLab does: the event name, a fresh event UUID, the token."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {
            "Content-Type": "application/json",
            "User-Agent": "GitLab/18.4.0",
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": str(uuid.uuid4()),
            "X-Gitlab-Instance": "https://gitlab.example.com",
            "X-Gitlab-Webhook-UUID": "7d3c2b8e-0f55-4c6e-9a52-3b3f2d1e0c11",
            **({"X-Gitlab-Token": token} if token is not None else {}),
            **(headers or {}),
        }
        return await self.client.post("/webhooks/gitlab", data=data, headers=sent)

    def _project(self, data: dict[str, Any]) -> None:
        data["project"].update(
            path_with_namespace=PROJECT, git_http_url=self.clone_url, id=PROJECT_ID
        )

    def merge_request(
        self,
        action: str,
        iid: int,
        base: str,
        head: str,
        oldrev: str | None = None,
        fork: bool = False,
        author: str = "dana",
    ) -> dict[str, Any]:
        """A Merge Request Hook for MR !iid; the fake learns the MR (diff_refs, head)."""
        data = payload("merge_request")
        self._project(data)
        data["user"]["username"] = author
        mr = data["object_attributes"]
        mr.update(iid=iid, action=action, target_project_id=PROJECT_ID)
        mr["source_project_id"] = 4242 if fork else PROJECT_ID
        mr["last_commit"]["id"] = head
        if oldrev is not None:
            mr["oldrev"] = oldrev
        self.fake.merge_requests[iid] = {
            "id": 3000 + iid,
            "iid": iid,
            "project_id": PROJECT_ID,
            "source_project_id": mr["source_project_id"],
            "target_project_id": PROJECT_ID,
            "state": "opened",
            "sha": head,
            "merge_commit_sha": None,
            "squash_commit_sha": None,
            "web_url": f"https://gitlab.example.com/{PROJECT}/-/merge_requests/{iid}",
            "author": {"id": 7, "username": author},
            "diff_refs": {"base_sha": base, "head_sha": head, "start_sha": base},
        }
        self.fake.checking(iid)
        return data

    def opened_by_bot(self, iid: int) -> dict[str, Any]:
        """The Merge Request Hook GitLab sends when the bot opened MR !iid itself."""
        kept = self.fake.merge_requests[iid]
        refs = kept["diff_refs"]
        data = self.merge_request("open", iid, refs["base_sha"], kept["sha"], author="gitops-bot")
        self.fake.merge_requests[iid] = kept  # the fake's own record stays as it made it
        return data

    def merge(self, iid: int, merge_commit: str) -> dict[str, Any]:
        """Mark MR !iid merged as `merge_commit`; returns the Push Hook of that merge."""
        mr = self.fake.merge_requests[iid]
        mr.update(state="merged", merge_commit_sha=merge_commit)
        return self.push("refs/heads/main", mr["diff_refs"]["base_sha"], merge_commit)

    def push(self, ref: str, before: str, after: str) -> dict[str, Any]:
        data = payload("push")
        self._project(data)
        data.update(ref=ref, before=before, after=after, checkout_sha=after)
        data["commits"][0]["id"] = after
        return data

    def note(self, iid: int, body: str, username: str) -> dict[str, Any]:
        return self._note("note_merge_request", "merge_request", iid, body, username)

    def issue_note(self, iid: int, body: str, username: str) -> dict[str, Any]:
        return self._note("note_issue", "issue", iid, body, username)

    def _note(self, example: str, noteable: str, iid: int, body: str, user: str) -> dict[str, Any]:
        data = payload(example)
        self._project(data)
        data["user"]["username"] = user
        data["object_attributes"]["note"] = body
        data[noteable]["iid"] = iid
        return data


GitLabBotFactory = Callable[..., Awaitable[GitLabBot]]


@pytest.fixture
async def make_gitlab_bot(
    tmp_path: Path, aiohttp_client: Any, aiohttp_server: Any
) -> AsyncIterator[GitLabBotFactory]:
    """Build the bot against a fake GitLab; no request may break GitLab's description (or
    python-gitlab's shapes), and every fake is checked for that when the test ends."""
    fakes: list[FakeGitLab] = []

    async def build(workers: bool = False, **overrides: Any) -> GitLabBot:
        clock = FakeClock()
        fake = FakeGitLab(token=API_TOKEN)
        fakes.append(fake)
        server = await aiohttp_server(fake.make_app())
        settings = bot_settings(
            tmp_path,
            **{
                "gitlab_url": str(server.make_url("")).rstrip("/"),
                "gitlab_token": Secret(API_TOKEN),
                "gitlab_webhook_secret": Secret(HOOK_TOKEN),
                **overrides,
            },
        )
        client, sleeps, origin = await start_bot(aiohttp_client, tmp_path, settings, clock, workers)
        fake.git = ForgeGit(origin.path)
        fake.origin = origin.path
        return GitLabBot(client, fake, origin, clock, sleeps, tmp_path / "bot.sqlite3")

    yield build
    assert_no_violations(fakes, "GitLab's description (or python-gitlab's shapes)")
