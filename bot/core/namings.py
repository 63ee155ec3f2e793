"""Which source document a kustomize object came from: names as its kustomizations rewrote them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.manifests import ObjectKey, group_of

MAX_NAMINGS = 64  # ways one folder is reached; a pathological tree stops being enumerated


@dataclass(frozen=True)
class Renaming:
    """What one kustomization does to what it includes: namePrefix, nameSuffix, namespace."""

    prefix: str = ""
    suffix: str = ""
    namespace: str = ""
    children: tuple[str, ...] = ()  # the kustomization folders it includes


@dataclass(frozen=True)
class Naming:
    """How an object read in one folder is renamed on one way up to the environment's root."""

    prefix: str = ""
    suffix: str = ""
    namespace: str = ""  # "" when no kustomization on that way sets one


UNRENAMED = frozenset({Naming()})


def namings_by_folder(root: str, renamings: Mapping[str, Renaming]) -> dict[str, frozenset[Naming]]:
    """For each kustomization folder reachable from `root`, every way its objects are renamed."""
    found: dict[str, set[Naming]] = {}
    stack: list[tuple[str, Naming, tuple[str, ...]]] = [(root, Naming(), ())]
    while stack:
        folder, outer, above = stack.pop()
        renaming = renamings.get(folder, Renaming())
        naming = _within(outer, renaming)
        seen = found.setdefault(folder, set())
        if naming in seen or len(seen) >= MAX_NAMINGS:
            continue
        seen.add(naming)
        stack.extend(
            (child, naming, (*above, folder))
            for child in renaming.children
            if child not in (*above, folder)  # kustomize refuses cycles; never loop on one
        )
    return {folder: frozenset(namings) for folder, namings in found.items()}


def _within(outer: Naming, inner: Renaming) -> Naming:
    """kustomize applies the inner prefix first: outer prefix + inner prefix + name + ..."""
    return Naming(
        outer.prefix + inner.prefix,
        inner.suffix + outer.suffix,
        outer.namespace or inner.namespace,  # the outermost namespace transformer wins
    )


def declares(document: Mapping[str, Any], key: ObjectKey, namings: Iterable[Naming]) -> bool:
    """Whether the document, renamed one of the `namings` ways, is exactly the object `key`."""
    api_version, kind = document.get("apiVersion"), document.get("kind")
    metadata = document.get("metadata")
    if not isinstance(api_version, str) or kind != key.kind or not isinstance(metadata, dict):
        return False
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if group_of(api_version) != key.group or not isinstance(name, str):
        return False
    return any(
        naming.prefix + name + naming.suffix == key.name
        and _same_namespace(naming.namespace or namespace, key.namespace)
        for naming in namings
    )


def _same_namespace(declared: object, rendered: str) -> bool:
    """A namespace the source (or a kustomization) sets must be the rendered one."""
    if not isinstance(declared, str) or not declared or not rendered:
        return True  # none set: the environment's default; cluster-scoped: none at all
    return declared == rendered


def folder_of(path: str, folders: Iterable[str]) -> str | None:
    """The deepest of `folders` that holds `path` (a kustomization lists only files below it)."""
    holding = [f for f in folders if f in ("", ".") or path.startswith(f + "/")]
    return max(holding, key=lambda f: (f not in ("", "."), len(f)), default=None)
