"""Merge results as the forges keep them for open pull requests, made by real git."""

from __future__ import annotations

import subprocess
from pathlib import Path

_IDENTITY = ["-c", "user.name=Forge", "-c", "user.email=forge@example.com"]


def make_merge_ref(origin: Path, ref: str, base: str, head: str) -> str | None:
    """Merge `head` into `base` in `origin` as a forge does for an open pull request (a
    merge commit, parents base then head, kept at `ref`); None, and no `ref`, on a conflict."""
    tree = _git(origin, "merge-tree", "--write-tree", "--no-messages", base, head)
    if tree.returncode != 0:  # 1: the merge conflicts
        _git(origin, "update-ref", "-d", ref)
        return None
    made = _git(
        origin,
        *_IDENTITY,
        "commit-tree",
        tree.stdout.split()[0],
        "-p",
        base,
        "-p",
        head,
        "-m",
        f"Merge {head[:12]} into {base[:12]}",
    )
    assert made.returncode == 0, made.stderr
    commit = made.stdout.strip()
    _git(origin, "update-ref", ref, commit)
    return commit


def _git(origin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=origin, capture_output=True, text=True, check=False)
