"""What the fake forges do to a real git repository when the bot writes to it: blobs, trees,
commits, refs, and merge commits, all made by git itself in the origin repository."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

_FORGE_IDENTITY = {
    "GIT_AUTHOR_NAME": "Forge",
    "GIT_AUTHOR_EMAIL": "forge@example.com",
    "GIT_COMMITTER_NAME": "Forge",
    "GIT_COMMITTER_EMAIL": "forge@example.com",
}


class GitRefused(ValueError):
    """What the forge would refuse: a ref that exists already, a conflict, a missing object."""


class ForgeGit:
    """The origin repository as the forge's storage."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] = {}) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=self.path,
            input=stdin,
            capture_output=True,
            env={**os.environ, **_FORGE_IDENTITY, **env},
        )
        if done.returncode != 0:
            raise GitRefused(done.stderr.decode().strip() or f"git {args[0]} failed")
        return done.stdout.decode().strip()

    def blob(self, content: bytes) -> str:
        return self.run("hash-object", "-w", "--stdin", stdin=content)

    def tree(self, base: str | None, entries: Iterable[tuple[str, str, str | None]]) -> str:
        """A tree: `base` with each (path, mode, blob) written, or removed when blob is None."""
        with tempfile.TemporaryDirectory() as scratch:
            index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self.run("read-tree", *([base] if base else ["--empty"]), env=index)
            for path, mode, sha in entries:
                if sha is None:
                    self.run("update-index", "--force-remove", "--", path, env=index)
                else:
                    self.run(
                        "update-index", "--add", "--cacheinfo", f"{mode},{sha},{path}", env=index
                    )
            return self.run("write-tree", env=index)

    def commit(self, tree: str, parents: Iterable[str], message: str) -> str:
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        return self.run("commit-tree", tree, *parent_args, "-m", message)

    def tree_of(self, commit: str) -> str:
        return self.run("rev-parse", f"{commit}^{{tree}}")

    def parents_of(self, commit: str) -> list[str]:
        return self.run("rev-list", "--parents", "-n", "1", commit).split()[1:]

    def message_of(self, commit: str) -> str:
        return self.run("log", "-1", "--format=%B", commit)

    def ref(self, name: str) -> str | None:
        try:
            return self.run("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
        except GitRefused:
            return None

    def set_ref(self, name: str, sha: str) -> None:
        self.run("update-ref", name, sha)

    def is_ancestor(self, older: str, newer: str) -> bool:
        try:
            self.run("merge-base", "--is-ancestor", older, newer)
        except GitRefused:
            return False
        return True

    def merge(self, base: str, head: str, message: str) -> str:
        """A merge commit of `head` into `base`, as the forge's merge button makes it."""
        tree = self.run("merge-tree", "--write-tree", base, head).split()[0]
        return self.commit(tree, [base, head], message)

    def changed_lines(self, commit: str) -> list[str]:
        """The added and removed lines of `commit` against its first parent."""
        diff = self.run("diff", "--unified=0", f"{commit}^", commit)
        return [
            line
            for line in diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
