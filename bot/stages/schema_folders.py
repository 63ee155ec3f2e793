"""Folders of JSON schemas in kubeconform's layout, on the server's disk or in a commit."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bot.core.customschemas import CustomSchema, Kind, catalog_path, catalog_schema
from bot.git.repos import SPECIAL_MODES, GitRepo, TreeEntry

MAX_SCHEMA_BYTES = 8 * 1024 * 1024  # the largest CRD schemas in public catalogs are ~2 MiB


class LocalSchemaFolder:
    """The organisation's schema folder (GITOPS_BOT_SCHEMA_FOLDER): read a file when asked."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._read: dict[Kind, CustomSchema | None] = {}

    def get(self, key: Kind, /) -> CustomSchema | None:
        if key not in self._read:
            self._read[key] = self._load(key)
        return self._read[key]

    def _load(self, key: Kind) -> CustomSchema | None:
        name = catalog_path(key)
        path = self.root / name if name else None
        if path is None or path.is_symlink() or not path.is_file():
            return None
        source = f"catalog {path}"
        if path.stat().st_size > MAX_SCHEMA_BYTES:
            return CustomSchema({}, source, problem=f"larger than {MAX_SCHEMA_BYTES} bytes")
        try:
            return catalog_schema(path.read_bytes(), source)
        except OSError as exc:
            return CustomSchema({}, source, problem=f"cannot be read: {exc.strerror}")

    def __reduce__(self) -> tuple[type[LocalSchemaFolder], tuple[Path]]:
        return (LocalSchemaFolder, (self.root,))  # to a worker process: the path, not a cache


async def read_commit_schemas(
    repo: GitRepo, commit: str, folders: Iterable[str], keys: Iterable[Kind]
) -> dict[Kind, CustomSchema]:
    """The schemas of `keys` in the repository's schema folders at `commit`; the first
    folder that has a kind's file gives it. One listing per folder, one read for all."""
    wanted = {name: key for key in keys if (name := catalog_path(key))}
    chosen: dict[Kind, TreeEntry] = {}
    for folder in folders:
        prefix = "" if folder == "." else f"{folder}/"
        for entry in await repo.list_tree(commit, folder):
            key = wanted.get(entry.path.removeprefix(prefix))
            if key and key not in chosen and entry.path.startswith(prefix):
                chosen[key] = entry
    usable = [e for e in chosen.values() if e.mode not in SPECIAL_MODES]
    blobs = await repo.read_blobs([e.oid for e in usable if e.size <= MAX_SCHEMA_BYTES])
    return {key: _commit_schema(entry, blobs) for key, entry in chosen.items()}


def _commit_schema(entry: TreeEntry, blobs: dict[str, bytes]) -> CustomSchema:
    source = f"catalog {entry.path}"
    if entry.mode in SPECIAL_MODES:
        return CustomSchema({}, source, problem="a link or submodule, not a regular file")
    if entry.oid not in blobs:
        return CustomSchema({}, source, problem=f"larger than {MAX_SCHEMA_BYTES} bytes")
    return catalog_schema(blobs[entry.oid], source)
