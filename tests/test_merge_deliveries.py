"""Merges whatever the deliveries: a merge delivered twice is applied once per environment,
an older merge delivered late never follows a newer one (with no cluster configured too),
and approvals that cannot be read never block a deployment. Signed deliveries to the real
app, the fake forges validating every request; SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from helpers.githubbot import SLUG, BotFactory, BotHarness, base_tree, deployment
from helpers.gitlabbot import PROJECT, GitLabBot, GitLabBotFactory
from helpers.storetools import TEST_KEYS, database_for

from bot.core.audit import AuditRecord
from bot.core.ledgerchain import verify_chain
from bot.store.ports import JobState

ENVIRONMENTS = ("production", "staging")


def _tree(image: str) -> dict[str, str | bytes]:
    cart = deployment("cart", f"registry.example.com/cart:{image}")
    return {**base_tree(), "deploy/staging/cart.yaml": cart}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_for(request, tmp_path, "bot.sqlite3")


def _github_merged(bot: BotHarness, number: int, image: str) -> str:
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit(_tree(image))
    bot.pull_request("opened", number, base, head)
    bot.fake.reviews[number] = [{"user": {"login": "alice"}, "state": "APPROVED"}]
    return bot.origin.commit(_tree(image), f"Merge #{number}")


def _gitlab_merged(bot: GitLabBot, iid: int, image: str) -> str:
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit(_tree(image))
    bot.merge_request("open", iid, base, head)
    bot.fake.approvals[iid] = ["rene"]
    return bot.origin.commit(_tree(image), f"Merge !{iid}")


def _per_environment(records: list[AuditRecord]) -> Counter[tuple[str, str, str]]:
    return Counter((r.entry.environment, r.entry.commit, r.entry.result) for r in records)


async def test_a_github_merge_delivered_twice_is_applied_once(
    make_bot: BotFactory, database_url: str
) -> None:
    bot = await make_bot(database_url=database_url)
    merge = _github_merged(bot, 31, "1.0.0")
    push = bot.merge(31, merge)

    # A manual redelivery comes with the original id; a second hook with its own id.
    assert (await bot.deliver("push", push, delivery_id="first")).status == 202
    assert (await bot.deliver("push", push, delivery_id="first")).status == 200
    assert (await bot.deliver("push", push, delivery_id="second")).status == 202
    assert await bot.drain() == 2

    records = await bot.services.store.audit_records()
    assert verify_chain(await bot.services.store.audit_rows(), TEST_KEYS) is None
    assert _per_environment(records) == {(env, merge, "dry-run"): 1 for env in ENVIRONMENTS}
    assert sorted(s["environment"] for s in bot.fake.deployment_statuses) == list(ENVIRONMENTS)
    assert len(bot.fake.comments_on(31)) == 1
    assert (await bot.services.store.job_counts())[JobState.DONE] == 2


async def test_a_gitlab_merge_from_project_and_group_hooks_is_applied_once(
    make_gitlab_bot: GitLabBotFactory, database_url: str
) -> None:
    bot = await make_gitlab_bot(database_url=database_url)
    merge = _gitlab_merged(bot, 31, "1.0.0")
    push = bot.merge(31, merge)
    group_hook = {"X-Gitlab-Webhook-UUID": "0b5c6a1e-2f7d-4c4e-8f1a-9d2e3c4b5a61"}

    assert (await bot.deliver("Push Hook", push)).status == 202  # the project's hook
    assert (await bot.deliver("Push Hook", push, headers=group_hook)).status == 202
    assert await bot.drain() == 2

    records = await bot.services.store.audit_records()
    assert _per_environment(records) == {(env, merge, "dry-run"): 1 for env in ENVIRONMENTS}
    deployments = bot.fake.deployments.values()
    assert sorted(d["environment"]["name"] for d in deployments) == list(ENVIRONMENTS)
    assert [d["history"] for d in deployments] == [["success"], ["success"]]
    assert len(bot.fake.notes_on(31)) == 1


async def test_an_older_github_merge_delivered_late_never_follows_a_newer_one(
    make_bot: BotFactory, database_url: str
) -> None:
    """No cluster is configured: the applies are dry, and still recorded for ordering."""
    bot = await make_bot(database_url=database_url)
    older = _github_merged(bot, 32, "1.0.0")
    older_push = bot.merge(32, older)
    newer = _github_merged(bot, 33, "2.0.0")

    await bot.deliver("push", bot.merge(33, newer))
    await bot.drain()
    await bot.deliver("push", older_push)  # the older merge's push, late
    await bot.drain()

    assert {d["ref"] for d in bot.fake.deployments.values()} == {newer}
    for env in ENVIRONMENTS:
        applied = await bot.services.store.last_applied(f"github:{SLUG}:{env}")
        assert applied is not None and applied.commit == newer
    records = await bot.services.store.audit_records()
    applied_last = [r.entry.commit for r in records if r.entry.result != "superseded"]
    assert set(applied_last[-2:]) == {newer}
    assert _per_environment(records)[("staging", older, "superseded")] == 1
    assert bot.fake.comments_on(32) == []  # nothing claims the older merge was applied


async def test_an_older_gitlab_merge_delivered_late_never_follows_a_newer_one(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    older = _gitlab_merged(bot, 32, "1.0.0")
    older_push = bot.merge(32, older)
    newer = _gitlab_merged(bot, 33, "2.0.0")

    await bot.deliver("Push Hook", bot.merge(33, newer))
    await bot.drain()
    await bot.deliver("Push Hook", older_push)
    await bot.drain()

    assert {d["sha"] for d in bot.fake.deployments.values()} == {newer}
    for env in ENVIRONMENTS:
        applied = await bot.services.store.last_applied(f"gitlab:{PROJECT}:{env}")
        assert applied is not None and applied.commit == newer
    records = await bot.services.store.audit_records()
    assert _per_environment(records)[("production", older, "superseded")] == 1


async def test_unreadable_github_approvals_never_block_a_deployment(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    merge = _github_merged(bot, 34, "1.0.0")
    bot.fake.fail("GET", r"/pulls/34/reviews$", 502, message="Bad Gateway", times=10**6)

    await bot.deliver("push", bot.merge(34, merge))
    await bot.drain()

    assert (await bot.services.store.job_counts())[JobState.DONE] == 1  # no retry needed
    assert sorted(s["state"] for s in bot.fake.deployment_statuses) == ["success", "success"]
    [record, _] = await bot.services.store.audit_records()
    assert record.entry.approvers == ()
    assert record.entry.approvals_unknown is not None
    assert record.entry.approvals_unknown.startswith("the forge did not answer")


async def test_unreadable_gitlab_approvals_never_block_a_deployment(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    merge = _gitlab_merged(bot, 34, "1.0.0")
    bot.fake.fail("GET", r"/merge_requests/34/approvals$", 503, message="Unavailable", times=99)

    await bot.deliver("Push Hook", bot.merge(34, merge))
    await bot.drain()

    assert (await bot.services.store.job_counts())[JobState.DONE] == 1
    assert [d["history"] for d in bot.fake.deployments.values()] == [["success"], ["success"]]
    entries = [r.entry for r in await bot.services.store.audit_records()]
    assert {(e.approvers, e.result) for e in entries} == {((), "dry-run")}
    assert all("did not answer" in (e.approvals_unknown or "") for e in entries)
