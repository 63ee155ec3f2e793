"""`gitops-bot plan` end to end on real git repositories, as a subprocess."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from helpers.gitrepos import Repo
from helpers.manifests import CONFIG, configmap, deployment

ROOT = Path(__file__).resolve().parent.parent


def run_plan(
    repo: Path, base: str, head: str, fmt: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "plan",
            "--repo",
            str(repo),
            "--base",
            base,
            "--head",
            head,
            "--format",
            fmt,
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def load_example_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_demo_repo", ROOT / "examples/build_demo_repo.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = load_example_builder().build(tmp_path_factory.mktemp("example") / "repo")
    return path


def test_example_preview_shows_every_kind_of_change(example: Path) -> None:
    done = run_plan(example, "main", "update-shop", "markdown")
    assert done.returncode == 1, done.stderr  # a policy violation blocks the merge
    out = done.stdout
    assert "### gitops-bot plan: ❌ blocked" in out
    assert "🟢 create <code>Deployment.apps shop/cart</code> — deploy/staging/cart.yaml:1" in out
    assert "🟡 update <code>Deployment.apps shop/web</code>" in out
    assert "-  replicas: 1\n+  replicas: 2" in out
    assert "🔴 prune <code>Deployment.apps shop/legacy-mailer</code>" in out
    # the violation points at the exact line of the offending field
    assert "<code>deploy/staging/cart.yaml:19</code> [pinned-images]" in out
    assert (
        "(found &#x27;registry.example.com/shop/cart:latest&#x27;)" in out
        or "(found 'registry.example.com/shop/cart:latest')" in out
    )
    # the repository's own policy (from the base commit) applies too, as a warning
    assert "[owner-label]" in out
    # the Secret changed, and the reviewer sees that without the value
    assert "-  api-key: (hidden, fingerprint" in out and "+  api-key: (hidden, fingerprint" in out
    assert "sk_live" not in out


def test_example_counts_per_environment(example: Path) -> None:
    done = run_plan(example, "main", "update-shop", "json")
    counts = {e["name"]: e["counts"] for e in json.loads(done.stdout)["environments"]}
    assert counts["staging"] == {"create": 1, "update": 3, "unchanged": 2, "prune": 1, "orphan": 0}
    assert counts["production"] == {
        "create": 1,
        "update": 2,
        "unchanged": 3,
        "prune": 1,
        "orphan": 0,
    }


def test_a_clean_change_exits_zero(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    head = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment(replicas=3)})
    done = run_plan(repo.path, base, head, "text")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 create, 1 update, 0 unchanged, 0 prune, 0 orphan" in done.stdout


def test_config_comes_from_the_base_commit_not_the_pr(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    # The PR turns prune off and points the environment elsewhere: neither may take effect.
    sneaky = CONFIG.replace("prune: true", "prune: false").replace("path: deploy", "path: other")
    head = repo.commit({".gitops-bot.yaml": sneaky, "other/cm.yaml": configmap()})
    plan = json.loads(run_plan(repo.path, base, head, "json").stdout)
    [env] = plan["environments"]
    assert env["counts"]["prune"] == 1 and env["counts"]["create"] == 0


def test_policies_come_from_the_base_commit_not_the_pr(repo: Repo) -> None:
    strict = (
        "id: no-replicas-over-two\ndescription: at most two replicas\nseverity: error\n"
        "match: {kinds: [Deployment]}\n"
        "schema: {properties: {spec: {properties: {replicas: {maximum: 2}}}}}\n"
    )
    config = CONFIG + "policies: [team-policies]\n"
    base = repo.commit(
        {
            ".gitops-bot.yaml": config,
            "team-policies/replicas.yaml": strict,
            "deploy/web.yaml": deployment(),
        }
    )
    relaxed = strict.replace("maximum: 2", "maximum: 100")
    head = repo.commit(
        {
            ".gitops-bot.yaml": config,
            "team-policies/replicas.yaml": relaxed,
            "deploy/web.yaml": deployment(replicas=5),
        }
    )
    done = run_plan(repo.path, base, head, "text")
    assert done.returncode == 1
    assert "deploy/web.yaml:7: error: [no-replicas-over-two]" in done.stdout


def test_missing_config_says_what_to_do(repo: Repo) -> None:
    base = repo.commit({"deploy/web.yaml": deployment()})
    done = run_plan(repo.path, base, base, "text")
    assert done.returncode == 1
    assert "no .gitops-bot.yaml at the base commit; add one" in done.stdout


def test_unknown_ref_is_an_operational_error(repo: Repo) -> None:
    repo.commit({".gitops-bot.yaml": CONFIG})
    done = run_plan(repo.path, "main", "no-such-branch", "text")
    assert done.returncode == 3
    assert "'no-such-branch' names no commit" in done.stderr
    # Both refs are resolved at once; the base's error is the one reported.
    done = run_plan(repo.path, "no-base", "no-head", "text")
    assert done.returncode == 3
    assert "'no-base' names no commit" in done.stderr
    assert "no-head" not in done.stderr


def test_a_repo_that_is_no_clone_is_said_in_one_line(tmp_path: Path, repo: Repo) -> None:
    repo.commit({".gitops-bot.yaml": CONFIG})
    cases = {
        tmp_path / "mistyped": "mistyped is not a folder; point --repo at a clone",
        repo.path / ".gitops-bot.yaml": ".gitops-bot.yaml is not a folder",
        tmp_path: "is not a git repository; point --repo at a clone",
    }
    for path, said in cases.items():
        done = run_plan(path, "main", "main", "text")
        assert (done.returncode, done.stdout) == (3, "")
        assert said in done.stderr and "Traceback" not in done.stderr


def test_missing_git_is_said_in_one_line(repo: Repo) -> None:
    repo.commit({".gitops-bot.yaml": CONFIG})
    done = run_plan(repo.path, "main", "main", "text", env={"PATH": str(repo.path / "no-bin")})
    assert done.returncode == 3
    assert "git is not installed or not on PATH; install git" in done.stderr


def test_unknown_environment_is_reported(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    done = run_plan(repo.path, base, base, "text", "--env", "staging")
    assert done.returncode == 1
    assert "no environment named 'staging'; the config has: prod" in done.stdout


def test_empty_render_with_prune_is_an_error_not_a_mass_delete(repo: Repo) -> None:
    base = repo.commit(
        {".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment(), "deploy/cm.yaml": configmap()}
    )
    head = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/README.md": "moved"})
    done = run_plan(repo.path, base, head, "text")
    assert done.returncode == 1
    assert "[prune.empty-render]" in done.stdout and "the bot refuses" in done.stdout


def test_broken_head_file_marks_the_preview_incomplete(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    head = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": "a: [\n"})
    done = run_plan(repo.path, base, head, "markdown")
    assert done.returncode == 1
    assert "deploy/web.yaml:2</code> [yaml.syntax]" in done.stdout
    assert "this list of changes may be incomplete" in done.stdout
