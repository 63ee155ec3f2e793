"""A commit's tree index: the files below folders found by bisection, as the plain scan
finds them, and one index per commit id for every render of a plan."""

from __future__ import annotations

from helpers.gitrepos import Repo

from bot.git.repos import GitRepo, TreeEntry
from bot.renderers.checkouts import TreeIndex, read_index

# Names whose string order and tree order are easy to confuse ('-' and '.' sort before '/').
PATHS = (
    "a-b/x.yaml",
    "a.txt",
    "a/x.yaml",
    "a/b/y.yaml",
    "a/b-c/z.yaml",
    "a/bc/w.yaml",
    "ab/v.yaml",
    "base/kustomization.yaml",
    "services/one/kustomization.yaml",
    "services/two/kustomization.yaml",
    "zeta.yaml",
)
FOLDERS = (
    ("a",),
    ("a/b",),
    ("a", "a/b"),  # overlapping: every file once
    ("a/b", "ab", "a-b"),
    ("services/one", "base"),
    ("services",),
    ("nothing",),
    ("a/x.yaml",),  # a file, not a folder: nothing below it
    (".",),
    (".", "a"),
    (),
)


def _scan(index: TreeIndex, folders: tuple[str, ...]) -> list[TreeEntry]:
    """What `below` returned before it bisected: every entry, tested one by one."""
    roots = tuple("" if f == "." else f + "/" for f in set(folders))
    return [e for path, e in index.entries.items() if path.startswith(roots)]


def _entries(order: tuple[str, ...]) -> list[TreeEntry]:
    return [TreeEntry("100644", "blob", f"{i:040x}", 1, path) for i, path in enumerate(order)]


def test_below_finds_what_a_scan_finds_in_the_same_order() -> None:
    for order in (PATHS, tuple(reversed(PATHS))):  # whatever order the tree lists them in
        index = TreeIndex.of(_entries(order))
        for folders in FOLDERS:
            assert index.below(folders) == _scan(index, folders), folders


async def test_one_index_per_commit_id_and_none_kept_for_a_branch_name(repo: Repo) -> None:
    first = repo.commit({"base/a.yaml": "a: 1\n", "apps/one/b.yaml": "b: 1\n"})
    second = repo.commit({"base/a.yaml": "a: 2\n", "apps/one/b.yaml": "b: 1\n"})
    git = GitRepo(repo.path)

    index = await read_index(git, first)

    assert await read_index(git, first) is index
    assert await read_index(git, second) is not index
    assert (await read_index(git, second)).entries["base/a.yaml"].oid != (
        index.entries["base/a.yaml"].oid
    )
    by_name = await read_index(git, "HEAD")
    assert by_name is not await read_index(git, "HEAD")  # a ref moves: read again
    assert by_name.entries == (await read_index(git, second)).entries
    assert await read_index(GitRepo(repo.path), first) is not index  # one cache per repository
