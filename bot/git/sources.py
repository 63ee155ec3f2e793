"""Read manifest files from a commit or from local paths, refusing anything that escapes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from bot.core.documents import DEFAULT_LIMITS, Limits
from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import SourceFile, is_manifest_path
from bot.git.repos import SPECIAL_MODES, GitRepo, TreeEntry, entry_findings

FileSet = tuple[tuple[SourceFile, ...], tuple[Finding, ...]]


async def read_commit_folder(
    repo: GitRepo,
    commit: str,
    folder: str,
    limits: Limits = DEFAULT_LIMITS,
    suffix_filter: bool = True,
) -> FileSet:
    """The manifest files below `folder` at `commit`; links and oversized files are findings."""
    # Every link or submodule is reported, whatever its name: it may stand for a folder.
    entries = [
        e
        for e in await repo.list_tree(commit, folder)
        if e.mode in SPECIAL_MODES or not suffix_filter or is_manifest_path(e.path)
    ]
    return await read_entries(repo, entries, limits)


async def read_entries(
    repo: GitRepo, entries: Sequence[TreeEntry], limits: Limits = DEFAULT_LIMITS
) -> FileSet:
    """The regular files among `entries`; links, submodules and oversized files are findings."""
    refusals = {e.path: f for e in entries if (f := entry_findings(e, limits.max_file_bytes))}
    readable = [e for e in entries if e.path not in refusals]
    blobs = await repo.read_blobs([e.oid for e in readable])
    files = tuple(SourceFile(e.path, blobs[e.oid]) for e in readable)
    return files, tuple(refusals.values())


async def read_commit_path(repo: GitRepo, commit: str, path: str) -> FileSet:
    """The manifest files below a folder at `commit`, or the one file `path` names."""
    found, refused = await read_commit_folder(repo, commit, path)
    if not found and not refused and is_manifest_path(path):
        content = await repo.read_file(commit, path)
        found = (SourceFile(path, content),) if content is not None else ()
    return found, refused


def read_local_paths(paths: Iterable[Path], limits: Limits = DEFAULT_LIMITS) -> FileSet:
    """Manifest files named or found below `paths`; symlinks are reported, never followed."""
    files: list[SourceFile] = []
    findings: list[Finding] = []
    for root in paths:
        for path in _walk(root, findings):
            data = _read(path, limits.max_file_bytes)
            if isinstance(data, int):
                findings.append(_too_large(path, data, limits))
            else:
                files.append(SourceFile(str(path), data))
    return tuple(files), tuple(findings)


def _read(path: Path, max_bytes: int) -> bytes | int:
    """The file's bytes, or its size when that is over `max_bytes`."""
    # os.open and os.read: half the time of Path.open for thousands of small files.
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        size = path.lstat().st_size  # an oversized file is reported even if unreadable
        if size > max_bytes:
            return size
        raise
    try:
        size = os.fstat(descriptor).st_size
        if size > max_bytes:
            return size
        data = os.read(descriptor, size + 1)
        if len(data) <= size:
            return data  # a short read of a regular file ends at its end
        return data + b"".join(iter(lambda: os.read(descriptor, 1 << 20), b""))  # it grew
    finally:
        os.close(descriptor)


def _too_large(path: Path, size: int, limits: Limits) -> Finding:
    return _error(
        "yaml.file-too-large",
        path,
        f"file is {size} bytes, over the limit of {limits.max_file_bytes}; split it",
    )


def _walk(root: Path, findings: list[Finding]) -> Iterable[Path]:
    try:
        mode = root.lstat().st_mode
    except OSError as exc:
        findings.append(_error("manifest.unreadable", root, f"cannot read: {exc.strerror}"))
        return
    if stat.S_ISLNK(mode):
        findings.append(_symlink(root))
    elif stat.S_ISDIR(mode):
        yield from _walk_folder(root, findings)
    elif stat.S_ISREG(mode):
        yield root


def _walk_folder(folder: Path, findings: list[Finding]) -> Iterable[Path]:
    """Regular manifest files below `folder` in name order; no link is followed."""
    # The entries carry their type from the directory listing: no stat call per file.
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        if entry.is_symlink():
            findings.append(_symlink(folder / entry.name))
        elif entry.is_dir(follow_symlinks=False):
            yield from _walk_folder(folder / entry.name, findings)
        elif entry.is_file(follow_symlinks=False) and is_manifest_path(entry.name):
            yield folder / entry.name


def _symlink(path: Path) -> Finding:
    return _error(
        "manifest.symlink",
        path,
        "symbolic links are not followed (they could point outside "
        "the checkout); replace the link with the file itself",
    )


def _error(code: str, path: Path, message: str) -> Finding:
    return Finding(Stage.MANIFEST, Severity.ERROR, code, message, str(path))
