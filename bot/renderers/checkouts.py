"""Write chosen folders of one commit into a scratch directory: regular files only, bounded."""

from __future__ import annotations

import asyncio
import bisect
import re
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.findings import Finding
from bot.git.repos import SPECIAL_MODES, GitRepo, TreeEntry, entry_findings

_BATCH_BYTES = 32 * 1024 * 1024  # blobs read from git per round trip
_FULL_COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_INDEXES_KEPT = 8  # commits per repository: a plan reads two, a server a few more


class CheckoutError(ValueError):
    """The commit's files cannot be written out for rendering; the message says why."""


@dataclass(frozen=True)
class TreeIndex:
    """Every entry of a commit's tree by path, and the folders those paths imply."""

    entries: Mapping[str, TreeEntry]
    folders: frozenset[str]
    # The paths in string order, so the files below a folder are one contiguous run of it.
    ordered: tuple[str, ...] = field(default=(), compare=False, repr=False)
    positions: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, entries: Iterable[TreeEntry]) -> TreeIndex:
        by_path = {e.path: e for e in entries}
        folders = {"."}
        for path in by_path:
            parts = path.split("/")[:-1]
            folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        positions = {path: position for position, path in enumerate(by_path)}
        return cls(by_path, frozenset(folders), tuple(sorted(by_path)), positions)

    def is_file(self, path: str) -> bool:
        entry = self.entries.get(path)
        return entry is not None and entry.mode not in SPECIAL_MODES

    def is_link(self, path: str) -> bool:
        entry = self.entries.get(path)
        return entry is not None and entry.mode in SPECIAL_MODES

    def below(self, folders: Iterable[str]) -> list[TreeEntry]:
        """Entries inside any of `folders` ('.' is the whole tree), in the tree's order."""
        roots = {"" if f == "." else f + "/" for f in folders}
        if "" in roots or not self.ordered:
            return [e for path, e in self.entries.items() if path.startswith(tuple(roots))]
        found = {path for root in roots for path in self._run(root)}
        return [self.entries[path] for path in sorted(found, key=self.positions.__getitem__)]

    def _run(self, prefix: str) -> Iterator[str]:
        """The paths that start with `prefix`: found by bisection, not by a scan."""
        at = bisect.bisect_left(self.ordered, prefix)
        while at < len(self.ordered) and self.ordered[at].startswith(prefix):
            yield self.ordered[at]
            at += 1


# Indexes of recent commits, by repository: a commit's tree never changes, and a plan of
# many Argo CD or Flux units indexes the same two trees for every unit it renders.
_INDEXES: weakref.WeakKeyDictionary[GitRepo, OrderedDict[str, TreeIndex]] = (
    weakref.WeakKeyDictionary()
)


async def read_index(repo: GitRepo, commit: str) -> TreeIndex:
    kept = _INDEXES.setdefault(repo, OrderedDict())
    if commit in kept:
        kept.move_to_end(commit)
        return kept[commit]
    index = TreeIndex.of(await repo.list_tree(commit, "."))
    if _FULL_COMMIT_ID.fullmatch(commit):  # a branch name may move: only ids are kept
        kept[commit] = index
        while len(kept) > _INDEXES_KEPT:
            kept.popitem(last=False)
    return index


def blob_reader(repo: GitRepo, index: TreeIndex) -> Callable[[str], Awaitable[bytes]]:
    """Reads one file of the indexed commit by path (one that the index lists)."""

    async def read(path: str) -> bytes:
        oid = index.entries[path].oid
        return (await repo.read_blobs([oid]))[oid]

    return read


async def write_entries(
    repo: GitRepo, entries: Sequence[TreeEntry], root: Path, max_bytes: int
) -> tuple[Finding, ...]:
    """Write regular files below `root`; links and submodules are reported, never written.

    Nothing but regular files is ever created, so no path can lead out of `root`.
    """
    refused = {e.path: f for e in entries if e.mode in SPECIAL_MODES and (f := _refusal(e))}
    files = sorted((e for e in entries if e.path not in refused), key=lambda e: e.path)
    total = sum(e.size for e in files)
    if total > max_bytes:
        raise CheckoutError(
            f"the files to render add up to {total} bytes, over the limit of {max_bytes}; "
            "keep large files out of the folders an environment renders"
        )
    for batch in _batches(files):
        blobs = await repo.read_blobs([e.oid for e in batch])
        await asyncio.to_thread(_write, root, [(e.path, blobs[e.oid]) for e in batch])
    return tuple(refused.values())


def _refusal(entry: TreeEntry) -> Finding | None:
    return entry_findings(entry, max_bytes=2**63)


def _batches(entries: list[TreeEntry]) -> Iterable[list[TreeEntry]]:
    batch: list[TreeEntry] = []
    size = 0
    for entry in entries:
        if batch and size + entry.size > _BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry.size
    if batch:
        yield batch


def _write(root: Path, files: list[tuple[str, bytes]]) -> None:
    for path, data in files:
        parts = path.split("/")
        if path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
            raise CheckoutError(f"refusing to write the unsafe path {path!r}")
        target = root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
