"""A plan describes the PR's current head, as the merge would make it (GitHub, real app).

Deliveries are signed and sent to the app; the fake GitHub checks every request against
GitHub's description and makes its test merge commits with git in the origin repository.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers.fakeforge import Call
from helpers.fakegithub import _HANDLERS, FakeGitHub
from helpers.githubbot import BotFactory, BotHarness, base_tree, deployment

from bot.stages.merge_preview import POLL_SECONDS

CART = deployment("cart", "registry.example.com/cart:1.0.0")
SHOP = deployment("shop", "registry.example.com/shop:1.0.0")


def _plan_comment(bot: BotHarness, number: int) -> str:
    [comment] = bot.fake.comments_on(number)
    return str(comment["body"])


async def _commits(bot: BotHarness) -> tuple[str, str, str]:
    """base, then head B (adds cart), then head C (adds shop too), one after the other."""
    base = bot.origin.commit(base_tree())
    b = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": CART})
    c = bot.origin.commit(
        {**base_tree(), "deploy/staging/cart.yaml": CART, "deploy/staging/shop.yaml": SHOP}
    )
    return base, b, c


async def _late_and_current(bot: BotHarness) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Head C, its synchronize delivery, and the one of the older head B; the PR is at C."""
    base, b, c = await _commits(bot)
    late = bot.pull_request("synchronize", 7, base, b)
    return c, bot.pull_request("synchronize", 7, base, c, before=b), late


async def test_a_late_delivery_of_an_older_head_keeps_the_newer_plan(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    c, current, late = await _late_and_current(bot)

    await bot.deliver("pull_request", current)
    await bot.drain()
    first, edits = _plan_comment(bot, 7), len(bot.fake.edits())
    await bot.deliver("pull_request", late)  # GitHub redelivers B's missed push, late
    assert await bot.drain() == 1

    assert _plan_comment(bot, 7) == first
    assert bot.fake.edits()[edits:] == []  # B's job planned C again: nothing changed
    assert "shop" in first and c[:12] in first
    assert not bot.fake.open_check_runs()
    assert {r["head_sha"] for r in bot.fake.check_runs.values()} == {c}
    assert [r["conclusion"] for r in bot.fake.check_runs.values()] == ["success"]


async def test_an_older_head_queued_after_the_newer_one_plans_the_newer(
    make_bot: BotFactory,
) -> None:
    """Arrival order would supersede C's queued plan by B's: the job asks GitHub instead."""
    bot = await make_bot()
    c, current, late = await _late_and_current(bot)

    await bot.deliver("pull_request", current)
    await bot.deliver("pull_request", late)
    assert await bot.drain() == 1  # C's job was superseded in the queue by B's

    body = _plan_comment(bot, 7)
    assert "shop" in body and c[:12] in body
    assert not bot.fake.open_check_runs()
    [run] = bot.fake.check_runs.values()
    assert (run["head_sha"], run["conclusion"]) == (c, "success")


async def test_the_open_check_of_a_superseded_head_is_concluded(make_bot: BotFactory) -> None:
    """B's plan fails once and waits for its retry when C is pushed: C's plan concludes
    B's check as superseded, so nothing the bot opened stays pending."""
    bot = await make_bot()
    base, b, c = await _commits(bot)
    bot.fake.fail("POST", r"/issues/7/comments$", 422)
    await bot.deliver("pull_request", bot.pull_request("synchronize", 7, base, b))
    await bot.drain()
    [waiting] = bot.fake.open_check_runs()
    assert waiting["head_sha"] == b

    await bot.deliver("pull_request", bot.pull_request("synchronize", 7, base, c, before=b))
    bot.clock.advance(3600)
    await bot.drain()

    assert not bot.fake.open_check_runs()
    concluded = bot.fake.check_runs[waiting["id"]]
    assert concluded["conclusion"] == "neutral"
    assert concluded["output"]["title"] == f"Superseded by {c[:12]}"
    assert "shop" in _plan_comment(bot, 7)


async def test_an_unchanged_redelivery_edits_nothing(make_bot: BotFactory) -> None:
    bot = await make_bot()
    base, _, c = await _commits(bot)
    payload = bot.pull_request("synchronize", 7, base, c)
    await bot.deliver("pull_request", payload)
    await bot.drain()
    before = len(bot.fake.edits())

    await bot.deliver("pull_request", payload)  # the same event, under a new delivery id
    await bot.drain()

    assert before > 0 and bot.fake.edits()[before:] == []


async def test_an_unchanged_redelivery_adds_no_commit_status(make_bot: BotFactory) -> None:
    bot = await make_bot(mode="token")
    base, _, c = await _commits(bot)
    payload = bot.pull_request("synchronize", 7, base, c)
    await bot.deliver("pull_request", payload)
    await bot.drain()
    before = len(bot.fake.edits())

    await bot.deliver("pull_request", payload)
    await bot.drain()

    assert bot.fake.edits()[before:] == []
    assert [s["state"] for s in bot.fake.statuses] == ["pending", "success"]


async def _behind_base(bot: BotHarness, branch_tree: dict[str, str | bytes]) -> tuple[str, str]:
    """A PR branch cut from main, and main gaining web 1.1.0 in staging afterwards."""
    base = bot.origin.commit(base_tree())
    bot.origin.git("checkout", "--quiet", "-b", "feature")
    head = bot.origin.commit(branch_tree)
    bot.origin.git("checkout", "--quiet", "main")
    newer = deployment("web", "registry.example.com/web:1.1.0")
    bot.fake.branches["master"] = bot.origin.commit(
        {**base_tree(), "deploy/staging/web.yaml": newer}
    )
    return base, head


async def test_a_pr_behind_its_base_previews_the_merge_result(make_bot: BotFactory) -> None:
    bot = await make_bot()
    base, head = await _behind_base(bot, {**base_tree(), "deploy/staging/cart.yaml": CART})

    await bot.deliver("pull_request", bot.pull_request("opened", 7, base, head))
    await bot.drain()

    body = _plan_comment(bot, 7)
    merge = bot.fake.pulls[7]["merge_commit_sha"]
    assert f"previewing the merge result {merge[:12]}" in body
    assert "cart" in body
    assert "web" not in body.split("#### Environment")[1]  # base's web 1.1.0 is not reverted
    assert "1.1.0" not in body and "1.0.0" not in body.replace("cart:1.0.0", "")
    # `mergeable: null` on the fresh PR meant "not known yet": asked again once, no conflict
    assert bot.sleeps == [POLL_SECONDS[0]]
    [run] = bot.fake.check_runs.values()
    assert (run["head_sha"], run["conclusion"]) == (head, "success")


async def test_a_conflicting_pr_previews_its_head_and_says_why(make_bot: BotFactory) -> None:
    bot = await make_bot()
    mine = deployment("web", "registry.example.com/web:2.0.0")
    base, head = await _behind_base(bot, {**base_tree(), "deploy/staging/web.yaml": mine})

    await bot.deliver("pull_request", bot.pull_request("opened", 7, base, head))
    await bot.drain()

    body = _plan_comment(bot, 7)
    assert bot.fake.pulls[7]["mergeable"] is False
    assert f"previewing the head {head[:12]} against {base[:12]}, not the merge" in body
    assert "conflicts with the base branch on GitHub" in body
    assert not bot.fake.open_check_runs()


async def test_a_merge_github_never_computes_in_time_falls_back_visibly(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    base, head = await _behind_base(bot, {**base_tree(), "deploy/staging/cart.yaml": CART})
    bot.fake.origin = None  # GitHub stays busy: `mergeable` stays null

    await bot.deliver("pull_request", bot.pull_request("opened", 7, base, head))
    await bot.drain()

    body = _plan_comment(bot, 7)
    assert "GitHub has not computed the merge result yet" in body
    assert "conflict" not in body
    assert bot.sleeps == list(POLL_SECONDS)  # bounded, then the head, visibly
    assert not bot.fake.open_check_runs()


async def test_a_plan_overtaken_while_it_ran_is_not_posted_and_the_new_head_is_planned(
    make_bot: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C is pushed while B's plan runs (and C's delivery never comes): B's plan is dropped,
    its check concluded as superseded, and C planned in its place."""
    bot = await make_bot()
    base, b, c = await _commits(bot)
    reads = 0
    route = ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
    answer = _HANDLERS[route]

    def push_c_on_the_third_read(fake: FakeGitHub, call: Call) -> Any:
        nonlocal reads
        reads += 1
        if reads == 3:  # B's plan is made and about to be posted
            fake.pulls[7]["head"]["sha"] = c
            fake.pending_test_merge(7)
        return answer(fake, call)

    monkeypatch.setitem(_HANDLERS, route, push_c_on_the_third_read)
    await bot.deliver("pull_request", bot.pull_request("synchronize", 7, base, b))
    assert await bot.drain() == 2

    assert "shop" in _plan_comment(bot, 7)
    assert not bot.fake.open_check_runs()
    conclusions = {r["head_sha"]: r["conclusion"] for r in bot.fake.check_runs.values()}
    assert conclusions == {b: "neutral", c: "success"}
