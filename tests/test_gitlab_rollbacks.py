"""Rollback and promotion merge requests from `/gitops` notes on the fake GitLab: a branch,
one commit of actions (made with git by the fake) and a merge request, each request checked
against GitLab's OpenAPI description of it."""

from __future__ import annotations

import json
from dataclasses import replace

from helpers.githubbot import deployment
from helpers.gitlabbot import DEVELOPER, PROJECT, REPORTER, GitLabBot, GitLabBotFactory
from helpers.livecluster import configmap
from test_github_rollbacks import _succeeded

from bot.core.markdown import parse_marker
from bot.events import Repository

CONFIG = json.dumps(
    {
        "version": 1,
        "environments": {
            "staging": {"path": "deploy/staging", "cluster": "x"},
            "production": {"path": "deploy/production", "cluster": "x"},
        },
    }
)
WEB = "registry.example.com/web"


def _tree(level: str, web: str, extra: bool = False) -> dict[str, str | bytes]:
    tree: dict[str, str | bytes] = {
        ".gitops-bot.yaml": CONFIG,
        "deploy/staging/web.yaml": deployment("web", f"{WEB}:{web}"),
        "deploy/production/web.yaml": "# production\n" + deployment("web", f"{WEB}:1.0.0"),
        "deploy/production/settings.yaml": configmap("settings", level=level),
    }
    if extra:
        tree["deploy/production/extra.yaml"] = configmap("extra", added="yes")
    return tree


async def _note(bot: GitLabBot, iid: int, text: str, username: str = "dev") -> None:
    assert (await bot.deliver("Note Hook", bot.note(iid, text, username))).status == 202
    await bot.drain()


async def _history(bot: GitLabBot) -> tuple[str, str]:
    """Production ran `good`, then `bad` (the ledger says so); main is at `bad`."""
    bot.fake.add_user("dev", DEVELOPER)
    good = bot.origin.commit(_tree("1", "1.0.0"), "Merge branch 'one'")
    bad = bot.origin.commit(_tree("2", "2.5.0", extra=True), "Merge branch 'two'")
    bot.fake.branches["main"] = bad
    repository = f"gitlab:{PROJECT}"
    for commit, iid in ((good, 61), (bad, 62)):
        entry = replace(_succeeded("production", commit, iid), repository=repository)
        await bot.services.store.add_audit(entry)
    bot.merge_request("open", 70, bad, bad)
    return good, bad


async def test_a_rollback_note_opens_a_merge_request_with_its_preview(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    good, bad = await _history(bot)
    bot.fake.add_user("rita", REPORTER)

    await _note(bot, 70, "/gitops rollback production", username="rita")
    assert bot.fake.opened == []
    await _note(bot, 70, "/gitops rollback production")

    [iid] = bot.fake.opened
    mr = bot.fake.merge_requests[iid]
    assert (mr["target_branch"], mr["title"]) == ("main", f"Roll back production to {good[:12]}")
    assert f"`{bad}`" in mr["description"] and "#62" in mr["description"]
    assert bot.fake.git is not None
    assert bot.fake.git.parents_of(mr["sha"]) == [bad]
    changed = bot.origin.git("diff", "--name-status", bad, mr["sha"]).splitlines()
    assert changed == [
        "D\tdeploy/production/extra.yaml",
        "M\tdeploy/production/settings.yaml",
    ]  # staging's new image stays
    assert any(f"opened [#{iid}]({mr['web_url']})" in n["body"] for n in bot.fake.notes_on(70))

    assert (await bot.deliver("Merge Request Hook", bot.opened_by_bot(iid))).status == 202
    await bot.drain()
    [preview] = bot.fake.notes_on(iid)
    assert parse_marker(preview["body"], "plan") == 1
    assert "ConfigMap" in preview["body"] and "extra" in preview["body"]

    repo = Repository("gitlab", PROJECT, bot.clone_url, "main")
    forge = bot.services.forges.forge_for(repo)  # as `gitops-bot rollback --merge` does
    merge = await forge.merge_pull_request(repo, iid, "Break-glass rollback of production")
    assert bot.fake.git.parents_of(merge) == [bad, mr["sha"]]  # a merge commit
    assert bot.fake.git.message_of(merge) == "Break-glass rollback of production"
    assert (await bot.deliver("Push Hook", bot.merge(iid, merge))).status == 202
    await bot.drain()
    last = (await bot.services.store.audit_records("production"))[-1].entry
    assert (last.commit, last.pr_number) == (merge, iid)


async def test_a_promote_note_changes_only_the_image_line(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    await _history(bot)

    on_issue = bot.issue_note(5, "/gitops promote staging production", "dev")
    assert (await bot.deliver("Note Hook", on_issue)).status == 202
    await bot.drain()

    [iid] = bot.fake.opened
    mr = bot.fake.merge_requests[iid]
    assert bot.fake.git is not None
    assert bot.fake.git.changed_lines(mr["sha"]) == [
        f"-          image: {WEB}:1.0.0",
        f"+          image: {WEB}:2.5.0",
    ]
    assert f"`{WEB}:2.5.0`" in mr["description"]
    [reply] = bot.fake.comments_on_issue(5)  # answered on the issue
    assert f"opened [#{iid}](" in reply["body"]
