"""`.pre-commit-hooks.yaml`: the real pre-commit tool runs `gitops-bot validate` on commit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import unavailable
from helpers.cirunners import ROOT, base_env
from helpers.gitrepos import Repo
from helpers.manifests import deployment
from helpers.readmeblocks import readme_block

UNPINNED = deployment(image="registry.example.com/web:latest")


def this_commit() -> str:
    """The commit of this checkout: pre-commit clones a hook repository at a commit."""
    status = subprocess.run(
        ["git", "status", "--porcelain", ".pre-commit-hooks.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if status.returncode != 0:
        unavailable(f"this checkout is not a git repository: {status.stderr.strip()}")
    if status.stdout.strip():
        pytest.fail(".pre-commit-hooks.yaml has uncommitted changes; commit them to test them")
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def precommit_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """pre-commit with its own cache (the hook's environment is built once per module)."""
    tool = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if tool is None:
        unavailable("pre-commit is not installed (pip install -e '.[dev]')")
    home = tmp_path_factory.mktemp("precommit")
    return {**base_env(home), "PRE_COMMIT_HOME": str(home / "cache"), "GIT_CONFIG_NOSYSTEM": "1"}


def config(rev: str) -> str:
    """The README's .pre-commit-config.yaml with this checkout as the hook repository at
    `rev`; verbose, so a passing hook shows its output too."""
    snippet = yaml.safe_load(readme_block("# .pre-commit-config.yaml"))
    [repo] = snippet["repos"]
    repo.update(repo=str(ROOT), rev=rev)
    [hook] = repo["hooks"]
    hook["verbose"] = True
    return yaml.safe_dump(snippet)


def commit(
    repo: Repo, env: dict[str, str], tree: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Write `tree`, stage it and commit through git, so the installed hook runs."""
    for name, text in tree.items():
        (repo.path / name).parent.mkdir(parents=True, exist_ok=True)
        (repo.path / name).write_text(text)
    repo.git("add", "--all")
    return subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-m", "change"],
        cwd=repo.path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )


@pytest.fixture
def hooked(repo: Repo, precommit_env: dict[str, str]) -> Repo:
    repo.commit({".pre-commit-config.yaml": config(this_commit())})
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"],
        cwd=repo.path,
        env=precommit_env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return repo


def test_a_commit_with_a_violation_is_refused(hooked: Repo, precommit_env: dict[str, str]) -> None:
    done = commit(hooked, precommit_env, {"deploy/web.yaml": UNPINNED})
    output = done.stdout + done.stderr  # git runs the hook with its output on stderr
    assert done.returncode != 0, output
    assert "gitops-bot validate" in output and "Failed" in output
    assert "deploy/web.yaml:" in output and "[pinned-images]" in output
    assert hooked.git("rev-list", "--count", "HEAD") == "1"  # only the setup commit


def test_a_clean_commit_passes_and_other_yaml_is_left_alone(
    hooked: Repo, precommit_env: dict[str, str]
) -> None:
    tree = {
        "deploy/web.yaml": deployment(),
        "deploy/kustomization.yaml": "resources: [web.yaml]\n",
        "chart/values.yaml": "replicas: 2\n",
    }
    done = commit(hooked, precommit_env, tree)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "gitops-bot validate" in output and "Passed" in output
    # only the manifest was handed to the hook, not kustomize's or Helm's inputs
    assert "1 objects in 1 files checked, 0 findings" in output
