"""A plan describes the MR's current head, as the merge would make it (GitLab, real app).

Hooks are sent to the app with their token; the fake GitLab checks every request against
GitLab's description (or python-gitlab's shapes) and makes its merge refs with git.
"""

from __future__ import annotations

from typing import Any

from helpers.githubbot import base_tree, deployment
from helpers.gitlabbot import GitLabBot, GitLabBotFactory

CART = deployment("cart", "registry.example.com/cart:1.0.0")
SHOP = deployment("shop", "registry.example.com/shop:1.0.0")
HOOK = "Merge Request Hook"


def _plan_note(bot: GitLabBot, iid: int) -> str:
    [note] = bot.fake.notes_on(iid)
    return str(note["body"])


async def _late_and_current(bot: GitLabBot) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """Heads B (adds cart) then C (adds shop too); the hooks of both; the MR is at C."""
    base = bot.origin.commit(base_tree())
    b = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": CART})
    c = bot.origin.commit(
        {**base_tree(), "deploy/staging/cart.yaml": CART, "deploy/staging/shop.yaml": SHOP}
    )
    late = bot.merge_request("update", 5, base, b, oldrev=base)
    return b, c, bot.merge_request("update", 5, base, c, oldrev=b), late


async def test_a_late_hook_of_an_older_head_keeps_the_newer_plan(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    _, c, current, late = await _late_and_current(bot)

    await bot.deliver(HOOK, current)
    await bot.drain()
    first, edits = _plan_note(bot, 5), len(bot.fake.edits())
    await bot.deliver(HOOK, late)
    assert await bot.drain() == 1

    assert _plan_note(bot, 5) == first
    assert "shop" in first and c[:12] in first
    assert bot.fake.edits()[edits:] == []  # B's job planned C again: nothing changed
    assert not bot.fake.open_statuses()
    assert {s["sha"] for s in bot.fake.statuses} == {c}


async def test_an_older_head_queued_after_the_newer_one_plans_the_newer(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    _, c, current, late = await _late_and_current(bot)

    await bot.deliver(HOOK, current)
    await bot.deliver(HOOK, late)
    assert await bot.drain() == 1

    assert "shop" in _plan_note(bot, 5)
    assert not bot.fake.open_statuses()
    [status] = bot.fake.statuses
    assert (status["sha"], status["status"]) == (c, "success")


async def test_the_open_status_of_a_superseded_head_is_concluded(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    b, c, current, late = await _late_and_current(bot)
    bot.fake.fail("POST", r"/merge_requests/5/notes$", 422)
    bot.fake.merge_requests[5].update(sha=b)  # the MR was at B when B's hook came
    bot.fake.checking(5)
    await bot.deliver(HOOK, late)
    await bot.drain()
    [waiting] = bot.fake.open_statuses()
    assert waiting["sha"] == b

    bot.fake.merge_requests[5].update(sha=c)  # then C is pushed
    await bot.deliver(HOOK, current)
    bot.clock.advance(3600)
    await bot.drain()

    assert not bot.fake.open_statuses()
    assert waiting["status"] == "skipped"
    assert waiting["description"] == f"Superseded by {c[:12]}"
    assert "shop" in _plan_note(bot, 5)


async def test_an_unchanged_redelivery_edits_nothing(make_gitlab_bot: GitLabBotFactory) -> None:
    bot = await make_gitlab_bot()
    _, _, current, _ = await _late_and_current(bot)
    await bot.deliver(HOOK, current)
    await bot.drain()
    before = len(bot.fake.edits())

    await bot.deliver(HOOK, current)  # a project hook and a group hook, say
    await bot.drain()

    assert before > 0 and bot.fake.edits()[before:] == []


async def _behind_target(bot: GitLabBot, branch_tree: dict[str, str | bytes]) -> tuple[str, str]:
    """An MR branch cut from main, and main gaining web 1.1.0 in staging afterwards."""
    base = bot.origin.commit(base_tree())
    bot.origin.git("checkout", "--quiet", "-b", "feature")
    head = bot.origin.commit(branch_tree)
    bot.origin.git("checkout", "--quiet", "main")
    newer = deployment("web", "registry.example.com/web:1.1.0")
    bot.fake.branches["main"] = bot.origin.commit({**base_tree(), "deploy/staging/web.yaml": newer})
    return base, head


async def test_an_mr_behind_its_target_previews_the_merge_ref(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    base, head = await _behind_target(bot, {**base_tree(), "deploy/staging/cart.yaml": CART})

    await bot.deliver(HOOK, bot.merge_request("open", 5, base, head))
    await bot.drain()

    body = _plan_note(bot, 5)
    merge = bot.origin.git("rev-parse", "refs/merge-requests/5/merge")
    assert f"previewing the merge result {merge[:12]}" in body
    assert "cart" in body
    assert "web" not in body.split("#### Environment")[1]  # main's web 1.1.0 is not reverted
    assert "1.1.0" not in body
    assert not bot.fake.open_statuses()


async def test_a_conflicting_mr_previews_its_head_and_says_why(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    mine = deployment("web", "registry.example.com/web:2.0.0")
    base, head = await _behind_target(bot, {**base_tree(), "deploy/staging/web.yaml": mine})

    await bot.deliver(HOOK, bot.merge_request("open", 5, base, head))
    await bot.drain()

    body = _plan_note(bot, 5)
    assert bot.fake.merge_requests[5]["has_conflicts"] is True
    assert f"previewing the head {head[:12]} against {base[:12]}, not the merge" in body
    assert "conflicts with the base branch on GitLab" in body
    assert not bot.fake.open_statuses()
