"""The GitHub Action and the GitLab CI/CD template, run as their runners would run them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from helpers.cirunners import ROOT, ActionRun, base_env, gitlab_job, run_gitlab_job
from helpers.gitrepos import Repo
from helpers.manifests import CONFIG, deployment
from helpers.readmeblocks import readme_block
from helpers.schemafiles import assert_valid_code_quality, assert_valid_sarif

UNPINNED = deployment(image="registry.example.com/web:latest")
UNPINNED_LINE = 1 + UNPINNED.splitlines().index("          image: registry.example.com/web:latest")
TEMPLATE = ROOT / "ci/gitlab/gitops-bot.gitlab-ci.yml"


@pytest.fixture(scope="module")
def runner_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RUNNER_TEMP with the action's install step done once, for real."""
    temp = tmp_path_factory.mktemp("runner")
    (temp / "home").mkdir()
    [install] = ActionRun(ROOT, temp, temp).run(only=("Install gitops-bot",))
    assert install.returncode == 0, install.stderr
    return temp


def pull_request(repo: Repo, head_tree: dict[str, str]) -> None:
    """main and a checked-out branch `change`, with origin/main as actions/checkout leaves it."""
    repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    repo.git("update-ref", "refs/remotes/origin/main", "HEAD")
    repo.git("checkout", "--quiet", "-b", "change")
    repo.commit({".gitops-bot.yaml": CONFIG, **head_tree})


def action(runner_temp: Path, workspace: Path, **inputs: str) -> ActionRun:
    return ActionRun(ROOT, workspace, runner_temp, inputs, {"GITHUB_BASE_REF": "main"})


def test_the_install_step_installs_this_checkout(runner_temp: Path) -> None:
    bot = runner_temp / "gitops-bot/lib"
    [installed] = bot.glob("python3*/site-packages/bot/__init__.py")
    assert installed.read_text() == (ROOT / "bot/__init__.py").read_text()


def test_action_plan_of_a_clean_change_passes_and_fills_the_summary(
    runner_temp: Path, repo: Repo
) -> None:
    pull_request(repo, {"deploy/web.yaml": deployment(replicas=3)})
    run = action(runner_temp, repo.path, command="plan")
    [step] = run.run(only=("run",))
    assert step.returncode == 0, step.stdout + step.stderr
    assert run.output("exit-code") == "0"
    assert "gitops-bot plan" in step.summary and "update" in step.summary
    assert "::error" not in step.stdout


def test_action_plan_annotates_and_fails_a_blocking_change(
    runner_temp: Path, repo: Repo, sarif_validator: jsonschema.protocols.Validator
) -> None:
    pull_request(repo, {"deploy/web.yaml": UNPINNED})
    sarif = repo.path.parent / "gitops-bot.sarif"
    run = action(runner_temp, repo.path, command="plan", **{"sarif-file": str(sarif)})
    [step] = run.run(only=("run",))
    assert step.returncode == 1, step.stderr
    assert run.output("exit-code") == "1"
    assert f"::error file=deploy/web.yaml,line={UNPINNED_LINE},title=[pinned-images]" in step.stdout
    assert "blocked" in step.summary
    results = assert_valid_sarif(sarif_validator, sarif.read_text())["runs"][0]["results"]
    assert "pinned-images" in {r["ruleId"] for r in results}


def test_action_validate_annotates_the_paths_given(runner_temp: Path, tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps/web.yaml").write_text(UNPINNED)
    (tmp_path / "other.yaml").write_text(UNPINNED)  # not among the paths: not checked
    run = action(runner_temp, tmp_path, command="validate", paths="apps")
    [step] = run.run(only=("run",))
    assert step.returncode == 1, step.stderr
    assert f"::error file=apps/web.yaml,line={UNPINNED_LINE}," in step.stdout
    assert "other.yaml" not in step.stdout
    assert "### gitops-bot validate" in step.summary and "[pinned-images]" in step.summary


def test_action_plan_outside_a_pull_request_needs_a_base(runner_temp: Path, repo: Repo) -> None:
    pull_request(repo, {"deploy/web.yaml": deployment()})
    run = ActionRun(ROOT, repo.path, runner_temp, {"command": "plan"})  # no GITHUB_BASE_REF
    [step] = run.run(only=("run",))
    assert step.returncode == 2
    assert "::error::plan needs a base ref" in step.stdout


def test_action_validate_without_paths_is_a_usage_error(runner_temp: Path, tmp_path: Path) -> None:
    [step] = action(runner_temp, tmp_path, command="validate").run(only=("run",))
    assert step.returncode == 2
    assert "::error::validate needs the paths input" in step.stdout


def test_action_with_an_unknown_command_is_a_usage_error(runner_temp: Path, tmp_path: Path) -> None:
    [step] = action(runner_temp, tmp_path, command="deploy").run(only=("run",))
    assert step.returncode == 2
    assert "::error::unknown command 'deploy'" in step.stdout


def test_action_reports_an_unknown_ref_as_a_failure_to_run(runner_temp: Path, repo: Repo) -> None:
    pull_request(repo, {"deploy/web.yaml": deployment()})
    [step] = action(runner_temp, repo.path, command="plan", base="no-such-ref").run(only=("run",))
    assert step.returncode == 3
    assert "::error::gitops-bot plan could not run (exit 3)" in step.stdout


@pytest.fixture(scope="module")
def gitlab_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The job's TMPDIR with its `before_script` (the install) done once, for real."""
    temp = tmp_path_factory.mktemp("gitlab")
    (temp / "home").mkdir()
    package = {"GITOPS_BOT_PACKAGE": str(ROOT)}
    done = run_gitlab_job(
        gitlab_job(TEMPLATE, "gitops-bot"), temp, package, temp, ("before_script",)
    )
    assert done.returncode == 0, done.stderr
    return temp


def run_template(
    project: Path, variables: dict[str, str], temp: Path
) -> subprocess.CompletedProcess[str]:
    return run_gitlab_job(gitlab_job(TEMPLATE, "gitops-bot"), project, variables, temp, ("script",))


@pytest.fixture
def merge_request(repo: Repo) -> dict[str, str]:
    """A project checked out at a merge request's head; the CI variables GitLab sets."""
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    head = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": UNPINNED})
    return {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
        "CI_COMMIT_SHA": head,
    }


def test_gitlab_template_writes_a_code_quality_report_and_fails_a_blocking_plan(
    repo: Repo, gitlab_temp: Path, merge_request: dict[str, str]
) -> None:
    job = gitlab_job(TEMPLATE, "gitops-bot")
    done = run_template(repo.path, merge_request, gitlab_temp)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("plan ") and "BLOCKED" in done.stdout
    reported = repo.path / job["artifacts"]["reports"]["codequality"]
    quality = assert_valid_code_quality(reported.read_text())
    [pinned] = [issue for issue in quality if issue["check_name"] == "pinned-images"]
    assert pinned["location"] == {"path": "deploy/web.yaml", "lines": {"begin": UNPINNED_LINE}}
    assert all((repo.path / p).exists() for p in job["artifacts"]["paths"])
    assert job["artifacts"]["when"] == "always"  # the report is kept when the job fails


def test_gitlab_template_validate_mode(
    repo: Repo, gitlab_temp: Path, merge_request: dict[str, str]
) -> None:
    shutil.copy(repo.path / "deploy/web.yaml", repo.path / "extra.yaml")
    variables = {**merge_request, "GITOPS_BOT_COMMAND": "validate", "GITOPS_BOT_PATHS": "deploy"}
    done = run_template(repo.path, variables, gitlab_temp)
    assert done.returncode == 1, done.stderr
    report = json.loads((repo.path / "gl-code-quality-report.json").read_text())
    assert {issue["location"]["path"] for issue in report} == {"deploy/web.yaml"}


def test_gitlab_template_outside_a_merge_request_needs_a_base(
    repo: Repo, gitlab_temp: Path, merge_request: dict[str, str]
) -> None:
    variables = {**merge_request, "CI_MERGE_REQUEST_DIFF_BASE_SHA": ""}
    done = run_template(repo.path, variables, gitlab_temp)
    assert done.returncode == 2
    assert "plan needs GITOPS_BOT_BASE" in done.stderr


def test_readme_workflow_runs_the_action_with_its_inputs(
    runner_temp: Path, repo: Repo, sarif_validator: jsonschema.protocols.Validator
) -> None:
    workflow = yaml.safe_load(readme_block("# .github/workflows/gitops-bot.yml"))
    steps = workflow["jobs"]["plan"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    [ours] = [s for s in steps if s["uses"].split("@")[0].endswith("/gitops-bot")]
    declared = ActionRun(ROOT, repo.path, runner_temp).definition["inputs"]
    assert set(ours["with"]) <= set(declared)
    [upload] = [s for s in steps if s["uses"].startswith("github/codeql-action/upload-sarif")]
    assert upload["with"]["sarif_file"] == ours["with"]["sarif-file"]

    pull_request(repo, {"deploy/web.yaml": deployment(replicas=2)})
    run = action(runner_temp, repo.path, **ours["with"])
    [step] = run.run(only=("run",))
    assert step.returncode == 0, step.stdout + step.stderr
    assert_valid_sarif(sarif_validator, (repo.path / upload["with"]["sarif_file"]).read_text())


def test_readme_gitlab_snippet_includes_the_template_and_sets_its_variables(
    repo: Repo, gitlab_temp: Path, merge_request: dict[str, str]
) -> None:
    pipeline = yaml.safe_load(readme_block("# .gitlab-ci.yml"))
    [include] = pipeline["include"]
    assert include["remote"].endswith("/" + str(TEMPLATE.relative_to(ROOT)))
    template_variables = gitlab_job(TEMPLATE, "gitops-bot")["variables"]
    overrides = pipeline["gitops-bot"]["variables"]
    assert set(overrides) <= set(template_variables)
    done = run_template(repo.path, {**merge_request, **overrides}, gitlab_temp)
    assert done.returncode == 1, done.stderr  # the merge request's head breaks a policy
    assert_valid_code_quality((repo.path / "gl-code-quality-report.json").read_text())


@pytest.mark.parametrize("marker", ["sh 'gitops-bot", "- run: gitops-bot"])
def test_readme_jenkins_and_circleci_one_liners_run(
    marker: str, runner_temp: Path, repo: Repo, sarif_validator: jsonschema.protocols.Validator
) -> None:
    line = readme_block(marker).strip()
    command = line.removeprefix("sh '").removesuffix("'").removeprefix("- run: ")
    assert command.startswith("gitops-bot ")
    pull_request(repo, {"deploy/web.yaml": UNPINNED})
    env = {**base_env(runner_temp / "home")}
    env["PATH"] = f"{runner_temp / 'gitops-bot/bin'}:{env['PATH']}"
    done = subprocess.run(
        ["bash", "-c", command], cwd=repo.path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stderr  # a blocking plan fails the build
    assert "BLOCKED" in done.stdout and "[pinned-images]" in done.stdout
    if "sarif=" in command:
        assert_valid_sarif(sarif_validator, (repo.path / "gitops-bot.sarif").read_text())


def test_gitlab_template_validate_without_paths_is_a_usage_error(
    repo: Repo, gitlab_temp: Path, merge_request: dict[str, str]
) -> None:
    done = run_template(repo.path, {**merge_request, "GITOPS_BOT_COMMAND": "validate"}, gitlab_temp)
    assert done.returncode == 2
    assert "validate needs GITOPS_BOT_PATHS" in done.stderr
