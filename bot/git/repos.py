"""Git, hardened: read exact commits from a repository without a work tree or hooks."""

from __future__ import annotations

import os
import re
import shutil
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.core.findings import Finding, Severity, Stage

# Git must not read the operator's or the repository's config for hooks, helpers or
# prompts; pathspecs are literal so a configured path cannot glob outside its folder.
_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_LITERAL_PATHSPECS": "1",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_ASKPASS": "true",
    "LC_ALL": "C",
}
_GIT_OPTIONS = (
    "-c",
    "core.hooksPath=" + os.devnull,
    "-c",
    "core.fsmonitor=false",
    "-c",
    "submodule.recurse=false",
)
_SYMLINK, _SUBMODULE = "120000", "160000"
_COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_TREES_KEPT = 8
_BLOB_KEPT_MAX, _BLOBS_KEPT_BYTES = 16 * 1024, 8 * 1024 * 1024
SPECIAL_MODES = frozenset({_SYMLINK, _SUBMODULE})


class GitError(RuntimeError):
    """A git command failed; the message says which and why, with no credentials in it."""


class GitNotStarted(GitError):
    """git could not run at all: the folder is missing, or git is."""


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str
    oid: str
    size: int
    path: str


class GitRepo:
    """A repository on local disk (a mirror or a user's clone), read through plumbing only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Whole trees of recent commits by id: a commit never changes, and a plan of many
        # Argo CD or Flux units lists the same two trees for every render.
        self._trees: OrderedDict[str, list[TreeEntry]] = OrderedDict()
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._blob_bytes = 0

    async def git(self, *args: str, stdin: bytes | None = None) -> bytes:
        return await run_git(self.path, args, stdin)

    async def resolve(self, ref: str) -> str:
        """The full commit id for a ref or id; GitError when it names no commit."""
        if ref.startswith("-"):
            raise GitError(f"{ref!r} is not a git revision")
        try:
            out = await self.git("rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}")
        except GitNotStarted:
            raise
        except GitError as exc:
            if "not a git repository" in str(exc):
                raise GitError(
                    f"{self.path} is not a git repository; point --repo at a clone"
                ) from None
            raise GitError(f"{ref!r} names no commit in {self.path}") from None
        return out.decode().strip()

    async def list_tree(self, commit: str, folder: str) -> list[TreeEntry]:
        """Every file below `folder` ('.' for all) at `commit`, without reading contents."""
        whole = folder in ("", ".")
        if commit in self._trees and (whole or _is_plain_folder(folder)):
            # A folder of a tree already listed (a plan lists the whole tree to read its
            # config, then the environment's folder): the same entries, with no git run.
            self._trees.move_to_end(commit)
            if whole:
                return list(self._trees[commit])
            prefix = folder.rstrip("/") + "/"
            return [e for e in self._trees[commit] if e.path.startswith(prefix)]
        spec = [] if whole else ["--", folder.rstrip("/") + "/"]
        out = await self.git("ls-tree", "-r", "-z", "-l", "--full-tree", commit, *spec)
        entries = _entries(out)
        if whole and _COMMIT_ID.fullmatch(commit):
            self._trees[commit] = entries
            while len(self._trees) > _TREES_KEPT:
                self._trees.popitem(last=False)
        return list(entries)

    async def entry(self, commit: str, path: str) -> TreeEntry | None:
        """The entry at exactly `path` (a folder is one entry, not its files), if any."""
        out = await self.git("ls-tree", "-z", "-l", "--full-tree", commit, "--", path)
        return next((e for e in _entries(out) if e.path == path), None)

    async def folders(self, commit: str) -> list[str]:
        """Every folder at `commit`, without reading any file."""
        out = await self.git("ls-tree", "-r", "-d", "-z", "--name-only", "--full-tree", commit)
        return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]

    async def read_blobs(self, oids: Sequence[str]) -> dict[str, bytes]:
        """Contents of many blobs in one `git cat-file --batch` call (small ones kept)."""
        wanted = [oid for oid in dict.fromkeys(oids) if oid not in self._blobs]
        blobs = {oid: self._blobs[oid] for oid in oids if oid in self._blobs}
        if wanted:
            read = await self._cat_blobs(wanted)
            blobs |= read
            self._keep_blobs(read)
        return blobs

    def _keep_blobs(self, blobs: Mapping[str, bytes]) -> None:
        """Keep small blobs by id (content never changes under its id), up to a total size."""
        for oid, data in blobs.items():
            if len(data) <= _BLOB_KEPT_MAX:
                self._blobs[oid] = data
                self._blob_bytes += len(data)
        while self._blob_bytes > _BLOBS_KEPT_BYTES:
            self._blob_bytes -= len(self._blobs.popitem(last=False)[1])

    async def _cat_blobs(self, oids: Sequence[str]) -> dict[str, bytes]:
        if not oids:
            return {}
        out = await self.git("cat-file", "--batch", stdin="".join(f"{o}\n" for o in oids).encode())
        blobs: dict[str, bytes] = {}
        position = 0
        for oid in oids:
            header_end = out.index(b"\n", position)
            header = out[position:header_end].split()
            size = int(header[2])
            blobs[oid] = out[header_end + 1 : header_end + 1 + size]
            position = header_end + 1 + size + 1
        return blobs

    async def read_file(self, commit: str, path: str) -> bytes | None:
        """One regular file at a commit, or None when absent; a symlink is refused."""
        entries = [e for e in await self.list_tree(commit, ".") if e.path == path]
        if not entries:
            return None
        if entries[0].mode == _SYMLINK:
            raise GitError(f"{path} is a symbolic link at {commit[:12]}; it must be a regular file")
        return (await self.read_blobs([entries[0].oid]))[entries[0].oid]


def _is_plain_folder(folder: str) -> bool:
    """A path whose entries are those named below it as written: no `.`, `..` or empty
    component, which git's pathspec would normalise first."""
    return all(part not in ("", ".", "..") for part in folder.removesuffix("/").split("/"))


def _entries(out: bytes) -> list[TreeEntry]:
    """`git ls-tree -z -l` output as entries."""
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.decode("utf-8", "surrogateescape").partition("\t")
        mode, kind, oid, size = meta.split()
        entries.append(TreeEntry(mode, kind, oid, int(size) if size != "-" else 0, path))
    return entries


async def run_git(
    cwd: Path, args: Sequence[str], stdin: bytes | None = None, env: Mapping[str, str] | None = None
) -> bytes:
    import asyncio  # here: `validate` reads local files through this module, without asyncio

    try:
        process = await asyncio.create_subprocess_exec(
            "git",
            *_GIT_OPTIONS,
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**_base_env(), **_GIT_ENV, **(env or {})},
        )
    except OSError as exc:
        raise GitNotStarted(_unstarted(cwd, exc)) from None
    out, err = await process.communicate(stdin)
    if process.returncode != 0:
        raise GitError(f"git {args[0]} failed: {err.decode(errors='replace').strip()[:500]}")
    return out


def _unstarted(cwd: Path, exc: OSError) -> str:
    """Why git could not start: the folder (a mistyped --repo) or git itself."""
    if not cwd.is_dir():
        return f"{cwd} is not a folder; point --repo at a clone of the repository"
    if shutil.which("git", path=os.environ.get("PATH")) is None:
        return "git is not installed or not on PATH; install git and run again"
    return f"git could not start in {cwd}: {exc.strerror or exc}"


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}


def entry_findings(entry: TreeEntry, max_bytes: int) -> Finding | None:
    """Why a tree entry is not read: links and submodules are never followed."""
    if entry.mode == _SYMLINK:
        return _finding(
            "manifest.symlink",
            entry.path,
            "symbolic links are not followed (they could point outside the "
            "repository); replace the link with the file itself",
        )
    if entry.mode == _SUBMODULE or entry.kind != "blob":
        return _finding(
            "manifest.submodule",
            entry.path,
            "submodules are not read; vendor the manifests into this repository",
        )
    if entry.size > max_bytes:
        return _finding(
            "yaml.file-too-large",
            entry.path,
            f"file is {entry.size} bytes, over the limit of {max_bytes}; split it",
        )
    return None


def _finding(code: str, path: str, message: str) -> Finding:
    return Finding(Stage.MANIFEST, Severity.ERROR, code, message, path)
