"""`gitops-bot init`: a starter config from a repository's layout, which `plan` accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from helpers.gitrepos import Repo
from helpers.manifests import configmap, deployment
from helpers.readmeblocks import readme_block

from bot.core.repoconfig import parse_config
from bot.core.starterconfig import discover

PLAIN = {
    "deploy/staging/web.yaml": deployment(),
    "deploy/prod/web.yaml": deployment(replicas=2),
    "README.md": "# infra\n",
    ".github/workflows/ci.yml": "on: push\njobs: {}\n",
}
KUSTOMIZE = {
    "apps/web/base/kustomization.yaml": "resources: [web.yaml]\n",
    "apps/web/base/web.yaml": deployment(),
    "apps/web/overlays/prod/kustomization.yaml": "resources: [../../base]\nnamespace: shop\n",
}
HELM = {
    "charts/shop/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 1.0.0\n",
    "charts/shop/values.yaml": "replicas: 1\n",
    "charts/shop/templates/settings.yaml": configmap("shop", replicas="{{ .Values.replicas }}"),
}


def gitops_bot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env
    )


def plan_json(
    repo: Repo, base: str, head: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    refs = ("--base", base, "--head", head)
    return gitops_bot("plan", "--repo", str(repo.path), *refs, "--format", "json", env=env)


def init_and_commit(repo: Repo, tree: dict[str, str]) -> str:
    """Commit `tree`, run init in the working tree, and commit the config it wrote."""
    repo.commit(tree)
    done = gitops_bot("init", "--repo", str(repo.path))
    assert done.returncode == 0, done.stderr
    config = (repo.path / ".gitops-bot.yaml").read_text()
    return repo.commit({**tree, ".gitops-bot.yaml": config}, "add the starter config")


def test_init_finds_plain_folders_and_plan_accepts_the_result(repo: Repo) -> None:
    base = init_and_commit(repo, PLAIN)
    config = yaml.safe_load((repo.path / ".gitops-bot.yaml").read_text())
    assert {name: env["path"] for name, env in config["environments"].items()} == {
        "prod": "deploy/prod",
        "staging": "deploy/staging",
    }
    head = repo.commit(
        {
            **PLAIN,
            ".gitops-bot.yaml": (repo.path / ".gitops-bot.yaml").read_text(),
            "deploy/prod/web.yaml": deployment(replicas=3),
        }
    )
    done = plan_json(repo, base, head)
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(done.stdout)
    assert {e["name"]: e["counts"]["update"] for e in plan["environments"]} == {
        "prod": 1,
        "staging": 0,
    }


def test_init_configures_kustomize_overlays_and_helm_charts_that_render(
    repo: Repo, render_tools: Path
) -> None:
    tree = {**PLAIN, **KUSTOMIZE, **HELM}
    base = init_and_commit(repo, tree)
    environments = yaml.safe_load((repo.path / ".gitops-bot.yaml").read_text())["environments"]
    sources = {
        env["path"]: env.get("source", {"type": "plain"})["type"] for env in environments.values()
    }
    assert sources == {
        "deploy/prod": "plain",
        "deploy/staging": "plain",
        "apps/web/overlays/prod": "kustomize",
        "charts/shop": "helm",
    }
    env = {**os.environ, "PATH": f"{render_tools}{os.pathsep}{os.environ['PATH']}"}
    done = plan_json(repo, base, base, env)
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(done.stdout)
    assert all(e["failure"] is None for e in plan["environments"]), plan


def test_the_starter_config_is_valid_and_commented(repo: Repo) -> None:
    repo.commit({**PLAIN, **KUSTOMIZE, **HELM})
    assert gitops_bot("init", "--repo", str(repo.path)).returncode == 0
    text = (repo.path / ".gitops-bot.yaml").read_text()
    config = parse_config(text)
    assert len(config.environments) == 4
    assert "# charts/shop: a Helm chart (Chart.yaml)" in text
    assert "cluster name from the bot's server settings" in text


def test_init_never_overwrites_a_config_unless_told(repo: Repo) -> None:
    repo.commit({**PLAIN, ".gitops-bot.yaml": "kept: true\n"})
    done = gitops_bot("init", "--repo", str(repo.path))
    assert done.returncode == 2
    assert "exists already" in done.stderr and "--force" in done.stderr
    assert (repo.path / ".gitops-bot.yaml").read_text() == "kept: true\n"
    assert gitops_bot("init", "--repo", str(repo.path), "--force").returncode == 0
    assert "environments:" in (repo.path / ".gitops-bot.yaml").read_text()


def test_init_in_a_repository_without_manifests_says_what_to_do(repo: Repo) -> None:
    repo.commit({"README.md": "# nothing here\n", "ci.yaml": "steps: []\n"})
    done = gitops_bot("init", "--repo", str(repo.path))
    assert done.returncode == 3
    assert "found no Kubernetes manifests" in done.stderr and "Traceback" not in done.stderr
    assert not (repo.path / ".gitops-bot.yaml").exists()


def test_names_stay_unique_and_valid() -> None:
    files = ["a/prod/x.yaml", "b/prod/x.yaml", "c/Prod Env/x.yaml", "x.yaml"]
    names = [env.name for env in discover(files, files)]
    assert names == ["root", "prod", "b-prod", "prod-env"]


def test_vendored_subcharts_and_kustomize_bases_are_not_environments() -> None:
    files = [
        "charts/shop/Chart.yaml",
        "charts/shop/charts/redis/Chart.yaml",
        "charts/shop/templates/d.yaml",
        "k/base/kustomization.yaml",
        "k/base/d.yaml",
        "k/components/x/kustomization.yaml",
        "k/overlays/dev/kustomization.yaml",
    ]
    found = discover(files, ["charts/shop/templates/d.yaml", "k/base/d.yaml"])
    assert [(e.path, e.source) for e in found] == [
        ("charts/shop", "helm"),
        ("k/overlays/dev", "kustomize"),
    ]


def test_the_readme_commands_write_and_commit_a_config_plan_accepts(repo: Repo) -> None:
    base = repo.commit(PLAIN)
    script = readme_block("gitops-bot init --repo .")
    bin_dir = Path(sys.executable).parent  # where the test run's gitops-bot command is
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env |= {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=repo.path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    configured = repo.git("rev-parse", "HEAD")
    assert configured != base
    assert plan_json(repo, configured, configured).returncode == 0
