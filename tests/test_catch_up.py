"""Catch-up: a merge whose webhook never arrived is applied, audited and reported on its
pull request after the bot starts, with no webhook at all; an idle interval then costs
only conditional requests answered 304. Real git origins served by the fake forges, the
real API server, both forges."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.fakeforge import FakeForge, ForgeBot, start_bot
from helpers.githubbot import SLUG, BotFactory
from helpers.gitlabbot import PROJECT, GitLabBotFactory
from helpers.gitrepos import Repo
from helpers.livecluster import LiveEnv, configmap

from bot.config.settings import load_settings
from bot.core.catchup import EnvironmentState, missed_environments
from bot.core.markdown import parse_marker
from bot.events import Repository
from bot.server.app import SERVICES
from bot.server.timers import CATCH_UP_LEASE, queue_catch_up, start_catch_up_timer
from bot.store.ports import JobState
from bot.workflows.context import Services

INTERVAL = 1800  # shorter than an installation token lives, so an idle interval buys none


def _tree(live_env: LiveEnv, level: str) -> dict[str, str | bytes]:
    environment = {
        "path": "deploy",
        "cluster": "test",
        "namespace": live_env.namespace,
        "apply_on_merge": True,
    }
    config = {"version": 1, "environments": {"prod": environment}}
    return {
        ".gitops-bot.yaml": json.dumps(config),
        "deploy/web.yaml": configmap("web", level=level),
    }


def _level(live_env: LiveEnv) -> str:
    live = live_env.configmap("web")
    assert live is not None
    return str(live["data"]["level"])


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for the bot's own workers (a guard against hanging, not a timed assertion)."""
    for _ in range(1200):
        if await check():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"the bot never got there: {what}")


async def _idle(services: Services) -> bool:
    counts = await services.store.job_counts()
    return counts[JobState.READY] == 0 and counts[JobState.RUNNING] == 0


def _without_config(tmp_path: Path) -> Path:
    """A repository the bot can see that has no .gitops-bot.yaml: not served."""
    bare = Repo(tmp_path / "no-config")
    bare.commit({"README.md": "no gitops here\n"})
    return bare.path


async def _restart(bot: ForgeBot, aiohttp_client: Any, tmp_path: Path) -> Services:
    """Stop the bot, then start it again on the same store, forge and clock, with workers
    and timers running: whatever it does next, it does without any webhook."""
    settings = bot.services.settings
    await bot.client.close()
    client, _, _ = await start_bot(aiohttp_client, tmp_path, settings, bot.clock, workers=True)
    bot.client = client  # later deliveries reach the restarted bot
    services: Services = client.app[SERVICES]
    return services


async def _catch_up_records(services: Services) -> list[Any]:
    return [r.entry for r in await services.store.audit_records() if r.entry.trigger == "catch-up"]


async def _idle_interval(services: Services, fake: FakeForge, clock: Any) -> list[Any]:
    """One more interval with nothing new: the requests it made."""
    await _until(lambda: _idle(services), "the start-up catch-up finished")
    made, answered = len(fake.calls), len(fake.not_modified)
    clock.advance(INTERVAL + 1)  # the start-up lease is over
    assert await queue_catch_up(services, "another-replica") == 1
    await _until(lambda: _idle(services), "the second interval finished")
    idle = fake.calls[made:]
    assert idle and len(fake.not_modified) - answered == len(idle)
    assert all(call.method == "GET" and call.if_none_match for call in idle)
    return idle


async def test_github_a_missed_merge_is_applied_audited_and_reported_after_a_start(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path, aiohttp_client: Any
) -> None:
    bot = await make_bot(clusters=(live_env.cluster,), catch_up_interval_seconds=INTERVAL)
    bot.fake.add_repository(SLUG, bot.origin.path)
    bot.fake.add_repository("Codertocat/no-config", _without_config(tmp_path))

    first = bot.origin.commit(_tree(live_env, "1"), "Merge #1")
    bot.pull_request("opened", 1, first, first)
    assert (await bot.deliver("push", bot.merge(1, first))).status == 202
    await bot.drain()
    assert _level(live_env) == "1"

    second = bot.origin.commit(_tree(live_env, "2"), "Merge #2")
    bot.pull_request("opened", 2, first, second)
    lost = bot.merge(2, second)  # the bot is down: the push webhook is lost
    bot.fake.pulls[2]["html_url"] = f"https://github.com/{SLUG}/pull/2"
    services = await _restart(bot, aiohttp_client, tmp_path)

    await _until(lambda: _has_catch_up(services), "the missed merge was applied")
    assert _level(live_env) == "2"  # applied to the real API server
    [record] = await _catch_up_records(services)
    assert (record.commit, record.environment, record.result) == (second, "prod", "succeeded")
    assert (record.pr_number, record.author) == (2, "Codertocat")
    [comment] = bot.fake.comments_on(2)
    assert parse_marker(comment["body"], "apply") == 1 and second[:12] in comment["body"]
    deployments = [d for d in bot.fake.deployments.values() if d["sha"] == second]
    assert [d["environment"] for d in deployments] == ["prod"]
    merges = [r.entry for r in await services.store.audit_records() if r.entry.commit == first]
    assert [m.trigger for m in merges] == ["merge"]  # what the webhook applied is left alone

    idle = await _idle_interval(services, bot.fake, bot.clock)
    assert {c.path for c in idle} >= {
        "/app/installations",
        "/installation/repositories",
        f"/repos/{SLUG}/branches/main",
        "/repos/Codertocat/no-config/branches/main",
    }
    # The repository without a .gitops-bot.yaml was asked about once, never fetched.
    assert len(bot.fake.calls_to("GET", r"/repos/Codertocat/no-config/contents/")) == 1
    assert not services.mirrors.path_for(_repo(bot.fake, "Codertocat/no-config")).exists()
    assert len(await _catch_up_records(services)) == 1

    # The lost webhook turns up after all (a manual redelivery): the merge is not applied
    # again, nor recorded or reported twice.
    assert (await bot.deliver("push", lost)).status == 202
    await _until(lambda: _idle(services), "the late delivery was handled")
    again = [r.entry for r in await services.store.audit_records() if r.entry.commit == second]
    assert [r.trigger for r in again] == ["catch-up"]
    assert len(bot.fake.comments_on(2)) == 1


async def test_gitlab_a_missed_merge_is_applied_audited_and_reported_after_a_start(
    make_gitlab_bot: GitLabBotFactory,
    live_env: LiveEnv,
    tmp_path: Path,
    aiohttp_client: Any,
) -> None:
    bot = await make_gitlab_bot(clusters=(live_env.cluster,), catch_up_interval_seconds=INTERVAL)
    bot.fake.add_project(PROJECT, bot.origin.path)
    bot.fake.add_project("platform/no-config", _without_config(tmp_path))

    first = bot.origin.commit(_tree(live_env, "1"), "Merge !1")
    bot.merge_request("opened", 1, first, first)
    assert (await bot.deliver("Push Hook", bot.merge(1, first))).status == 202
    await bot.drain()
    assert _level(live_env) == "1"

    second = bot.origin.commit(_tree(live_env, "2"), "Merge !2")
    bot.merge_request("opened", 2, first, second)
    bot.merge(2, second)  # the bot is down: the push hook is lost
    services = await _restart(bot, aiohttp_client, tmp_path)

    await _until(lambda: _has_catch_up(services), "the missed merge was applied")
    assert _level(live_env) == "2"
    [record] = await _catch_up_records(services)
    assert (record.commit, record.environment, record.result) == (second, "prod", "succeeded")
    assert (record.pr_number, record.author) == (2, "dana")
    [note] = bot.fake.notes_on(2)
    assert parse_marker(note["body"], "apply") == 1 and second[:12] in note["body"]
    deployments = [d for d in bot.fake.deployments.values() if d["sha"] == second]
    assert [d["environment"]["name"] for d in deployments] == ["prod"]

    idle = await _idle_interval(services, bot.fake, bot.clock)
    assert {c.path for c in idle} == {
        "/projects",
        f"/projects/{PROJECT}/repository/branches/main",
        "/projects/platform/no-config/repository/branches/main",
    }
    assert len(bot.fake.calls_to("HEAD", r"no-config/repository/files/")) == 1
    assert len(await _catch_up_records(services)) == 1


async def test_an_older_head_is_recorded_superseded_never_applied(make_bot: BotFactory) -> None:
    """The branch was reset behind what the environment runs: catch-up never goes back."""
    bot = await make_bot(catch_up_interval_seconds=INTERVAL)
    bot.fake.add_repository(SLUG, bot.origin.path)
    tree = {".gitops-bot.yaml": "version: 1\nenvironments:\n  prod: {path: deploy, cluster: x}\n"}
    older = bot.origin.commit({**tree, "deploy/a.yaml": configmap("a", v="1")})
    newer = bot.origin.commit({**tree, "deploy/a.yaml": configmap("a", v="2")})
    bot.origin.git("reset", "--hard", older)
    key = f"github:{SLUG}:prod"
    assert await bot.services.store.record_applied(key, newer, 10**6)

    assert await queue_catch_up(bot.services, "the-timer") == 1
    await bot.drain()

    [record] = await _catch_up_records(bot.services)
    assert (record.commit, record.result) == (older, "superseded")
    assert not bot.fake.deployments
    last = await bot.services.store.last_applied(key)
    assert last is not None and last.commit == newer


async def test_catch_up_off_starts_no_timer(make_bot: BotFactory) -> None:
    bot = await make_bot(catch_up_interval_seconds=0)
    assert start_catch_up_timer(bot.services, asyncio.Event()) == []


def test_only_environments_that_never_saw_the_head_are_missed() -> None:
    states = [
        EnvironmentState("applied", "h", head_recorded=True),
        EnvironmentState("dry", None, head_recorded=True),  # a dry apply records no commit
        EnvironmentState("failed", "g", head_recorded=True),  # its own job retries it
        EnvironmentState("missed", "g", head_recorded=False),
        EnvironmentState("new", None, head_recorded=False),
    ]
    assert missed_environments("h", states) == ("missed", "new")


async def _has_catch_up(services: Services) -> bool:
    return bool(await _catch_up_records(services)) and await _idle(services)


def _repo(fake: Any, slug: str) -> Repository:
    data = fake.repositories[slug]
    return Repository("github", slug, data["clone_url"], "main", fake.installation)


async def test_with_a_token_every_visible_repository_is_caught_up_once(
    make_bot: BotFactory, tmp_path: Path
) -> None:
    """A token lists what it can see (GET /user/repos); a dry apply (no cluster
    configured) records no applied commit, and its ledger record keeps it from being
    applied again at the next interval. An empty repository (no branch) is skipped."""
    bot = await make_bot(mode="token", catch_up_interval_seconds=INTERVAL)
    bot.fake.add_repository(SLUG, bot.origin.path)
    bot.fake.add_repository("Codertocat/empty", Repo(tmp_path / "empty").path)  # no branch
    config = "version: 1\nenvironments:\n  prod: {path: deploy, cluster: elsewhere}\n"
    merge = bot.origin.commit({".gitops-bot.yaml": config, "deploy/a.yaml": configmap("a")})
    bot.pull_request("opened", 5, merge, merge)
    bot.merge(5, merge)

    for _ in range(2):
        assert await queue_catch_up(bot.services, "the-timer") == 1
        await bot.drain()
        bot.clock.advance(INTERVAL + 1)
        bot.services.caught_up.clear()  # as after a restart: the store alone decides

    [record] = await _catch_up_records(bot.services)
    assert (record.commit, record.result, record.pr_number) == (merge, "dry-run", 5)
    assert bot.fake.calls_to("GET", r"^/user/repos$")
    assert bot.fake.calls_to("GET", r"^/repos/Codertocat/empty/branches/main$")
    counts = await bot.services.store.job_counts()
    assert counts[JobState.READY] == counts[JobState.DEAD] == 0  # the empty one: no retries
    [comment] = bot.fake.comments_on(5)
    assert parse_marker(comment["body"], "apply") == 1


def test_the_interval_and_discovery_are_settings() -> None:
    settings = load_settings(
        {"GITOPS_BOT_CATCH_UP_INTERVAL_SECONDS": "0", "GITOPS_BOT_CATCH_UP_DISCOVER": "no"}
    )
    assert (settings.catch_up_interval_seconds, settings.catch_up_discover) == (0, False)
    assert load_settings({}).catch_up_interval_seconds == 600


async def test_the_timer_scans_at_once_and_a_stopped_replica_leaves_the_lease(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot(catch_up_interval_seconds=INTERVAL)
    store = bot.services.store
    [timer] = start_catch_up_timer(bot.services, asyncio.Event())

    async def queued() -> bool:
        return (await store.job_counts())[JobState.READY] == 1

    await _until(queued, "the first scan was queued")
    assert not await store.lock_environment(CATCH_UP_LEASE, "another-replica", INTERVAL)
    timer.cancel()
    await asyncio.gather(timer, return_exceptions=True)
    assert await store.lock_environment(CATCH_UP_LEASE, "another-replica", INTERVAL)


async def test_a_missed_merge_with_an_unusable_config_is_refused_on_its_pull_request(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot(catch_up_interval_seconds=INTERVAL)
    bot.fake.add_repository(SLUG, bot.origin.path)
    merge = bot.origin.commit({".gitops-bot.yaml": "version: 1\nenvironments: [oops]\n"})
    bot.pull_request("opened", 7, merge, merge)
    bot.merge(7, merge)

    assert await queue_catch_up(bot.services, "the-timer") == 1
    await bot.drain()

    [comment] = bot.fake.comments_on(7)
    assert "not applied" in comment["body"] and merge[:12] in comment["body"]
    assert not await bot.services.store.audit_records()
    assert not bot.fake.deployments
