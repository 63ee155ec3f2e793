"""The fake GitLab refuses what GitLab's description or python-gitlab's shapes refuse, and
the adapter's small rules: git credentials for GitLab's own host only, idempotent statuses."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.fakegitlab import DESCRIPTION, SHAPES, FakeGitLab, SwaggerDescription
from helpers.gitlabbot import API_TOKEN, PROJECT, GitLabBotFactory

from bot.config.secrets import Secret
from bot.config.settings import Settings
from bot.events import GITLAB, Repository
from bot.forges.gitlab.forge import GitLabForges
from bot.forges.ports import CheckReport, CheckState

STATUS = f"/api/v4/projects/{PROJECT.replace('/', '%2F')}/statuses/{'a' * 40}"
DEPLOYMENTS = f"/api/v4/projects/{PROJECT.replace('/', '%2F')}/deployments"
NOTES = f"/api/v4/projects/{PROJECT.replace('/', '%2F')}/merge_requests/5/notes"
PROJECT_API = f"/api/v4/projects/{PROJECT.replace('/', '%2F')}"
ONE_ACTION = [{"action": "update", "file_path": "a.yaml", "content": "x"}]


@pytest.fixture
async def gitlab(aiohttp_client: Any) -> tuple[Any, FakeGitLab]:
    fake = FakeGitLab(token=API_TOKEN)
    return await aiohttp_client(fake.make_app()), fake


@pytest.mark.parametrize(
    ("method", "path", "body", "problem"),
    [
        ("POST", STATUS, {"state": "failure", "name": "gitops-bot"}, "is not one of"),
        ("POST", STATUS, {"state": "success", "nmae": "gitops-bot"}, "'nmae' is not described"),
        ("POST", STATUS, None, "the request body is required"),
        (
            "POST",
            DEPLOYMENTS,
            {"environment": "staging", "sha": "a" * 40, "ref": "main", "status": "success"},
            "'tag' is a required property",
        ),
        ("GET", DEPLOYMENTS + "?sha=abc", None, "query parameter 'sha' is not described"),
        ("GET", DEPLOYMENTS + "?order_by=sha", None, "'sha' is not one of"),
        ("POST", NOTES, {"note": "hello"}, "'note' is not an attribute"),
        ("GET", NOTES + "?sort=asc", None, "'sort' is not a list filter"),
        ("GET", "/api/v4/projects/1/pipelines", None, "neither GitLab's description"),
        (
            "POST",
            PROJECT_API + "/repository/branches",
            {"branch": "b"},
            "'ref' is a required property",
        ),
        (
            "POST",
            PROJECT_API + "/repository/commits",
            {"branch": "b", "commit_message": "m", "actions": [{"action": "rename"}]},
            "'rename' is not one of",
        ),
        (
            "POST",
            PROJECT_API + "/repository/commits",
            {"branch": "b", "message": "m", "actions": ONE_ACTION},
            "'commit_message' is a required property",
        ),
        (
            "POST",
            PROJECT_API + "/merge_requests",
            {"source_branch": "b", "target_branch": "main", "title": "t", "body": "x"},
            "'body' is not described",
        ),
        (
            "PUT",
            PROJECT_API + "/merge_requests/x/merge",
            {"merge_commit_message": "m"},
            "'x' is not an integer",
        ),
        (
            "PUT",
            PROJECT_API + "/merge_requests/3/merge",
            {"merge_method": "merge"},
            "'merge_method' is not described",
        ),
    ],
)
async def test_requests_outside_the_descriptions_are_violations(
    gitlab: tuple[Any, FakeGitLab], method: str, path: str, body: Any, problem: str
) -> None:
    client, fake = gitlab
    response = await client.request(method, path, json=body, headers={"PRIVATE-TOKEN": API_TOKEN})

    assert response.status == 400
    assert any(problem in v for v in fake.violations), fake.violations


async def test_a_described_request_without_the_token_is_unauthorised(
    gitlab: tuple[Any, FakeGitLab],
) -> None:
    client, fake = gitlab
    response = await client.post(STATUS, json={"state": "pending", "name": "gitops-bot"})

    assert response.status == 401
    assert not fake.violations and not fake.statuses


def test_the_shapes_come_from_python_gitlab() -> None:
    notes = [s for s in SHAPES if s.template.endswith("/{merge_request_iid}/notes")]
    assert {s.method for s in notes} == {"GET", "POST"}
    [create] = [s for s in notes if s.method == "POST"]
    assert create.attributes is not None and create.attributes.required == ("body",)


def test_git_credentials_go_to_the_gitlab_host_only() -> None:
    settings = Settings(
        gitlab_url="https://gitlab.example.com", gitlab_token=Secret("glpat-secret-value")
    )
    forges = GitLabForges(settings)

    def header(url: str) -> Secret | None:
        return forges.git_header(Repository(GITLAB, PROJECT, url, "main"))

    own = header("https://gitlab.example.com/platform/shop-deploy.git")
    assert own is not None
    assert (
        own.reveal()
        == "Authorization: Basic " + base64.b64encode(b"oauth2:glpat-secret-value").decode()
    )
    assert "glpat" not in repr(own)
    assert header("https://evil.example.net/platform/shop-deploy.git") is None
    assert header("http://gitlab.example.com/platform/shop-deploy.git") is None


async def test_a_status_already_in_its_state_is_not_an_error(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    repo = Repository(GITLAB, PROJECT, bot.clone_url, "main")
    forge = bot.services.forges.forge_for(repo)
    pending = CheckReport(CheckState.PENDING, "Planning", "")
    retrying = CheckReport(CheckState.PENDING, "Could not complete yet, will retry", "")

    await forge.report_check(repo, "b" * 40, pending)
    await forge.report_check(repo, "b" * 40, retrying)  # GitLab answers 400 to this one
    await forge.report_check(repo, "b" * 40, pending)  # reads the same already: not sent

    [status] = bot.fake.statuses
    assert status["history"] == ["pending"]
    assert len(bot.fake.calls_to("POST", r"/statuses/b+$")) == 2


def test_the_commit_erratum_is_refused_once_gitlab_describes_the_json_body(
    tmp_path: Path,
) -> None:
    document = yaml.safe_load(DESCRIPTION.read_text())
    document["definitions"]["postApiV4ProjectsIdRepositoryCommits"]["required"] = ["branch"]
    fixed = tmp_path / "description.yaml"
    fixed.write_text(yaml.safe_dump(document))

    with pytest.raises(ValueError, match="drop the erratum"):
        SwaggerDescription(fixed)
