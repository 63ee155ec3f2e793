"""Notifications through the real app: merges and dead letters notify a receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import runpy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from helpers.githubbot import BotFactory, BotHarness, base_tree, deployment
from helpers.livecluster import LiveEnv
from helpers.readmeblocks import readme_block
from test_drift_bot import _bot as drift_bot
from test_drift_bot import _check as drift_check
from test_drift_bot import _edit as drift_edit
from test_drift_bot import _merge as drift_merge
from test_drift_bot import _tree as drift_tree

from bot.config.notifications import parse_targets
from bot.config.settings import SettingsError, load_settings
from bot.core.applies import ApplyResult
from bot.core.notifications import PullRequestRef, applied, slack_message
from bot.server.worker import Worker
from bot.store.ports import JobState
from bot.telemetry.logs import secret_values

CART = deployment("cart", "registry.example.com/cart:1.0.0")
HMAC_KEY = "receiver-shared-secret"


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers `failures` times 500, hangs when told to."""

    failures: int = 0
    hang: bool = False
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if self.hang:
            await self.released.wait()
        if self.failures:
            self.failures -= 1
            return web.Response(status=500, text="not now")
        self.accepted.append(json.loads(body))
        return web.Response(status=204)


@pytest.fixture
async def receiver(aiohttp_server: Any) -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    server = await aiohttp_server(app)
    found.url = str(server.make_url("/hook"))
    yield found
    found.released.set()


def _targets(receiver: Receiver, kind: str = "webhook", **extra: Any) -> Any:
    entry = {"name": "receiver", "kind": kind, "url": receiver.url, **extra}
    if kind == "webhook":
        entry["secret"] = HMAC_KEY
    return parse_targets([entry])


def _merged(bot: BotHarness, number: int) -> str:
    """PR `number` merged: its merge commit, not yet delivered."""
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": CART})
    bot.pull_request("opened", number, base, head)
    return bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": CART}, "Merge")


async def _merge(bot: BotHarness, number: int, merge: str | None = None) -> str:
    """PR `number` merged, and its push delivered, signed, to the app."""
    merge = merge or _merged(bot, number)
    response = await bot.deliver("push", bot.merge(number, merge))
    assert response.status == 202
    return merge


def _readme_verify(folder: Path) -> Any:
    """The README's verification snippet, run as the receiver's own module would be."""
    module = folder / "verify_gitops_bot.py"
    module.write_text(readme_block("# verify a gitops-bot webhook"))
    return runpy.run_path(str(module))["verify"]


async def test_a_merge_notifies_a_webhook_with_a_valid_signature(
    make_bot: BotFactory, receiver: Receiver, tmp_path: Path
) -> None:
    bot = await make_bot(notifications=_targets(receiver))
    merge = await _merge(bot, 31)

    assert await bot.drain() == 3  # the apply, then one notification per environment

    verify = _readme_verify(tmp_path)
    for headers, body in receiver.requests:
        assert verify(HMAC_KEY.encode(), headers, body)
        assert not verify(HMAC_KEY.encode(), headers, body + b" ")
        assert not verify(b"another key", headers, body)
    by_environment = {n["environment"]: n for n in receiver.accepted}
    staging = by_environment["staging"]
    assert staging["event"] == "apply-succeeded"
    assert staging["repository"] == "github:Codertocat/Hello-World"
    assert staging["commit"] == merge
    assert staging["pull_request"] == 31
    assert staging["pull_request_url"] == bot.fake.pulls[31]["html_url"]
    assert staging["link"] == staging["pull_request_url"]
    assert "Deployment.apps shop/cart: create (planned)" in staging["changes"]
    headers = dict(receiver.requests[0][0])
    assert headers["X-Gitops-Bot-Event"] == "apply-succeeded"
    assert headers["X-Gitops-Bot-Delivery"] == receiver.accepted[0]["delivery"]


async def test_a_merge_notifies_slack_with_text_and_blocks(
    make_bot: BotFactory, receiver: Receiver
) -> None:
    bot = await make_bot(notifications=_targets(receiver, "slack", events=["apply-succeeded"]))
    merge = await _merge(bot, 32)
    await bot.drain()

    message = receiver.accepted[0]
    assert message["text"].startswith("✅ Applied: github:Codertocat/Hello-World")
    assert [block["type"] for block in message["blocks"]] == ["section", "section", "context"]
    assert "Deployment.apps shop/cart: create (planned)" in message["blocks"][1]["text"]["text"]
    context = message["blocks"][2]["elements"][0]["text"]
    assert f"commit `{merge[:12]}`" in context
    assert f"<{bot.fake.pulls[32]['html_url']}|PR #32>" in context
    assert "X-Gitops-Bot-Signature" not in receiver.requests[0][0]


async def test_a_receiver_that_fails_twice_gets_the_notification_once(
    make_bot: BotFactory, receiver: Receiver
) -> None:
    receiver.failures = 2
    bot = await make_bot(notifications=_targets(receiver, events=["apply-succeeded"]))
    await _merge(bot, 33)
    await bot.drain()  # the apply; both notifications' first attempts

    for _ in range(2):  # the queue's backoff: nothing is retried before it is due
        assert await bot.drain() == 0
        bot.clock.advance(3600)
        await bot.drain()

    assert len(receiver.requests) == 4  # 2 failed + 2 taken
    assert sorted(n["environment"] for n in receiver.accepted) == ["production", "staging"]
    deliveries = [headers["X-Gitops-Bot-Delivery"] for headers, _ in receiver.requests]
    assert len(set(deliveries)) == 2  # a retry carries its first attempt's id
    counts = await bot.services.store.job_counts()
    assert counts[JobState.DEAD] == 0 and counts[JobState.READY] == 0


async def test_a_receiver_that_always_fails_is_given_up_without_a_loop(
    make_bot: BotFactory, receiver: Receiver
) -> None:
    receiver.failures = 10**6
    bot = await make_bot(notifications=_targets(receiver, events=["apply-succeeded"]))
    await _merge(bot, 34)
    for _ in range(5):
        await bot.drain()
        bot.clock.advance(3600)

    assert len(receiver.requests) == 2 * 3  # job_max_attempts for each environment
    dead = await bot.services.store.dead_jobs()
    assert [job.kind for job in dead] == ["notify", "notify"]
    assert "the receiver answered HTTP 500" in (dead[0].last_error or "")


async def test_a_receiver_that_never_answers_does_not_delay_the_apply_report(
    make_bot: BotFactory, receiver: Receiver
) -> None:
    receiver.hang = True
    bot = await make_bot(notifications=_targets(receiver), notification_timeout_seconds=1)
    await _merge(bot, 35)
    worker = Worker(bot.services, "worker", asyncio.Event())

    assert await worker.run_once()  # the apply job alone

    [comment] = bot.fake.comments_on(35)
    assert "gitops-bot apply" in comment["body"]
    assert len(bot.fake.deployment_statuses) == 2
    assert not receiver.requests  # reported before any notification was sent
    assert (await bot.services.store.job_counts())[JobState.READY] == 2
    assert await worker.run_once()  # one notification: its attempt times out, then retries
    [job] = [j for j in [await bot.services.store.job(n) for n in (2, 3)] if j and j.last_error]
    assert job.state is JobState.READY
    assert job.last_error == "no answer within 1 seconds"


async def test_a_merge_that_a_newer_commit_supersedes_notifies_so(
    make_bot: BotFactory, receiver: Receiver
) -> None:
    bot = await make_bot(notifications=_targets(receiver, events=["apply-superseded"]))
    older = _merged(bot, 38)
    newer = bot.origin.commit(base_tree(), "a newer merge")
    store = bot.services.store
    for env in ("staging", "production"):
        assert await store.record_applied(f"github:Codertocat/Hello-World:{env}", newer, 10**6)
    await _merge(bot, 38, older)
    await bot.drain()

    assert sorted(n["environment"] for n in receiver.accepted) == ["production", "staging"]
    notification = receiver.accepted[0]
    assert notification["event"] == "apply-superseded" and notification["commit"] == older
    assert "a newer commit already runs there" in notification["summary"]
    assert notification["pull_request"] == 38


async def test_a_dead_lettered_job_notifies(make_bot: BotFactory, receiver: Receiver) -> None:
    bot = await make_bot(notifications=_targets(receiver, events=["job-dead-lettered"]))
    bot.fake.fail("POST", r"/deployments$", 500, message="Internal Server Error", times=10**6)
    merge = await _merge(bot, 36)
    for _ in range(3):
        await bot.drain()
        bot.clock.advance(3600)
    await bot.drain()

    [notification] = receiver.accepted
    assert notification["event"] == "job-dead-lettered"
    assert notification["commit"] == merge
    assert notification["repository"] == "github:Codertocat/Hello-World"
    assert "gitops-bot retry 1" in notification["summary"]
    assert notification["changes"][0].startswith("last error: ")


async def test_a_job_that_runs_again_does_not_notify_twice(
    make_bot: BotFactory, receiver: Receiver
) -> None:
    bot = await make_bot(notifications=_targets(receiver, events=["apply-succeeded"]))
    bot.fake.fail("POST", r"/deployments$", 500, times=1)  # the apply's first attempt fails late
    await _merge(bot, 37)
    await bot.drain()
    bot.clock.advance(3600)
    await bot.drain()

    assert sorted(n["environment"] for n in receiver.accepted) == ["production", "staging"]


def test_the_readme_settings_snippet_loads(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(readme_block("# gitops-bot settings file (GITOPS_BOT_CONFIG)"))

    settings = load_settings({"GITOPS_BOT_CONFIG": str(config)})

    chat, log = settings.notifications
    assert (chat.name, chat.kind, log.kind) == ("platform-chat", "slack", "webhook")
    assert "apply-succeeded" not in chat.events and "apply-succeeded" in log.events
    assert settings.notification_timeout_seconds == 10
    assert "a-long-random-string" in secret_values(settings)
    assert "XXXXXXXX" not in repr(settings)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('[{"name": "x", "kind": "webhook", "url": "https://h/"}]', "needs a secret"),
        ('[{"name": "x", "kind": "teams", "url": "https://h/"}]', "slack or webhook"),
        ('[{"name": "x", "kind": "slack", "url": "ftp://h/"}]', "https://"),
        ('[{"name": "x", "kind": "slack", "url": "https://h/", "events": ["x"]}]', "apply-failed"),
        ('[{"kind": "slack", "url": "https://h/"}]', "give the target a name"),
        ("{", "not valid JSON"),
    ],
)
def test_unusable_targets_are_refused_with_what_to_do(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match="GITOPS_BOT_NOTIFICATIONS") as refused:
        load_settings({"GITOPS_BOT_NOTIFICATIONS": value})
    assert message in str(refused.value)


def test_slack_text_from_a_repository_cannot_mention_or_link() -> None:
    result = ApplyResult(
        "prod<!channel>", "c", "0" * 40, False, failure="<https://x.test|click> & \x1b[31m"
    )
    message = slack_message(applied(result, "github:a/b", PullRequestRef(1, "javascript:alert(1)")))

    text = json.dumps(message)
    assert "<!channel>" not in text and "<https://x.test" not in text
    assert "&lt;!channel&gt;" in message["text"] and "␛" in message["text"]
    assert "PR #1" in text and "javascript:" not in text  # only http(s) links are made


async def test_drift_notifies_when_found_when_it_changes_and_when_resolved(
    make_bot: BotFactory, receiver: Receiver, live_env: LiveEnv, tmp_path: Path
) -> None:
    events = ["drift-found", "drift-resolved"]
    bot = await drift_bot(
        make_bot, tmp_path, live_env.cluster, notifications=_targets(receiver, events=events)
    )
    await drift_merge(bot, 41, drift_tree(live_env, "1"))
    await drift_check(bot)
    drift_edit(live_env, "9")
    await drift_check(bot)
    await drift_check(bot)  # the same drift again: no news
    drift_edit(live_env, "7")
    await drift_check(bot)
    fixed = await drift_merge(bot, 42, drift_tree(live_env, "7"))
    await drift_check(bot)

    found, changed, resolved = receiver.accepted
    assert [found["event"], changed["event"], resolved["event"]] == events[:1] * 2 + events[1:]
    (issue,) = bot.fake.issues.values()
    assert found["link"] == changed["link"] == issue["html_url"]
    assert found["changes"] == [f"ConfigMap {live_env.namespace}/web: data.level"]
    assert found["environment"] == "prod" and resolved["commit"] == fixed
    assert resolved["summary"] == f"prod matches {fixed[:12]} again"
