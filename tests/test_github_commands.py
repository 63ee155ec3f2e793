"""`/gitops` comment commands: writers only, the bot never answers itself, args are data."""

from __future__ import annotations

import pytest
from helpers.githubbot import BotFactory, BotHarness, base_tree

from bot.events import CommentCommand, Repository, parse_command
from bot.workflows.pr_command import USAGE, refusal


async def _pull(bot: BotHarness, number: int) -> str:
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "notes.txt": "hello"})
    bot.pull_request("opened", number, base, head)
    return head


async def test_an_unauthorised_plan_command_is_refused_politely(make_bot: BotFactory) -> None:
    bot = await make_bot()
    await _pull(bot, 41)
    bot.fake.permissions["mallory"] = "read"

    assert (
        await bot.deliver("issue_comment", bot.comment(41, "/gitops plan", "mallory"))
    ).status == 202
    await bot.drain()

    [reply] = bot.fake.comments_on(41)
    assert reply["body"].startswith("@mallory sorry, only people with write access")
    assert not bot.fake.check_runs  # nothing was planned


async def test_a_stranger_without_any_access_is_refused(make_bot: BotFactory) -> None:
    bot = await make_bot()
    await _pull(bot, 42)

    await bot.deliver("issue_comment", bot.comment(42, "/gitops plan", "stranger"))
    await bot.drain()

    [reply] = bot.fake.comments_on(42)
    assert "write access" in reply["body"]


async def test_a_writer_replans_the_pull_request(make_bot: BotFactory) -> None:
    bot = await make_bot()
    head = await _pull(bot, 43)
    bot.fake.permissions["octocat"] = "write"

    await bot.deliver("issue_comment", bot.comment(43, "/gitops plan", "octocat"))
    assert await bot.drain() == 2  # the command, then the plan it queued

    [plan] = bot.fake.comments_on(43)
    assert "gitops-bot plan" in plan["body"]
    assert [r["head_sha"] for r in bot.fake.check_runs.values()] == [head]


async def test_help_answers_with_usage(make_bot: BotFactory) -> None:
    bot = await make_bot()
    await _pull(bot, 44)
    bot.fake.permissions["octocat"] = "admin"

    await bot.deliver("issue_comment", bot.comment(44, "/gitops help", "octocat"))
    await bot.drain()

    [reply] = bot.fake.comments_on(44)
    assert "/gitops plan" in reply["body"] and reply["body"].startswith("@octocat")


async def test_comments_by_bots_and_ordinary_comments_are_ignored(make_bot: BotFactory) -> None:
    bot = await make_bot()
    own = bot.comment(45, "/gitops plan", bot.fake.bot_login)
    own["comment"]["user"]["type"] = "Bot"

    responses = [
        await bot.deliver("issue_comment", own),
        await bot.deliver("issue_comment", bot.comment(45, "looks good /gitops plan", "octocat")),
    ]

    assert [r.status for r in responses] == [200, 200]
    assert await bot.drain() == 0


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("/gitops plan", ("plan",)),
        ("/gitops", ("help",)),
        ("  /gitops PLAN staging\nmore text", ("plan", "staging")),
        ("/gitops plan $(rm -rf /) ; echo", ("plan", "?", "?", "?", "?", "echo")),
        ("/gitopsplan", None),
        ("please /gitops plan", None),
    ],
)
def test_command_words_are_plain_data(body: str, words: tuple[str, ...] | None) -> None:
    assert parse_command(body) == words


def test_the_bots_own_answers_never_read_as_commands() -> None:
    repo = Repository("github", "o/r", "https://example.com/o/r.git", "main")
    command = CommentCommand(repo, 1, "octocat", "plan")
    assert parse_command(USAGE.format(permission="write access")) is None
    assert parse_command(refusal(command, "write access")) is None
