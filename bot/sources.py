"""Read manifest files from a commit or from local paths, refusing anything that escapes."""

from __future__ import annotations

import stat
from collections.abc import Iterable
from pathlib import Path

from bot.core.documents import DEFAULT_LIMITS, Limits
from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import SourceFile, is_manifest_path
from bot.gitrepo import SPECIAL_MODES, GitRepo, entry_findings

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
    refusals = {e.path: f for e in entries if (f := entry_findings(e, limits.max_file_bytes))}
    readable = [e for e in entries if e.path not in refusals]
    blobs = await repo.read_blobs([e.oid for e in readable])
    files = tuple(SourceFile(e.path, blobs[e.oid]) for e in readable)
    return files, tuple(refusals.values())


def read_local_paths(paths: Iterable[Path], limits: Limits = DEFAULT_LIMITS) -> FileSet:
    """Manifest files named or found below `paths`; symlinks are reported, never followed."""
    files: list[SourceFile] = []
    findings: list[Finding] = []
    for root in paths:
        for path in _walk(root, findings):
            size = path.lstat().st_size
            if size > limits.max_file_bytes:
                findings.append(
                    _error(
                        "yaml.file-too-large",
                        path,
                        f"file is {size} bytes, over the limit of "
                        f"{limits.max_file_bytes}; split it",
                    )
                )
                continue
            files.append(SourceFile(str(path), path.read_bytes()))
    return tuple(files), tuple(findings)


def _walk(root: Path, findings: list[Finding]) -> Iterable[Path]:
    try:
        mode = root.lstat().st_mode
    except OSError as exc:
        findings.append(_error("manifest.unreadable", root, f"cannot read: {exc.strerror}"))
        return
    if stat.S_ISLNK(mode):
        findings.append(
            _error(
                "manifest.symlink",
                root,
                "symbolic links are not followed (they could point outside "
                "the checkout); replace the link with the file itself",
            )
        )
    elif stat.S_ISDIR(mode):
        for child in sorted(root.iterdir()):
            child_mode = child.lstat().st_mode
            if stat.S_ISDIR(child_mode) or stat.S_ISLNK(child_mode) or is_manifest_path(child.name):
                yield from _walk(child, findings)
    elif stat.S_ISREG(mode):
        yield root


def _error(code: str, path: Path, message: str) -> Finding:
    return Finding(Stage.MANIFEST, Severity.ERROR, code, message, str(path))
