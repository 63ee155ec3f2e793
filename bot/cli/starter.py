"""`gitops-bot init`: look at a working tree and write a starter `.gitops-bot.yaml`."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from bot.core.manifests import is_manifest_path
from bot.core.repoconfig import CONFIG_PATH
from bot.core.starterconfig import Discovered, discover, starter_config

_SKIPPED_FOLDERS = frozenset({"node_modules", "vendor", "__pycache__"})
_MAX_SNIFF_BYTES = 64 * 1024  # enough to see the first object's apiVersion and kind
_OBJECT = re.compile(rb'^(apiVersion|kind):|"(apiVersion|kind)"\s*:', re.M)


class StarterError(Exception):
    """Why no starter config was written, and what to do instead."""

    def __init__(self, message: str, exists: bool = False) -> None:
        super().__init__(message)
        self.exists = exists  # a config is there already: a usage error, not a failure


def write_starter(root: Path, force: bool) -> tuple[Path, tuple[Discovered, ...]]:
    """Write ROOT/.gitops-bot.yaml from what the tree holds; refuse to overwrite one."""
    target = root / CONFIG_PATH
    if target.exists() and not force:
        raise StarterError(f"{target} exists already; keep it, or pass --force to replace it", True)
    files = list(_files(root))
    found = discover(files, [f for f in files if _holds_objects(root / f)])
    if not found:
        raise StarterError(
            f"found no Kubernetes manifests, kustomizations or Helm charts below {root}; "
            "write the environments by hand (README: Repository configuration)"
        )
    target.write_text(starter_config(found), encoding="utf-8")
    return target, found


def _files(root: Path) -> Iterator[str]:
    """Regular files below `root`, relative, without hidden or dependency folders; links
    are never followed."""
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(
            d for d in subfolders if not d.startswith(".") and d not in _SKIPPED_FOLDERS
        )
        for name in sorted(names):
            path = Path(folder) / name
            if not path.is_symlink() and path.is_file():
                yield path.relative_to(root).as_posix()


def _holds_objects(path: Path) -> bool:
    if not is_manifest_path(path.name):
        return False
    with path.open("rb") as file:
        head = file.read(_MAX_SNIFF_BYTES)
    return len({m[1] or m[2] for m in _OBJECT.finditer(head)}) == 2
