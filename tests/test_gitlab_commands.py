"""`/gitops` notes on merge requests: Developer role or higher, through the members API."""

from __future__ import annotations

from helpers.githubbot import base_tree
from helpers.gitlabbot import DEVELOPER, MAINTAINER, REPORTER, GitLabBot, GitLabBotFactory


async def _opened(bot: GitLabBot, iid: int) -> str:
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "notes.txt": "hello"})
    bot.merge_request("open", iid, base, head)
    return head


async def test_a_reporter_is_refused_politely(make_gitlab_bot: GitLabBotFactory) -> None:
    bot = await make_gitlab_bot()
    await _opened(bot, 41)
    bot.fake.add_user("rita", REPORTER)

    response = await bot.deliver("Note Hook", bot.note(41, "/gitops plan", "rita"))
    assert response.status == 202
    await bot.drain()

    [reply] = bot.fake.notes_on(41)
    assert reply["body"].startswith(
        "@rita sorry, only people with the Developer role or higher in this project"
    )
    assert not bot.fake.statuses  # nothing was planned


async def test_someone_who_is_no_member_is_refused(make_gitlab_bot: GitLabBotFactory) -> None:
    bot = await make_gitlab_bot()
    await _opened(bot, 42)
    bot.fake.add_user("stranger")  # a GitLab user, but not a member of the project

    await bot.deliver("Note Hook", bot.note(42, "/gitops plan", "stranger"))
    await bot.deliver("Note Hook", bot.note(42, "/gitops plan", "ghost"))  # no such user
    await bot.drain()

    replies = bot.fake.notes_on(42)
    assert len(replies) == 2
    assert all("the Developer role or higher" in r["body"] for r in replies)


async def test_a_developer_replans_the_merge_request(make_gitlab_bot: GitLabBotFactory) -> None:
    bot = await make_gitlab_bot()
    head = await _opened(bot, 43)
    bot.fake.add_user("dana", DEVELOPER)

    await bot.deliver("Note Hook", bot.note(43, "/gitops plan", "dana"))
    assert await bot.drain() == 2  # the command, then the plan it queued

    [plan] = bot.fake.notes_on(43)
    assert "gitops-bot plan" in plan["body"]
    assert [(s["sha"], s["status"]) for s in bot.fake.statuses] == [(head, "success")]


async def test_help_answers_with_usage(make_gitlab_bot: GitLabBotFactory) -> None:
    bot = await make_gitlab_bot()
    await _opened(bot, 44)
    bot.fake.add_user("mia", MAINTAINER)

    await bot.deliver("Note Hook", bot.note(44, "/gitops help", "mia"))
    await bot.drain()

    [reply] = bot.fake.notes_on(44)
    assert "/gitops plan" in reply["body"] and reply["body"].startswith("@mia")
