"""Hostile kubeconfigs: a user entry that would run a program is refused when the settings
load, with the cluster, context, user and key named, and the program never runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.gitrepos import Repo
from helpers.hostile import run_bot

CONFIG = """\
version: 1
environments:
  prod:
    path: deploy
    cluster: target
    namespace: shop
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: '1'\n"


def _marker_program(tmp_path: Path) -> tuple[Path, Path]:
    """A program that leaves a marker file when anything runs it."""
    marker = tmp_path / "program-ran"
    program = tmp_path / "login.sh"
    program.write_text(f"#!/bin/sh\ntouch {marker}\necho '{{}}'\n")
    program.chmod(0o755)
    return program, marker


def _gcp(program: Path) -> dict[str, Any]:
    config = {"cmd-path": str(program), "cmd-args": "config config-helper --format=json"}
    return {"auth-provider": {"name": "gcp", "config": config}}


def _kubeconfig(tmp_path: Path, *users: dict[str, Any]) -> Path:
    """One context `ctx` whose user name `u` is held by each of `users` (duplicates too)."""
    path = tmp_path / "hostile.kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": user} for user in users],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path.write_text(json.dumps(config))
    return path


def _bot(tmp_path: Path, kubeconfig: Path, *args: str, **cluster: Any) -> Any:
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        json.dumps({"clusters": {"target": {"kubeconfig": str(kubeconfig), **cluster}}})
    )
    return run_bot(*args, cwd=tmp_path, config=str(settings), secret_fingerprint_key="k")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    origin = Repo(tmp_path / "repo")
    origin.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": CONFIGMAP})
    return origin.path


def _plan(tmp_path: Path, repo: Path, kubeconfig: Path, **cluster: Any) -> Any:
    args = ("plan", "--repo", str(repo), "--base", "HEAD", "--head", "HEAD", "--format", "json")
    return _bot(tmp_path, kubeconfig, *args, **cluster)


def _drift(tmp_path: Path, repo: Path, kubeconfig: Path) -> Any:
    return _bot(tmp_path, kubeconfig, "drift", "--env", "prod", "--repo", str(repo))


def _hostile_users(program: Path) -> dict[str, tuple[tuple[dict[str, Any], ...], str]]:
    """Each case: the user entries named `u`, and what the message must name."""
    oidc = {"name": "oidc", "config": {"idp-issuer-url": "https://127.0.0.1:1"}}
    return {
        "gcp auth provider": ((_gcp(program),), "'auth-provider' is an auth provider ('gcp'"),
        "exec plugin": (
            ({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(program)}},),
            "'exec' is an exec credential plugin",
        ),
        "oidc auth provider": (({"auth-provider": oidc},), "auth provider ('oidc'"),
        "second entry of a duplicated user": (
            ({"token": "t"}, _gcp(program)),
            "'auth-provider' is an auth provider ('gcp'",
        ),
        "basic auth": (({"username": "a", "password": "b"},), "'password' is not a way"),
    }


@pytest.mark.parametrize("case", list(_hostile_users(Path("/x"))))
def test_a_kubeconfig_that_would_run_a_program_is_refused_by_plan_and_drift(
    tmp_path: Path, repo: Path, case: str
) -> None:
    program, marker = _marker_program(tmp_path)
    users, named = _hostile_users(program)[case]
    kubeconfig = _kubeconfig(tmp_path, *users)

    for done in (_plan(tmp_path, repo, kubeconfig), _drift(tmp_path, repo, kubeconfig)):
        assert done.returncode == 3, done.stderr
        assert done.stdout == ""
        (line,) = done.stderr.splitlines()  # one clear line, no traceback
        assert f"cluster 'target': the kubeconfig {kubeconfig}, context 'ctx'" in line
        assert "user 'u'" in line and named in line
        assert "b'" not in line and "'t'" not in line  # no credential value is quoted
    assert not marker.exists()


def test_a_refused_key_is_named_for_the_context_the_settings_choose(
    tmp_path: Path, repo: Path
) -> None:
    program, marker = _marker_program(tmp_path)
    kubeconfig = _kubeconfig(tmp_path, _gcp(program))
    config = json.loads(kubeconfig.read_text())
    config["users"].append({"name": "safe", "user": {"token": "t"}})
    config["contexts"].append({"name": "other", "context": {"cluster": "c", "user": "safe"}})
    kubeconfig.write_text(json.dumps(config))

    chosen = _plan(tmp_path, repo, kubeconfig, context="other")  # the current one is hostile
    current = _plan(tmp_path, repo, kubeconfig)

    assert "kubeconfig" not in chosen.stderr
    assert json.loads(chosen.stdout)["environments"][0]["live"]["failure"]  # unreachable
    assert current.returncode == 3 and "context 'ctx'" in current.stderr
    assert not marker.exists()


def test_with_the_opt_in_the_program_is_trusted_and_runs(tmp_path: Path, repo: Path) -> None:
    program, marker = _marker_program(tmp_path)
    kubeconfig = _kubeconfig(tmp_path, _gcp(program))

    done = _plan(tmp_path, repo, kubeconfig, allow_exec=True)

    assert "allow_exec" not in done.stderr
    assert json.loads(done.stdout)["environments"][0]["live"]["failure"]  # no token, no server
    assert marker.exists()  # the marker this module watches for does appear when allowed
