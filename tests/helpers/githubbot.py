"""The bot on a fake GitHub: real app, real payload examples, real git remotes, as fixtures.

Payloads come from @octokit/webhooks-examples and GitHub's REST description from
@octokit/openapi, both fetched at pinned versions by tests/openapi/install.sh (the
Makefile's test target runs it; these fixtures run it too when build/npm is missing).
What the harness shares with the GitLab one (the app, its clock) is in tests/helpers/fakeforge.py.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.config.secrets import Secret
from helpers.fakeforge import FakeClock, ForgeBot, assert_no_violations, bot_settings, start_bot
from helpers.fakegit import ForgeGit
from helpers.fakegithub import FakeGitHub, OpenAPIDescription

ROOT = Path(__file__).resolve().parents[2]
NPM = ROOT / "build" / "npm" / "node_modules" / "@octokit"
INSTALL_SCRIPT = ROOT / "tests" / "openapi" / "install.sh"
SECRET = "test-webhook-secret"
INSTALLATION = 7788
SLUG = "Codertocat/Hello-World"

CONFIG = """\
version: 1
environments:
  staging:
    path: deploy/staging
    cluster: staging
    namespace: shop
    apply_on_merge: true
    prune: true
  production:
    path: deploy/production
    cluster: production
    namespace: shop
    apply_on_merge: true
"""


def deployment(name: str, image: str) -> str:
    """A Deployment the default policies accept, unless `image` is not pinned (line 19)."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
    spec:
      containers:
        - name: {name}
          image: {image}
          resources:
            limits: {{cpu: 250m, memory: 256Mi}}
"""


def base_tree() -> dict[str, str | bytes]:
    return {
        ".gitops-bot.yaml": CONFIG,
        "deploy/staging/web.yaml": deployment("web", "registry.example.com/web:1.0.0"),
        "deploy/production/web.yaml": deployment("web", "registry.example.com/web:1.0.0"),
    }


def npm_file(relative: str) -> Path:
    """A file of the pinned npm packages, installing them first when they are missing."""
    path = NPM / relative
    if not path.exists():
        done = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True)
        if done.returncode != 0 or not path.exists():
            pytest.fail(
                f"cannot install the npm test fixtures ({INSTALL_SCRIPT}): {done.stderr[-500:]}; "
                "the tests need npm and the npm registry",
                pytrace=False,
            )
    return path


@cache
def _examples() -> dict[str, list[dict[str, Any]]]:
    index = json.loads(npm_file("webhooks-examples/api.github.com/index.json").read_text())
    return {entry["name"]: entry["examples"] for entry in index}


def example(event: str, action: str | None = None, ref: str | None = None) -> dict[str, Any]:
    """A fresh copy of the first real example payload for `event` (and `action`, `ref`)."""
    for payload in _examples()[event]:
        if action is not None and payload.get("action") != action:
            continue
        if ref is not None and payload.get("ref") != ref:
            continue
        return copy.deepcopy(payload)
    raise LookupError(f"@octokit/webhooks-examples has no {event} {action or ''} {ref or ''}")


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class BotHarness(ForgeBot):
    """One bot, its fake GitHub, its origin repository and its clock."""

    fake: FakeGitHub

    async def deliver(
        self,
        event: str,
        payload: dict[str, Any],
        delivery_id: str | None = None,
        signature: str | None = None,
    ) -> ClientResponse:
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-Hub-Signature-256": signature if signature is not None else sign(body),
        }
        return await self.client.post("/webhooks/github", data=body, headers=headers)

    def _repository(self, payload: dict[str, Any]) -> None:
        payload["repository"]["clone_url"] = self.clone_url
        payload["repository"]["full_name"] = SLUG
        payload["installation"] = {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uMQ=="}

    def pull_request(
        self,
        action: str,
        number: int,
        base: str,
        head: str,
        fork: bool = False,
        before: str | None = None,
    ) -> dict[str, Any]:
        """A real pull_request example, pointed at our origin and commits (`before`: the
        head a synchronize replaced); the fake knows it."""
        payload = example("pull_request", action)
        if before is not None:
            payload["before"] = before
        self._repository(payload)
        pull = payload["pull_request"]
        payload["number"] = pull["number"] = number
        pull["base"]["sha"], pull["head"]["sha"] = base, head
        pull["base"]["repo"]["full_name"] = SLUG
        pull["head"]["repo"]["full_name"] = "Forker/Hello-World" if fork else SLUG
        self.fake.pulls[number] = {**pull, "merged_at": None, "merge_commit_sha": None}
        self.fake.pending_test_merge(number)
        return payload

    def merge(self, number: int, merge_commit: str) -> dict[str, Any]:
        """Mark the PR merged as `merge_commit`; returns the push example for that merge."""
        pull = self.fake.pulls[number]
        pull.update(merged_at="2026-01-01T00:00:00Z", merge_commit_sha=merge_commit, state="closed")
        payload = example("push", ref="refs/heads/master")
        self._repository(payload)
        payload["before"], payload["after"] = pull["base"]["sha"], merge_commit
        return payload

    def opened_by_bot(self, number: int) -> dict[str, Any]:
        """The `pull_request` `opened` delivery GitHub sends for a PR the bot opened."""
        pull = self.fake.pulls[number]
        payload = example("pull_request", "opened")
        self._repository(payload)
        payload["number"] = number
        sent = payload["pull_request"]
        sent.update(number=number, title=pull["title"], body=pull["body"], user=pull["user"])
        for side in ("base", "head"):
            sent[side].update(sha=pull[side]["sha"], ref=pull[side]["ref"])
            sent[side]["repo"]["full_name"] = SLUG
        return payload

    def comment(self, number: int, body: str, login: str) -> dict[str, Any]:
        payload = example("issue_comment", "created")
        self._repository(payload)
        payload["issue"]["number"] = number
        payload["issue"]["pull_request"] = {
            "url": f"https://api.github.com/repos/{SLUG}/pulls/{number}"
        }
        payload["comment"]["body"] = body
        payload["comment"]["user"]["login"] = login
        return payload


@pytest.fixture(scope="session")
def openapi() -> OpenAPIDescription:
    return OpenAPIDescription(npm_file("openapi/generated/api.github.com.json"))


@pytest.fixture(scope="session")
def app_key() -> tuple[str, str]:
    """A GitHub App key pair: (private PEM for the bot, public PEM for the fake)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


BotFactory = Callable[..., Awaitable[BotHarness]]


@pytest.fixture
async def make_bot(
    tmp_path: Path,
    openapi: OpenAPIDescription,
    app_key: tuple[str, str],
    aiohttp_client: Any,
    aiohttp_server: Any,
) -> AsyncIterator[BotFactory]:
    """Build the bot as a GitHub App (default) or with a token; no request may break the
    description, and every fake is checked for that when the test ends."""
    fakes: list[FakeGitHub] = []

    async def build(
        mode: str = "app", workers: bool = False, prefix: str = "", **overrides: Any
    ) -> BotHarness:
        clock = FakeClock()
        fake = FakeGitHub(openapi, clock, prefix=prefix)
        if mode == "app":
            fake.public_key = app_key[1]
            credentials = {"github_app_id": fake.app_id, "github_private_key": Secret(app_key[0])}
        else:
            fake.personal_token = "ghp_" + uuid.uuid4().hex
            credentials = {"github_token": Secret(fake.personal_token)}
        fakes.append(fake)
        server = await aiohttp_server(fake.make_app())
        settings = bot_settings(
            tmp_path,
            **{
                "github_api_url": str(server.make_url("")).rstrip("/") + prefix,
                "github_webhook_secret": Secret(SECRET),
                **credentials,
                **overrides,  # a test's own word wins, as over bot_settings' defaults
            },
        )
        client, sleeps, origin = await start_bot(aiohttp_client, tmp_path, settings, clock, workers)
        fake.git = ForgeGit(origin.path)
        fake.origin = origin.path
        return BotHarness(client, fake, origin, clock, sleeps, tmp_path / "bot.sqlite3")

    yield build
    assert_no_violations(fakes, "GitHub's description")
