"""Fixtures shared across the suite; scenario helpers live in their own modules."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepos import Repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")
