"""The drift loop on GitLab: fake GitLab, real git origin, real kube-apiserver.

A merge applies an environment; a hand edit in the cluster then shows up in one GitLab
issue per environment, found again by its marker and the bot's own author, edited as the
drift changes and closed when it clears. The adapter's issue notes and branch lookups
are checked on their own too, against the same fake.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from helpers.fakegitlab import DESCRIPTION, FakeGitLab, SwaggerDescription
from helpers.gitlabbot import API_TOKEN, PROJECT, GitLabBot, GitLabBotFactory
from helpers.livecluster import LiveEnv, configmap

from bot.config.clusters import ClusterSettings
from bot.config.watchlist import WatchedRepository
from bot.core.markdown import marker, parse_marker
from bot.events import GITLAB, Repository
from bot.forges.gitlab.forge import GitLabForge
from bot.forges.ports import ForgeError
from bot.server.timers import queue_drift_checks

KEY = "drift:prod"
REPOSITORY = f'repository="gitlab:{PROJECT}"'
ISSUES = rf"/projects/{PROJECT}/issues"
MR_URL = f"https://gitlab.example.com/{PROJECT}/-/merge_requests"
BRANCH = "/api/v4/projects/{id}/repository/branches/{branch}"
BRANCH_MAIN = f"/api/v4/projects/{quote(PROJECT, safe='')}/repository/branches/main"


def _tree(live_env: LiveEnv, level: str) -> dict[str, str | bytes]:
    environment = {"path": "deploy", "cluster": "test", "namespace": live_env.namespace}
    config = {"version": 1, "environments": {"prod": environment}}
    return {
        ".gitops-bot.yaml": json.dumps(config),
        "deploy/web.yaml": configmap("web", level=level),
    }


async def _bot(
    make_gitlab_bot: GitLabBotFactory, tmp_path: Path, cluster: ClusterSettings
) -> GitLabBot:
    watched = WatchedRepository(GITLAB, PROJECT, "main", (tmp_path / "origin").as_uri())
    return await make_gitlab_bot(clusters=(cluster,), drift_repositories=(watched,))


async def _merge(bot: GitLabBot, iid: int, tree: dict[str, str | bytes]) -> str:
    """Merge MR !iid with `tree` and let the bot apply it; main moves to the merge."""
    head = bot.origin.commit(tree, f"MR !{iid}")
    bot.merge_request("open", iid, head, head)
    merge = bot.origin.commit(tree, f"Merge !{iid}")
    bot.fake.branches["main"] = merge
    assert (await bot.deliver("Push Hook", bot.merge(iid, merge))).status == 202
    await bot.drain()
    return merge


async def _check(bot: GitLabBot) -> None:
    """One tick of the drift loop, and the workers running what it queued."""
    assert await queue_drift_checks(bot.services, "the-timer") == 1
    await bot.drain()


def _edit(live_env: LiveEnv, level: str) -> None:
    patch = json.dumps({"data": {"level": level}})
    live_env.kubectl.run("patch", "configmap", "web", "-n", live_env.namespace, "-p", patch)


async def _metrics(bot: GitLabBot) -> str:
    response = await bot.client.get("/metrics")
    return await response.text()


async def test_a_hand_edit_opens_one_gitlab_issue_edited_as_it_changes_then_closed(
    make_gitlab_bot: GitLabBotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    bot = await _bot(make_gitlab_bot, tmp_path, live_env.cluster)
    merge = await _merge(bot, 21, _tree(live_env, "1"))
    await _check(bot)
    assert bot.fake.issues == {}  # in sync: nothing to track

    _edit(live_env, "9")
    await _check(bot)
    await _check(bot)  # nothing changed since: the issue is left as it is

    (issue,) = bot.fake.issues.values()
    iid, description = issue["iid"], issue["description"]
    assert issue["title"] == "Drift detected in prod" and issue["state"] == "opened"
    assert issue["author"]["username"] == bot.fake.bot_username
    assert parse_marker(description, KEY) == 1
    assert f"ConfigMap {live_env.namespace}/web" in description
    assert "-  level: '9'" in description and "+  level: '1'" in description
    assert f"<code>data.level</code>: set by [!21]({MR_URL}/21)" in description
    assert f"in commit {merge}" in description and "kubectl-patch" in description
    assert bot.fake.calls_to("PUT", ISSUES + r"/\d+$") == []
    assert bot.fake.comments_on_issue(iid) == []  # the drift fits in the description
    # Each check asked GitLab where main is: the branch, not a webhook, says what to compare.
    assert len(bot.fake.calls_to("GET", r"/repository/branches/main$")) == 3
    assert f'gitops_bot_drift_objects{{environment="prod",{REPOSITORY}}} 1.0' in (
        await _metrics(bot)
    )

    _edit(live_env, "7")
    await _check(bot)
    (edited,) = bot.fake.issues.values()
    assert edited["iid"] == iid and "-  level: '7'" in edited["description"]
    assert len(bot.fake.calls_to("PUT", ISSUES + r"/\d+$")) == 1

    fixed = await _merge(bot, 22, _tree(live_env, "7"))  # Git adopts the hand edit
    await _check(bot)

    (closed,) = bot.fake.issues.values()
    assert closed["iid"] == iid and closed["state"] == "closed"
    assert len(bot.fake.calls_to("POST", ISSUES + "$")) == 1  # opened once, never again
    (comment,) = bot.fake.comments_on_issue(iid)
    assert f"matches commit {fixed} of the default branch again" in comment["body"]
    metrics = await _metrics(bot)
    assert f'gitops_bot_drift_objects{{environment="prod",{REPOSITORY}}} 0.0' in metrics
    assert f'gitops_bot_drift_check_failed{{environment="prod",{REPOSITORY}}} 0.0' in metrics

    await _check(bot)  # in sync, and no open issue left to close
    assert len(bot.fake.calls_to("PUT", ISSUES + r"/\d+$")) == 2


async def _forge(make_gitlab_bot: GitLabBotFactory) -> tuple[GitLabBot, GitLabForge, Repository]:
    bot = await make_gitlab_bot()
    repo = Repository(GITLAB, PROJECT, bot.clone_url, "main")
    forge = bot.services.forges.forge_for(repo)
    assert isinstance(forge, GitLabForge)
    return bot, forge, repo


def _parts(*texts: str) -> tuple[str, ...]:
    return tuple(f"{marker(KEY, n)}\n\n{text}\n" for n, text in enumerate(texts, 1))


async def test_the_tracking_issue_is_the_bots_own_open_one_with_the_marker(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot, forge, repo = await _forge(make_gitlab_bot)
    fake = bot.fake
    copied = fake.add_issue("Drift detected in prod", _parts("copied by hand")[0], "dana")
    other = fake.add_issue("Drift detected in staging", marker("drift:staging", 1), "gitops-bot")
    old = fake.add_issue("Drift detected in prod", _parts("last week")[0], "gitops-bot")
    fake.issues[old]["state"] = "closed"

    url = await forge.upsert_tracking_issue(repo, KEY, "Drift check failing in prod", _parts("a"))

    new = max(fake.issues)
    assert url == f"https://gitlab.example.com/{PROJECT}/-/issues/{new}"
    assert fake.issues[new]["author"]["username"] == "gitops-bot"
    assert fake.issues[old]["state"] == "closed"  # a closed issue is history, not reused
    (listed,) = fake.calls_to("GET", ISSUES + "$")
    assert (listed.query["state"], listed.query["author_username"]) == ("opened", "gitops-bot")

    await forge.upsert_tracking_issue(repo, KEY, "Drift detected in prod", _parts("b"))
    assert len(fake.calls_to("POST", ISSUES + "$")) == 1
    assert (fake.issues[new]["title"], fake.issues[new]["description"]) == (
        "Drift detected in prod",
        _parts("b")[0],
    )
    assert await forge.close_tracking_issue(repo, KEY, "all clear")
    assert not await forge.close_tracking_issue(repo, KEY, "all clear")  # none is open now

    assert fake.issues[new]["state"] == "closed"
    assert [n["body"] for n in fake.comments_on_issue(new)] == ["all clear"]
    assert (fake.issues[copied]["state"], fake.issues[other]["state"]) == ("opened", "opened")
    assert fake.comments_on_issue(copied) == fake.comments_on_issue(other) == []


async def test_parts_after_the_first_are_the_issues_notes_kept_in_step(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot, forge, repo = await _forge(make_gitlab_bot)
    fake = bot.fake
    await forge.upsert_tracking_issue(repo, KEY, "Drift detected in prod", _parts("a", "b", "c"))
    (iid,) = fake.issues
    fake.add_note(iid, _parts("x", "quoted by a person")[1], "dana", noteable_type="Issue")

    await forge.upsert_tracking_issue(repo, KEY, "Drift detected in prod", _parts("a", "B"))

    notes = fake.comments_on_issue(iid)
    mine = [n["body"] for n in notes if n["author"]["username"] == "gitops-bot"]
    assert mine == [_parts("a", "B")[1]]  # part 2 edited in place, part 3 deleted
    assert len(fake.calls_to("PUT", ISSUES + r"/\d+/notes/\d+$")) == 1
    assert len(fake.calls_to("DELETE", ISSUES + r"/\d+/notes/\d+$")) == 1
    assert [n["author"]["username"] for n in notes] == ["gitops-bot", "dana"]
    assert fake.calls_to("PUT", ISSUES + r"/\d+$") == []  # the description did not change

    await forge.upsert_tracking_issue(repo, KEY, "Drift detected in prod", _parts("a", "B"))
    assert len(fake.calls_to("PUT", ISSUES + r"/\d+/notes/\d+$")) == 1  # nothing to do
    assert len(fake.calls_to("POST", ISSUES + r"/\d+/notes$")) == 2


async def test_branch_head_is_where_the_branch_points_now(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot, forge, repo = await _forge(make_gitlab_bot)
    main, release = "a" * 40, "b" * 40
    bot.fake.branches.update({"main": main, "release/1.x": release})

    assert await forge.branch_head(repo, "main") == main
    # The name is one path segment (slash encoded): the fake matches raw paths per segment.
    assert await forge.branch_head(repo, "release/1.x") == release
    with pytest.raises(ForgeError, match="404"):
        await forge.branch_head(repo, "gone")
    assert len(bot.fake.calls_to("GET", r"/repository/branches/")) == 3


@pytest.mark.parametrize(
    ("method", "path", "body", "problem"),
    [
        ("GET", "issues?state=open", None, "'open' is not one of"),
        ("GET", "issues?creator=gitops-bot", None, "query parameter 'creator' is not described"),
        ("POST", "issues", {"description": "no title"}, "'title' is a required property"),
        ("POST", "issues", {"title": "t", "body": "x"}, "property 'body' is not described"),
        ("PUT", "issues/1", {"state_event": "closed"}, "'closed' is not one of"),
        ("PUT", "issues/one", {"title": "t"}, "'one' is not an integer"),
        ("POST", "issues/1/notes", {"note": "x"}, "'note' is not an attribute"),
        ("PUT", "issues/1/notes/2", {}, "'body' is required"),
        ("GET", "repository/branches/main?ref=x", None, "query parameter 'ref' is not described"),
    ],
)
async def test_the_fake_refuses_issue_and_branch_requests_gitlab_would_not_take(
    aiohttp_client: Any, method: str, path: str, body: Any, problem: str
) -> None:
    fake = FakeGitLab(token=API_TOKEN)
    client = await aiohttp_client(fake.make_app())
    url = f"/api/v4/projects/{quote(PROJECT, safe='')}/{path}"

    response = await client.request(method, url, json=body, headers={"PRIVATE-TOKEN": API_TOKEN})

    assert response.status == 400
    assert any(problem in v for v in fake.violations), fake.violations


def test_an_erratum_corrects_the_description_only_while_the_error_is_there(
    tmp_path: Path,
) -> None:
    corrected = SwaggerDescription()
    assert corrected.problems("GET", BRANCH_MAIN, {}, b"") == []  # a name, as GitLab takes
    published = yaml.safe_load(DESCRIPTION.read_text())
    (_, branch) = published["paths"][BRANCH]["get"]["parameters"]
    assert (branch["name"], branch["type"]) == ("branch", "integer")  # as GitLab has it

    branch["type"] = "string"  # GitLab fixed it: the erratum must go
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(yaml.safe_dump(published))
    with pytest.raises(ValueError, match="drop the erratum"):
        SwaggerDescription(fixed)
