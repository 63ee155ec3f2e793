"""`gitops-bot drift` as a subprocess: exit 0 in sync, 1 drifted, 3 cannot compare, 2 usage."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.livecluster import CLUSTER, LiveEnv, configmap

ROOT = Path(__file__).resolve().parent.parent


def _drift(live_env: LiveEnv, settings: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    env |= {"GITOPS_BOT_SECRET_FINGERPRINT_KEY": "cli-tests", "GITOPS_BOT_CONFIG": str(settings)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "drift", "--repo", str(live_env.repo.path), *extra],
        capture_output=True,
        text=True,
        check=False,
        cwd=settings.parent,  # no default SQLite ledger here
        env=env,
        timeout=300,
    )


def _settings(tmp_path: Path, live_env: LiveEnv, server: str | None = None) -> Path:
    kubeconfig = live_env.plane.admin_kubeconfig
    if server is not None:
        config = json.loads(kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = server
        kubeconfig = tmp_path / "other.kubeconfig"
        kubeconfig.write_text(json.dumps(config))
    cluster = {"kubeconfig": str(kubeconfig), "inventory_namespace": live_env.namespace}
    path = tmp_path / "settings.yaml"
    path.write_text(json.dumps({"clusters": {CLUSTER: cluster}}))
    return path


@pytest.fixture
def settings(tmp_path: Path, live_env: LiveEnv) -> Path:
    return _settings(tmp_path, live_env)


async def test_in_sync_then_drifted_as_text_and_json(live_env: LiveEnv, settings: Path) -> None:
    ns = live_env.namespace
    commit = live_env.commit({"web.yaml": configmap("web", level="1")})
    assert (await live_env.apply(commit, pr=12)).succeeded

    clean = _drift(live_env, settings, "--env", "prod")
    live_env.kubectl.run("patch", "configmap", "web", "-n", ns, "-p", '{"data":{"level":"9"}}')
    text = _drift(live_env, settings, "--env", "prod", "--ref", commit)
    data = _drift(live_env, settings, "--env", "prod", "--format", "json")

    assert clean.returncode == 0, clean.stderr
    assert "in-sync; 0 of 1 compared objects differ" in clean.stdout
    assert text.returncode == 1, text.stderr
    assert f"update ConfigMap {ns}/web: last applied from {commit[:12]} (#12)" in text.stdout
    assert "field data.level" in text.stdout and "+  level: '1'" in text.stdout
    assert data.returncode == 1, data.stderr
    report = json.loads(data.stdout)
    assert (report["state"], report["commit"]) == ("drifted", commit)
    (item,) = report["objects"]
    assert (item["object"], item["fields"]) == (f"ConfigMap {ns}/web", ["data.level"])
    assert item["origin"] == {"commit": commit, "pull_request": "#12", "url": ""}


async def test_an_unreachable_cluster_exits_3_never_0(live_env: LiveEnv, tmp_path: Path) -> None:
    commit = live_env.commit({"web.yaml": configmap("web", level="1")})
    assert (await live_env.apply(commit)).succeeded
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = _settings(tmp_path, live_env, f"https://127.0.0.1:{port}")

    done = _drift(live_env, settings, "--env", "prod", "--format", "json")

    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert report["state"] == "unknown" and "unreachable" in report["failure"]


def test_an_unknown_environment_is_a_usage_error(live_env: LiveEnv, settings: Path) -> None:
    live_env.commit({"web.yaml": configmap("web", level="1")})

    done = _drift(live_env, settings, "--env", "nope")

    assert done.returncode == 2
    assert "no environment 'nope'; the config has: prod" in done.stderr
