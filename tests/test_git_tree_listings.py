"""A folder listed from a commit's tree already read is the folder git itself lists.

`GitRepo.list_tree` keeps whole trees; a folder of a kept tree is filtered from it
instead of running `git ls-tree` again. Each case lists the folder both ways, from two
repository objects over the same real repository, and counts the git runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.gitrepos import Repo, Symlink

from bot.git.repos import GitRepo

TREE = {
    "deploy/a.yaml": "a: 1\n",
    "deploy/sub/b.yaml": "b: 2\n",
    "deploy/sub/deeper/c.json": "{}\n",
    "deploy/link.yaml": Symlink("a.yaml"),
    "deploy-other/d.yaml": "d: 4\n",
    "deployments/e.yaml": "e: 5\n",
    "with space/f.yaml": "f: 6\n",
    "ünïcode/g.yaml": "g: 7\n",
    "star*/h.yaml": "h: 8\n",
    "top.yaml": "t: 0\n",
}
FOLDERS = [
    "deploy",
    "deploy/",
    "deploy/sub",
    "deploy/sub/deeper/",
    "deploy-other",
    "with space",
    "ünïcode",
    "star*",
    "top.yaml",  # a file, not a folder
    "missing",
    "./deploy",  # git normalises these: they are always asked of git
    "deploy/./sub",
    "deploy//sub",
    "deploy/sub/..",
]


class CountingRepo(GitRepo):
    """The real repository access, with the git commands it ran."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.runs: list[str] = []

    async def git(self, *args: str, stdin: bytes | None = None) -> bytes:
        self.runs.append(args[0])
        return await super().git(*args, stdin=stdin)


@pytest.mark.parametrize("folder", FOLDERS)
async def test_a_folder_of_a_kept_tree_is_what_git_lists(repo: Repo, folder: str) -> None:
    commit = repo.commit(dict(TREE))
    reference, kept = CountingRepo(repo.path), CountingRepo(repo.path)
    await kept.list_tree(commit, ".")

    listed = await kept.list_tree(commit, folder)

    assert listed == await reference.list_tree(commit, folder)
    assert reference.runs == ["ls-tree"]
    plain = folder in FOLDERS[:10]
    assert kept.runs == (["ls-tree"] if plain else ["ls-tree", "ls-tree"])


async def test_a_folder_of_an_unlisted_commit_asks_git(repo: Repo) -> None:
    first = repo.commit(dict(TREE))
    second = repo.commit(dict(TREE) | {"deploy/a.yaml": "a: 2\n"})
    git = CountingRepo(repo.path)
    await git.list_tree(first, ".")

    entries = await git.list_tree(second, "deploy")

    assert git.runs == ["ls-tree", "ls-tree"]
    assert [e.path for e in entries] == [
        "deploy/a.yaml",
        "deploy/link.yaml",
        "deploy/sub/b.yaml",
        "deploy/sub/deeper/c.json",
    ]
