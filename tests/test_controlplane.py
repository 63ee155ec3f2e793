"""Smoke tests for the real etcd + kube-apiserver test control plane."""

# The session-wide `control_plane` and `kubectl_bin` fixtures live in conftest.py.

from __future__ import annotations

import json
import os
import subprocess
import uuid
from http import HTTPStatus
from pathlib import Path
from typing import NoReturn

import pytest
from helpers.controlplane import ControlPlane, binaries_obtainable, pinned_versions

NO_BINARIES = (
    "no kube-apiserver/etcd: Go is not installed to build them with "
    "testenv/build.sh (or set GITOPS_BOT_TESTENV_BIN to a bin dir)"
)


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail when $CI is set: CI must really run these tests."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} ($CI is set, so this is an error, not a skip)")
    pytest.skip(reason, allow_module_level=True)


# Checked at import so that a machine without Go gets one skip, not one per test.
if not binaries_obtainable():
    _unavailable(NO_BINARIES)


def _kubectl(kubectl_bin: str, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl_bin, f"--kubeconfig={kubeconfig}", "--request-timeout=20s", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_version_is_pinned_release(control_plane: ControlPlane) -> None:
    status, body = control_plane.get("/version")
    assert status == HTTPStatus.OK
    assert json.loads(body)["gitVersion"] == pinned_versions()[0]


def test_admin_can_create_namespace(control_plane: ControlPlane, kubectl_bin: str) -> None:
    kubeconfig = control_plane.admin_kubeconfig
    name = f"smoke-{uuid.uuid4().hex[:8]}"  # the control plane is shared by the session
    created = _kubectl(kubectl_bin, kubeconfig, "create", "namespace", name)
    assert created.returncode == 0, created.stderr
    got = _kubectl(kubectl_bin, kubeconfig, "get", "namespace", name, "-o=jsonpath={.status}")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"phase": "Active"}


def test_bot_cannot_list_namespaces(control_plane: ControlPlane, kubectl_bin: str) -> None:
    listed = _kubectl(kubectl_bin, control_plane.bot_kubeconfig, "get", "namespaces")
    assert listed.returncode != 0
    assert 'User "gitops-bot" cannot list resource "namespaces"' in listed.stderr


def test_bot_is_forbidden_over_https(control_plane: ControlPlane) -> None:
    status, body = control_plane.get("/api/v1/namespaces", control_plane.bot)
    assert status == HTTPStatus.FORBIDDEN
    assert json.loads(body)["reason"] == "Forbidden"
