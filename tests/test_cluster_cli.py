"""`gitops-bot plan` and `apply` against a cluster named in the settings, run as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from helpers.livecluster import CLUSTER, ENV, LiveEnv, configmap


def _bot(
    *args: str, config: Path | None = None, clusters: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    env["GITOPS_BOT_SECRET_FINGERPRINT_KEY"] = "cli-tests"
    if config is not None:
        env["GITOPS_BOT_CONFIG"] = str(config)
    if clusters is not None:
        env["GITOPS_BOT_CLUSTERS"] = clusters
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=tempfile.mkdtemp(prefix="gitops-bot-cli-"),  # no stray database file in reach
        env=env,
        timeout=300,
    )


def _plan(repo: str, base: str, head: str, *extra: str, config: Path) -> CompletedProcess[str]:
    return _bot("plan", "--repo", repo, "--base", base, "--head", head, *extra, config=config)


def _apply(repo: str, ref: str, *extra: str, **settings: Any) -> CompletedProcess[str]:
    return _bot("apply", "--env", ENV, "--repo", repo, "--ref", ref, *extra, **settings)


@pytest.fixture
def settings_file(live_env: LiveEnv, tmp_path: Path) -> Path:
    path = tmp_path / "settings.yaml"
    cluster = {
        "kubeconfig": str(live_env.plane.admin_kubeconfig),
        "context": "admin",
        "inventory_namespace": live_env.namespace,
    }
    path.write_text(json.dumps({"clusters": {CLUSTER: cluster}}))
    return path


def test_apply_then_plan_then_apply_through_the_cli(live_env: LiveEnv, settings_file: Path) -> None:
    ns, repo = live_env.namespace, str(live_env.repo.path)
    base = live_env.commit({"a.yaml": configmap("a", x="1"), "b.yaml": configmap("b", y="1")})

    first = _apply(repo, base, config=settings_file)

    assert first.returncode == 0, first.stderr
    assert f"applied create ConfigMap {ns}/a" in first.stdout
    assert live_env.configmap("a") is not None
    head = live_env.commit({"a.yaml": configmap("a", x="2")})

    plan = _plan(repo, base, head, "--format", "json", config=settings_file)

    assert plan.returncode == 0, plan.stderr
    live = json.loads(plan.stdout)["environments"][0]["live"]
    assert live["failure"] is None
    assert {c["object"]: c["action"] for c in live["changes"]} == {
        f"ConfigMap {ns}/a": "update",
        f"ConfigMap {ns}/b": "prune",
    }
    markdown = _plan(repo, base, head, config=settings_file)
    assert "**Live cluster:** against what it holds now, merging would" in markdown.stdout
    offline = _plan(repo, base, head, "--no-cluster", "--format", "json", config=settings_file)
    assert json.loads(offline.stdout)["environments"][0]["live"] is None

    second = _apply(repo, head, "--format", "json", config=settings_file)

    assert second.returncode == 0, second.stderr
    outcomes = {o["object"]: o["outcome"] for o in json.loads(second.stdout)["objects"]}
    assert outcomes == {f"ConfigMap {ns}/a": "applied", f"ConfigMap {ns}/b": "pruned"}
    assert live_env.configmap("b") is None


def test_clusters_can_come_from_a_json_variable(live_env: LiveEnv) -> None:
    head = live_env.commit({"a.yaml": configmap("a", x="1")})
    clusters = json.dumps(
        {
            CLUSTER: {
                "kubeconfig": str(live_env.plane.admin_kubeconfig),
                "inventory_namespace": live_env.namespace,
            }
        }
    )

    done = _apply(str(live_env.repo.path), head, clusters=clusters)

    assert done.returncode == 0, done.stderr
    assert live_env.configmap("a") is not None


def test_apply_exit_codes_say_what_went_wrong(live_env: LiveEnv, settings_file: Path) -> None:
    repo = str(live_env.repo.path)
    head = live_env.commit({"a.yaml": configmap("a", x="1")})

    unknown = _bot("apply", "--env", "nope", "--repo", repo, "--ref", head, config=settings_file)
    unconfigured = _apply(repo, head)
    broken = live_env.commit({"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"})
    refused = _apply(repo, broken, config=settings_file)

    assert unknown.returncode == 2 and "no environment 'nope'" in unknown.stderr
    assert unconfigured.returncode == 3
    assert "which the server settings do not define" in unconfigured.stderr
    assert refused.returncode == 1 and "error findings" in refused.stdout
    assert live_env.configmap("a") is None


def test_a_failed_object_makes_the_apply_exit_3(live_env: LiveEnv, settings_file: Path) -> None:
    ns, repo = live_env.namespace, str(live_env.repo.path)
    base = live_env.commit({"a.yaml": configmap("a", x="1")})
    assert _apply(repo, base, config=settings_file).returncode == 0
    live_env.kubectl.run("patch", "configmap", "a", "-n", ns, "-p", '{"data":{"x":"9"}}')
    head = live_env.commit({"a.yaml": configmap("a", x="2")})

    done = _apply(repo, head, config=settings_file)

    assert done.returncode == 3
    assert f"failed update ConfigMap {ns}/a: conflict with another field manager" in done.stdout
