"""`argocd_clusters`: the clusters an ApplicationSet's clusters generator sees, from settings."""

from __future__ import annotations

import json
from typing import Any

from bot.core.identities import ArgoCluster

_FIELDS = frozenset({"name", "server", "labels", "annotations"})


class ArgoClustersError(ValueError):
    """The setting cannot be read; the message says which entry and what to fix."""


def parse_argocd_clusters(value: Any) -> tuple[ArgoCluster, ...]:
    """A list of {name, server, labels, annotations}; a JSON text when it comes from a variable."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError as exc:
            raise ArgoClustersError(f"not a JSON list of clusters: {exc}") from None
    if not isinstance(value, list):
        raise ArgoClustersError("give a list of {name, server, labels, annotations}")
    return tuple(_cluster(index, entry) for index, entry in enumerate(value))


def _cluster(index: int, entry: Any) -> ArgoCluster:
    if not isinstance(entry, dict) or not entry.get("name") or not entry.get("server"):
        raise ArgoClustersError(f"entry {index} needs a name and a server URL")
    if unknown := sorted(set(entry) - _FIELDS):
        raise ArgoClustersError(f"entry {index} ({entry['name']}): unknown field {unknown[0]}")
    return ArgoCluster(
        str(entry["name"]),
        str(entry["server"]),
        _pairs(index, entry, "labels"),
        _pairs(index, entry, "annotations"),
    )


def _pairs(index: int, entry: dict[str, Any], field: str) -> tuple[tuple[str, str], ...]:
    items = entry.get(field) or {}
    if not isinstance(items, dict):
        raise ArgoClustersError(f"entry {index} ({entry['name']}): {field} must be a mapping")
    return tuple(sorted((str(k), str(v)) for k, v in items.items()))
