"""Fixtures shared across the suite; scenario helpers live in their own modules."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from gitrepos import Repo
from postgres import (
    PostgresServer,
    PostgresUnavailable,
    create_database,
    find_bin_dir,
    start_postgres,
)


def unavailable(message: str) -> NoReturn:
    """A real part cannot run: skip on a developer's machine, fail in CI (never a silent skip)."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run these tests)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


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
