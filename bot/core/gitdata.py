"""ConfigMaps and Secrets in a commit, as Flux's `substituteFrom` and `valuesFrom` read them."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from bot.core.manifests import Manifest

_KINDS = frozenset({"ConfigMap", "Secret"})
T = TypeVar("T")


@dataclass(frozen=True)
class DataObject:
    """One ConfigMap or Secret of the repository: its data as text, or why it is unreadable."""

    data: Mapping[str, str]
    unreadable: str = ""  # e.g. a SOPS-encrypted Secret
    file: str = ""  # where it is declared


# (kind, namespace, name): every declaration of it, in file order (one per cluster folder).
DataObjects = Mapping[tuple[str, str, str], tuple[DataObject, ...]]


def data_objects(manifests: Iterable[Manifest]) -> DataObjects:
    """Every ConfigMap and Secret in the commit's files, by kind, namespace and name.

    Objects are read as the whole-tree discovery reads them: one that names no namespace
    is under `default`, and `lookup` finds it from any namespace (the Kustomization that
    applies it gives it one).
    """
    found: dict[tuple[str, str, str], tuple[DataObject, ...]] = {}
    for m in manifests:
        if not m.key.group and m.key.kind in _KINDS:
            key = (m.key.kind, m.key.namespace, m.key.name)
            found[key] = (*found.get(key, ()), replace(_data_of(m.body), file=m.source.path))
    return found


def lookup(
    objects: DataObjects, kind: str, namespace: str, name: str, near: str = ""
) -> DataObject | None:
    """The object of that name; of several declarations, the one nearest the file `near`
    (the one that refers to it), as each cluster folder declares its own."""
    found = objects.get((kind, namespace, name)) or objects.get((kind, "default", name)) or ()
    return nearest(found, near, lambda item: item.file)


def nearest(items: Sequence[T], near: str, file_of: Callable[[T], str]) -> T | None:
    """The item whose file shares the most leading folders with `near`; the first on a tie."""
    here = near.split("/")[:-1]
    return max(items, key=lambda item: _shared(here, file_of(item).split("/")[:-1]), default=None)


def _shared(one: list[str], other: list[str]) -> int:
    count = 0
    for a, b in zip(one, other, strict=False):
        if a != b:
            break
        count += 1
    return count


def describe_missing(kind: str, namespace: str, name: str) -> str:
    where = "not in Git" if kind == "Secret" else "not in this repository"
    return f"{kind} {namespace}/{name} is {where}, so its values are unknown"


def _data_of(body: Mapping[str, Any]) -> DataObject:
    if "sops" in body:
        return DataObject({}, "it is encrypted with SOPS, so its values are not in Git")
    data = {str(k): str(v) for k, v in _mapping(body.get("data")).items()}
    if body.get("kind") == "Secret":
        try:
            data = {k: base64.b64decode(v, validate=True).decode() for k, v in data.items()}
        except (binascii.Error, UnicodeDecodeError):
            return DataObject({}, "its data is not base64-encoded text")
        data |= {str(k): str(v) for k, v in _mapping(body.get("stringData")).items()}
    return DataObject(data)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of values: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
