"""Desired vs previous objects -> changes (create/update/unchanged/prune), secrets masked."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml

from bot.core.manifests import ObjectKey, Source
from bot.core.redaction import holds_secrets, mask_secret

try:
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]

BOT_PREFIX = "gitops-bot.io/"  # labels and annotations the bot itself writes on apply
_SERVER_METADATA = frozenset(
    {
        "managedFields",
        "resourceVersion",
        "uid",
        "generation",
        "creationTimestamp",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
_SERVER_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        "deployment.kubernetes.io/revision",
    }
)


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    PRUNE = "prune"  # gone from Git, will be deleted
    ORPHAN = "orphan"  # gone from Git, left in the cluster because prune is off


@dataclass(frozen=True)
class Change:
    key: ObjectKey
    action: Action
    diff: str  # unified diff of normalised, secret-masked YAML; empty when unchanged
    source: Source | None = None
    note: str = ""  # why the change looks as it does, e.g. "will be created with its CRD"


def normalise(body: Mapping[str, Any], secret_key: bytes) -> dict[str, Any]:
    """The object as a reviewer should compare it: no server bookkeeping, no secret values."""
    result = {k: v for k, v in body.items() if k != "status"}
    metadata = dict(result.get("metadata") or {})
    for name in _SERVER_METADATA:
        metadata.pop(name, None)
    for field in ("annotations", "labels"):
        kept = {
            k: v
            for k, v in (metadata.get(field) or {}).items()
            if not k.startswith(BOT_PREFIX) and k not in _SERVER_ANNOTATIONS
        }
        if kept:
            metadata[field] = kept
        else:
            metadata.pop(field, None)
    result["metadata"] = metadata
    return mask_secret(result, secret_key) if holds_secrets(result) else result


def compare(
    before: Mapping[ObjectKey, Mapping[str, Any]],
    after: Mapping[ObjectKey, Mapping[str, Any]],
    *,
    prune: bool,
    secret_key: bytes,
    sources: Mapping[ObjectKey, Source] | None = None,
) -> tuple[Change, ...]:
    """One change per object in either side, in a stable order."""
    sources = sources or {}
    return tuple(
        change_of(
            key,
            before.get(key),
            after.get(key),
            prune=prune,
            secret_key=secret_key,
            source=sources.get(key),
        )
        for key in sorted(before.keys() | after.keys())
    )


def change_of(
    key: ObjectKey,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    prune: bool,
    secret_key: bytes,
    source: Source | None = None,
    note: str = "",
) -> Change:
    """The change from `before` to `after` (None: the object is absent on that side)."""
    if before is not None and before is after:  # one object: the same on both sides
        return Change(key, Action.UNCHANGED, "", source, note)
    old = normalise(before, secret_key) if before is not None else None
    new = normalise(after, secret_key) if after is not None else None
    action = _action(old, new, prune)
    text = "" if action is Action.UNCHANGED else render_diff(key, old, new)
    return Change(key, action, text, source, note)


def _action(old: dict[str, Any] | None, new: dict[str, Any] | None, prune: bool) -> Action:
    if old is None:
        return Action.CREATE
    if new is None:
        return Action.PRUNE if prune else Action.ORPHAN
    return Action.UNCHANGED if old == new else Action.UPDATE


def render_diff(
    key: ObjectKey, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> str:
    lines = difflib.unified_diff(
        _yaml_lines(old),
        _yaml_lines(new),
        fromfile=f"{key} (before)" if old is not None else "/dev/null",
        tofile=f"{key} (after)" if new is not None else "/dev/null",
        lineterm="",
        n=3,
    )
    return "\n".join(lines)


def _yaml_lines(body: Mapping[str, Any] | None) -> list[str]:
    if body is None:
        return []
    text = yaml.dump(
        dict(body),
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
    )
    return text.splitlines()
