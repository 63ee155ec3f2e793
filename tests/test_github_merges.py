"""Merges through the real app: apply, PR comment, deployment statuses, audit records."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers.githubbot import BotFactory, BotHarness, base_tree, deployment
from helpers.storetools import TEST_KEYS, audit_verify, execute_sql

from bot import __version__
from bot.core.ledgerchain import verify_chain
from bot.core.markdown import parse_marker
from bot.store.ports import JobState

CART = deployment("cart", "registry.example.com/cart:1.0.0")


async def _merged(bot: BotHarness, number: int) -> tuple[str, str]:
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": CART})
    bot.pull_request("opened", number, base, head)
    merge = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": CART}, "Merge #%d")
    bot.fake.reviews[number] = [
        {"user": {"login": "alice"}, "state": "APPROVED"},
        {"user": {"login": "bob"}, "state": "APPROVED"},
        {"user": {"login": "bob"}, "state": "CHANGES_REQUESTED"},
        {"user": {"login": "carol"}, "state": "COMMENTED"},
    ]
    return head, merge


async def test_merge_applies_comments_deploys_and_audits(make_bot: BotFactory) -> None:
    bot = await make_bot()
    _, merge = await _merged(bot, 21)

    response = await bot.deliver("push", bot.merge(21, merge))
    assert response.status == 202
    assert await bot.drain() == 1

    [comment] = bot.fake.comments_on(21)
    assert parse_marker(comment["body"], "apply") == 1
    assert "gitops-bot apply" in comment["body"] and merge[:12] in comment["body"]
    assert {d["environment"] for d in bot.fake.deployments.values()} == {"staging", "production"}
    assert {d["ref"] for d in bot.fake.deployments.values()} == {merge}
    assert sorted((s["environment"], s["state"]) for s in bot.fake.deployment_statuses) == [
        ("production", "success"),
        ("staging", "success"),
    ]
    records = await bot.services.store.audit_records()
    assert verify_chain(await bot.services.store.audit_rows(), TEST_KEYS) is None
    entries = [r.entry for r in records]
    assert {e.environment for e in entries} == {"staging", "production"}
    staging = next(e for e in entries if e.environment == "staging")
    assert (staging.commit, staging.pr_number, staging.author) == (merge, 21, "Codertocat")
    assert staging.pr_url == bot.fake.pulls[21]["html_url"]
    assert staging.approvers == ("alice",)  # bob's last word was "changes requested"
    assert (staging.result, staging.trigger) == ("dry-run", "merge")
    assert staging.bot_version == __version__
    assert staging.started_at <= staging.finished_at
    assert {o["object"] for o in staging.objects} == {
        "Deployment.apps shop/cart",
        "Deployment.apps shop/web",
    }
    assert all(o["digest"].startswith("sha256:") for o in staging.objects)


async def test_a_fork_pull_request_is_previewed_but_never_applied(make_bot: BotFactory) -> None:
    bot = await make_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": CART})

    payload = bot.pull_request("opened", 22, base, head, fork=True)
    assert (await bot.deliver("pull_request", payload)).status == 202
    await bot.drain()

    [comment] = bot.fake.comments_on(22)
    assert "comes from a fork: it is previewed against Git only" in comment["body"]
    assert not bot.fake.deployments
    assert not await bot.services.store.audit_records()


async def test_a_push_to_another_branch_is_ignored(make_bot: BotFactory) -> None:
    bot = await make_bot()
    _, merge = await _merged(bot, 23)
    payload = bot.merge(23, merge)
    payload["ref"] = "refs/heads/feature"

    response = await bot.deliver("push", payload)

    assert response.status == 200
    assert await bot.drain() == 0
    assert not bot.fake.deployments


async def test_an_older_merge_never_overwrites_a_newer_one(make_bot: BotFactory) -> None:
    bot = await make_bot()
    _, older = await _merged(bot, 24)
    newer = bot.origin.commit(base_tree(), "revert the cart")
    store = bot.services.store
    for env in ("staging", "production"):
        assert await store.record_applied(f"github:Codertocat/Hello-World:{env}", newer, 10**6)

    await bot.deliver("push", bot.merge(24, older))
    await bot.drain()

    assert not bot.fake.deployments  # both environments already run a descendant
    records = await store.audit_records()
    assert sorted((r.entry.environment, r.entry.commit, r.entry.result) for r in records) == [
        ("production", older, "superseded"),
        ("staging", older, "superseded"),
    ]


async def test_an_apply_that_cannot_complete_says_how_to_retry(make_bot: BotFactory) -> None:
    bot = await make_bot()
    _, merge = await _merged(bot, 25)
    bot.fake.fail("POST", r"/deployments$", 500, message="Internal Server Error", times=10**6)

    await bot.deliver("push", bot.merge(25, merge))
    for _ in range(3):  # every attempt the job has, the queue's backoff in between
        await bot.drain()
        bot.clock.advance(3600)

    counts = await bot.services.store.job_counts()
    assert counts[JobState.DEAD] == 1
    [comment] = bot.fake.comments_on(25)
    assert "could not complete" in comment["body"]
    assert "gitops-bot retry 1" in comment["body"]
    assert not bot.fake.deployment_statuses  # no status claims a success


async def test_the_retry_command_requeues_a_dead_job(make_bot: BotFactory) -> None:
    bot = await make_bot()
    _, merge = await _merged(bot, 26)
    bot.fake.fail("POST", r"/deployments$", 500, message="Internal Server Error", times=10**6)
    await bot.deliver("push", bot.merge(26, merge))
    for _ in range(3):
        await bot.drain()
        bot.clock.advance(3600)
    await bot.client.close()  # the command works on the store while the server is down

    env = {**os.environ, "GITOPS_BOT_DATABASE_URL": f"sqlite:///{bot.database}"}
    command = [sys.executable, "-m", "bot", "retry"]
    done = subprocess.run([*command, "1"], env=env, capture_output=True, text=True)
    again = subprocess.run([*command, "1"], env=env, capture_output=True, text=True)

    assert (done.returncode, done.stdout.strip()) == (0, "job 1 is queued again")
    assert again.returncode == 2 and "no dead-lettered job 1" in again.stderr


async def _verify_against(bot: BotHarness, *args: str) -> tuple[int, str]:
    settings = bot.services.settings
    assert bot.fake.personal_token is not None
    return await audit_verify(
        {
            "database_url": settings.database_url,
            "github_api_url": settings.github_api_url,
            "github_token": bot.fake.personal_token,
        },
        *args,
    )


async def test_an_apply_publishes_the_ledger_head_and_verify_finds_a_cut(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot("token")
    _, merge = await _merged(bot, 26)
    await bot.deliver("push", bot.merge(26, merge))
    assert await bot.drain() == 1
    rows = await bot.services.store.audit_rows()
    anchors = [f"{r.sequence}:{r.hash}" for r in rows]
    repository = "--repository", "github:Codertocat/Hello-World"

    intact = await _verify_against(bot, *repository)
    execute_sql(bot.services.settings.database_url, "DELETE FROM audit_ledger WHERE sequence = 2")
    cut = await _verify_against(bot, *repository)

    assert len(anchors) == 2  # staging, then production
    published = {s["description"].rsplit(" · ", 1)[1] for s in bot.fake.deployment_statuses}
    assert published == {f"ledger {a}" for a in anchors}
    [comment] = bot.fake.comments_on(26)
    assert comment["body"].rstrip().endswith(f"<!-- ledger {anchors[1]} -->")
    assert intact[0] == 0, intact[1]
    assert "matches every anchor given (2; newest: 2)" in intact[1]
    assert cut[0] == 1, cut[1]
    assert (
        f"NOT TRUSTWORTHY from record 2: it is missing: the forge holds anchor {anchors[1]}"
        in (cut[1])
    )
