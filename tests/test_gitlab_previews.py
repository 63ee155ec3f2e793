"""Merge request previews through the real app: one sticky note, the `gitops-bot` status."""

from __future__ import annotations

from helpers.githubbot import base_tree, deployment
from helpers.gitlabbot import PROJECT, GitLabBot, GitLabBotFactory
from helpers.gitopsrepo import application

from bot.core.markdown import GITLAB_NOTE_LIMIT, parse_marker
from bot.events import GITLAB, Repository

BROKEN = deployment("cart", "registry.example.com/cart:latest")
FIXED = deployment("cart", "registry.example.com/cart:1.0.0")


def _status(bot: GitLabBot, sha: str) -> dict[str, object]:
    [status] = [s for s in bot.fake.statuses if s["sha"] == sha]
    return status


async def test_open_then_push_a_fix_edits_one_note_and_flips_the_status(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": BROKEN})

    response = await bot.deliver("Merge Request Hook", bot.merge_request("open", 5, base, head))
    assert response.status == 202
    assert await bot.drain() == 1

    [note] = bot.fake.notes_on(5)
    assert parse_marker(note["body"], "plan") == 1
    assert "blocked" in note["body"] and "cart" in note["body"]
    assert base[:12] in note["body"]  # the base came from the merge request's diff_refs
    status = _status(bot, head)
    assert (status["name"], status["history"]) == ("gitops-bot", ["pending", "failed"])

    fix = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": FIXED})
    update = bot.merge_request("update", 5, base, fix, oldrev=head)
    assert (await bot.deliver("Merge Request Hook", update)).status == 202
    await bot.drain()

    [edited] = bot.fake.notes_on(5)
    assert edited["id"] == note["id"]
    assert "ready to merge" in edited["body"]
    assert bot.fake.calls_to("PUT", rf"/merge_requests/5/notes/{note['id']}$")
    assert _status(bot, fix)["history"] == ["pending", "success"]
    assert _status(bot, head)["history"] == ["pending", "failed"]


async def test_a_title_or_label_edit_is_not_planned_again(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": FIXED})

    relabel = bot.merge_request("update", 6, base, head)  # no oldrev: no new commits
    relabel["changes"]["labels"] = {"previous": [], "current": [{"id": 1, "title": "ops"}]}
    closed = bot.merge_request("close", 6, base, head)

    responses = [
        await bot.deliver("Merge Request Hook", relabel),
        await bot.deliver("Merge Request Hook", closed),
    ]

    assert [r.status for r in responses] == [200, 200]
    assert await bot.drain() == 0
    assert not bot.fake.calls


async def test_a_reopened_merge_request_is_planned(make_gitlab_bot: GitLabBotFactory) -> None:
    bot = await make_gitlab_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": FIXED})

    await bot.deliver("Merge Request Hook", bot.merge_request("reopen", 7, base, head))
    await bot.drain()

    assert len(bot.fake.notes_on(7)) == 1
    assert _status(bot, head)["history"] == ["pending", "success"]


async def test_the_bot_edits_only_its_own_marked_note(make_gitlab_bot: GitLabBotFactory) -> None:
    bot = await make_gitlab_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": FIXED})
    impostor = bot.fake.add_note(8, "<!-- gitops-bot:plan part=1 -->\nfake", "mallory")

    await bot.deliver("Merge Request Hook", bot.merge_request("open", 8, base, head))
    await bot.drain()

    assert bot.fake.notes[impostor]["body"].endswith("fake")
    mine = [n for n in bot.fake.notes_on(8) if n["author"]["username"] == "gitops-bot"]
    assert len(mine) == 1


async def test_a_plan_in_several_parts_is_kept_in_step_with_the_notes(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    """GitLab's note limit is 1,000,000 characters; the adapter keeps one note per part."""
    bot = await make_gitlab_bot()
    repo = Repository(GITLAB, PROJECT, bot.clone_url, "main")
    forge = bot.services.forges.forge_for(repo)
    assert forge.comment_limit == GITLAB_NOTE_LIMIT
    parts = [f"<!-- gitops-bot:plan part={n} -->\npart {n} of 3" for n in (1, 2, 3)]
    for number in range(1, 120):  # more notes than one page of the notes API
        bot.fake.add_note(9, f"comment {number}", "dana")

    await forge.upsert_comment(repo, 9, "plan", parts)
    first = {n["body"]: n["id"] for n in bot.fake.notes_on(9) if "gitops-bot" in n["body"]}
    await forge.upsert_comment(repo, 9, "plan", ["<!-- gitops-bot:plan part=1 -->\nshort"])

    mine = [n for n in bot.fake.notes_on(9) if n["author"]["username"] == "gitops-bot"]
    assert len(first) == 3
    assert [(n["id"], n["body"].splitlines()[-1]) for n in mine] == [(first[parts[0]], "short")]
    assert len(bot.fake.calls_to("DELETE", r"/notes/\d+$")) == 2
    assert any(c.query.get("page") == "2" for c in bot.fake.calls_to("GET", r"/notes$"))


async def test_a_merge_request_whose_diff_is_not_ready_is_planned_once_it_is(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    """Right after a merge request is opened GitLab may not have its diff (no diff_refs)."""
    bot = await make_gitlab_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": FIXED})
    hook = bot.merge_request("open", 10, base, head)
    refs = bot.fake.merge_requests[10].pop("diff_refs")

    await bot.deliver("Merge Request Hook", hook)
    await bot.drain()
    assert not bot.fake.notes_on(10)  # no plan against an unknown base
    bot.fake.merge_requests[10]["diff_refs"] = refs
    bot.clock.advance(60)  # the retry GitLab's answer asked for is due
    await bot.drain()

    [note] = bot.fake.notes_on(10)
    assert base[:12] in note["body"]
    assert _status(bot, head)["history"] == ["pending", "success"]


async def test_an_affected_application_that_cannot_be_previewed_is_skipped_not_success(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    app = application("other", "repoURL: https://example.com/other.git\npath: x\n")
    base = bot.origin.commit({"apps/other.yaml": app})
    head = bot.origin.commit({"apps/other.yaml": app.replace("path: x", "path: y")})
    await bot.deliver("Merge Request Hook", bot.merge_request("open", 7, base, head))
    assert await bot.drain() == 1

    [note] = bot.fake.notes_on(7)
    assert "⚠️ 1 affected application could not be previewed" in note["body"]
    status = _status(bot, head)
    assert status["history"] == ["pending", "skipped"]
    assert str(status["description"]).startswith("1 affected application not previewed")
