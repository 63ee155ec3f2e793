"""Fixtures shared across the suite; scenario helpers live in their own modules."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from helpers.controlplane import (
    ControlPlane,
    binaries_obtainable,
    find_binaries,
    kubectl,
    start_control_plane,
)
from helpers.gitrepos import Repo
from helpers.postgres import (
    PostgresServer,
    PostgresUnavailable,
    create_database,
    find_bin_dir,
    start_postgres,
)

# The webhook bot fixtures (make_bot, openapi; make_gitlab_bot) live with their helpers.
pytest_plugins = [
    "helpers.githubbot",
    "helpers.gitlabbot",
    "helpers.livecluster",
    "helpers.schemafiles",
]


def unavailable(message: str) -> NoReturn:
    """A real part cannot run: skip on a developer's machine, fail in CI (never a silent skip)."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run these tests)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


NO_CONTROL_PLANE = (
    "no kube-apiserver/etcd: Go is not installed to build them with testenv/build.sh "
    "(or set GITOPS_BOT_TESTENV_BIN to a bin dir holding them)"
)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One real etcd + kube-apiserver for the whole session; tests each use a namespace."""
    bin_dir = find_binaries() if binaries_obtainable() else None
    if bin_dir is None:
        unavailable(NO_CONTROL_PLANE)
    with start_control_plane(bin_dir, tmp_path_factory.mktemp("controlplane")) as plane:
        yield plane


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    path = kubectl()
    if path is None:
        unavailable(
            "no kubectl (it sets up and checks the control plane tests): install Go so that "
            "testenv/build.sh kubectl can build it, or set GITOPS_BOT_KUBECTL_BIN"
        )
    return path


@pytest.fixture
def kube_namespace(control_plane: ControlPlane, kubectl_bin: str) -> str:
    """A fresh namespace of the session's control plane, for this test alone."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    done = subprocess.run(
        [kubectl_bin, f"--kubeconfig={control_plane.admin_kubeconfig}", "create", "ns", name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return name


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        bin_dir = find_bin_dir()
    except PostgresUnavailable as exc:
        unavailable(f"PostgreSQL is not available: {exc}")
    # pytest's own temp dirs are private to root; the server runs as the postgres user.
    workdir = Path(tempfile.mkdtemp(prefix="gitops-bot-pg-"))
    workdir.chmod(0o755)
    try:
        with start_postgres(bin_dir, workdir / "server") as server:
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return create_database(postgres_server, f"t_{uuid.uuid4().hex[:12]}")


TOOLS_BIN_VAR = "GITOPS_BOT_TOOLS_BIN"  # set by `make test` from testenv/build.sh tools
YAMLJSON_BIN_VAR = "GITOPS_BOT_YAMLJSON_BIN"  # set by `make test` from testenv/build.sh yamljson


@pytest.fixture(scope="session")
def render_tools() -> Path:
    """The bin dir with real kustomize and helm: $GITOPS_BOT_TOOLS_BIN, or built from Go modules."""
    bin_dir = bin_dir_for(TOOLS_BIN_VAR, "tools", "kustomize and helm")
    missing = [t for t in ("kustomize", "helm") if not os.access(bin_dir / t, os.X_OK)]
    if missing:
        unavailable(f"no executable {' or '.join(missing)} in {bin_dir}")
    return bin_dir


@pytest.fixture(scope="session")
def yamljson() -> Path:
    """sigs.k8s.io/yaml as a command (testenv/yamljson): what Kubernetes makes of YAML."""
    bin_dir = bin_dir_for(YAMLJSON_BIN_VAR, "yamljson", "the yamljson helper (sigs.k8s.io/yaml)")
    command = bin_dir / "yamljson"
    if not os.access(command, os.X_OK):
        unavailable(f"no executable yamljson in {bin_dir}")
    return command


def bin_dir_for(variable: str, mode: str, what: str) -> Path:
    """$variable if set, else the bin dir `testenv/build.sh <mode>` builds (or has cached)."""
    if os.environ.get(variable):
        return Path(os.environ[variable])
    script = Path(__file__).resolve().parent.parent / "testenv/build.sh"
    done = subprocess.run(["bash", str(script), mode], capture_output=True, text=True, check=False)
    if done.returncode == 3:  # no Go toolchain and nothing cached
        unavailable(f"{what} is not available: set {variable} or install Go")
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(f"{script} {mode} failed:\n{done.stderr[-3000:]}", pytrace=False)
    return Path(done.stdout.strip().splitlines()[-1])


class NetworkTrap:
    """A loopback port that counts every connection made to it (the kernel queues them)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._server.setblocking(False)
        self.port: int = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        count = 0
        while True:
            try:
                connection, _ = self._server.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1


@pytest.fixture
def network_trap() -> Iterator[NetworkTrap]:
    trap = NetworkTrap()
    yield trap
    trap._server.close()
