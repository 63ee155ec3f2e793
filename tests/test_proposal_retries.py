"""A rollback or promotion job that dies part way (after making its branch, after its
commit, or after opening the pull request) resumes on its retry through the real app: the
branch and commit are kept, and no second pull request is opened, on GitHub and GitLab."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers.fakeforge import ForgeBot
from helpers.githubbot import BotFactory, BotHarness, deployment
from helpers.gitlabbot import GitLabBot, GitLabBotFactory
from test_gitlab_rollbacks import _history

from bot.store.ports import JobState

WEB = "registry.example.com/web"
CONFIG = {
    "version": 1,
    "environments": {
        "staging": {"path": "envs/staging", "cluster": "x"},
        "production": {"path": "envs/production", "cluster": "x"},
    },
}
# (what fails once, on GitHub, on GitLab): the step the first try dies at
GITHUB_STEPS = {
    "branch": ("POST", r"/git/refs$"),
    "commit": ("POST", r"/git/commits$"),
    "pull request": ("POST", r"/pulls$"),
    "answer": ("POST", r"/issues/51/comments$"),
}
GITLAB_STEPS = {
    "branch": ("POST", r"/repository/branches$"),
    "commit": ("POST", r"/repository/commits$"),
    "pull request": ("POST", r"/merge_requests$"),
    "answer": ("POST", r"/merge_requests/70/notes$"),
}


async def _ask(
    bot: BotHarness | GitLabBot, fault: tuple[str, str], event: str, payload: Any
) -> int:
    """Deliver the command with the forge failing `fault` (method, path) once, and run every
    attempt its job has, the queue's backoff in between; the one pull request opened."""
    bot.fake.fail(*fault, 500, message="500 Internal Server Error")
    assert (await bot.deliver(event, payload)).status == 202
    for _ in range(3):
        await bot.drain()
        bot.clock.advance(3600)
    [number] = bot.fake.opened
    return number


async def _resumed(bot: ForgeBot, steps: dict[str, tuple[str, str]], failed: str) -> None:
    """Each creating request reached the forge once (the failed one once more), and the
    job ended without being dead-lettered."""
    for step, (method, path) in steps.items():
        assert len(bot.fake.calls_to(method, path)) == (2 if step == failed else 1), step
    assert (await bot.services.store.job_counts())[JobState.DEAD] == 0


async def _github_history(bot: BotHarness) -> tuple[str, str]:
    """Staging runs web 1.4.2 and production 1.0.0; master moved on once since (pull
    request #51, where the command is written)."""
    bot.fake.permissions["alice"] = "write"
    tree: dict[str, str | bytes] = {
        ".gitops-bot.yaml": json.dumps(CONFIG),
        "envs/staging/web.yaml": deployment("web", f"{WEB}:1.4.2"),
        "envs/production/web.yaml": deployment("web", f"{WEB}:1.0.0"),
    }
    older = bot.origin.commit(tree, "start")
    tree["README.md"] = "moved on\n"
    head = bot.origin.commit(tree, "Merge #51")
    bot.pull_request("opened", 51, head, head)
    bot.fake.branches["master"] = head
    return older, head


@pytest.mark.parametrize("failed", list(GITHUB_STEPS))
async def test_a_github_promotion_resumes_after_a_partial_failure(
    make_bot: BotFactory, failed: str
) -> None:
    bot = await make_bot()
    _, head = await _github_history(bot)
    comment = bot.comment(51, "/gitops promote staging production", "alice")
    number = await _ask(bot, GITHUB_STEPS[failed], "issue_comment", comment)

    pull = bot.fake.pulls[number]
    assert bot.fake.git is not None
    assert bot.fake.git.parents_of(pull["head"]["sha"]) == [head]
    assert bot.fake.branches[pull["head"]["ref"]] == pull["head"]["sha"]
    await _resumed(bot, GITHUB_STEPS, failed)
    assert sum(f"opened [#{number}](" in c["body"] for c in bot.fake.comments_on(51)) == 1


@pytest.mark.parametrize("failed", list(GITLAB_STEPS))
async def test_a_gitlab_rollback_resumes_after_a_partial_failure(
    make_gitlab_bot: GitLabBotFactory, failed: str
) -> None:
    bot = await make_gitlab_bot()
    good, bad = await _history(bot)
    note = bot.note(70, "/gitops rollback production", "dev")
    iid = await _ask(bot, GITLAB_STEPS[failed], "Note Hook", note)

    mr = bot.fake.merge_requests[iid]
    assert bot.fake.git is not None
    assert bot.fake.git.parents_of(mr["sha"]) == [bad]
    assert mr["title"] == f"Roll back production to {good[:12]}"
    await _resumed(bot, GITLAB_STEPS, failed)
    assert sum(f"opened [#{iid}](" in n["body"] for n in bot.fake.notes_on(70)) == 1


async def test_a_branch_of_that_name_holding_other_work_is_left_alone(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    older, _ = await _github_history(bot)
    branch = "gitops-bot-promote-staging-to-production-1"  # this command's job is job 1
    bot.fake.branches[branch] = older

    comment = bot.comment(51, "/gitops promote staging production", "alice")
    assert (await bot.deliver("issue_comment", comment)).status == 202
    await bot.drain()

    assert bot.fake.opened == [] and bot.fake.branches[branch] == older
    [reply] = bot.fake.comments_on(51)
    assert f"the branch {branch} already exists at {older[:12]}" in reply["body"]
    assert "delete the branch and ask again" in reply["body"]
    assert (await bot.services.store.job_counts())[JobState.DEAD] == 0
