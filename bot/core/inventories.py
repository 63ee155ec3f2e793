"""The inventory of what the bot applied to an environment, and what prune may delete."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.manifests import Manifest, ObjectKey, group_of
from bot.core.rollouts import MANAGED_BY_LABEL, MANAGED_BY_VALUE, prune_order

INVENTORY_FORMAT = 1
INVENTORY_DATA_KEY = "inventory.json"
# Deleting these loses data or takes whole trees with it: only when an environment says so.
PROTECTED_KINDS = {
    "Namespace": "",
    "CustomResourceDefinition": "apiextensions.k8s.io",
    "PersistentVolumeClaim": "",
}


class InventoryError(ValueError):
    """The stored inventory cannot be trusted, so nothing may be pruned from it."""


@dataclass(frozen=True, order=True)
class Entry:
    key: ObjectKey
    api_version: str


@dataclass(frozen=True)
class Inventory:
    environment: str
    entries: tuple[Entry, ...] = ()

    def keys(self) -> frozenset[ObjectKey]:
        return frozenset(entry.key for entry in self.entries)


@dataclass(frozen=True)
class Kept:
    entry: Entry
    reason: str
    tracked: bool = True  # False: handed back to the cluster's users, no longer in the inventory


@dataclass(frozen=True)
class PruneDecision:
    delete: tuple[Entry, ...] = ()  # in deletion order
    kept: tuple[Kept, ...] = ()  # gone from Git but left in the cluster, and why
    refused: str | None = None  # why nothing at all is pruned


def inventory_name(environment: str) -> str:
    """The ConfigMap name; `_` is not allowed in object names, the exact name is in the data."""
    return "gitops-bot-inventory-" + re.sub(r"[^a-z0-9.-]", "-", environment)


def entries_of(manifests: Iterable[Manifest]) -> tuple[Entry, ...]:
    return tuple(sorted(Entry(m.key, m.api_version) for m in manifests))


def is_protected(key: ObjectKey) -> bool:
    return PROTECTED_KINDS.get(key.kind) == key.group


def decide_prune(
    inventory: Inventory,
    desired: Iterable[ObjectKey],
    *,
    prune: bool,
    allowed_kinds: Iterable[str] = (),
    apply_failed: bool = False,
) -> PruneDecision:
    """Which inventory objects Git no longer declares may be deleted now."""
    wanted = frozenset(desired)
    gone = [entry for entry in inventory.entries if entry.key not in wanted]
    if not gone:
        return PruneDecision()
    if not prune:
        reason = "prune is off for this environment; no longer tracked by the bot"
        return PruneDecision(kept=tuple(Kept(e, reason, tracked=False) for e in gone))
    if apply_failed:
        return PruneDecision(
            kept=tuple(Kept(e, "not pruned: some objects failed to apply") for e in gone),
            refused="some objects failed to apply, so nothing was pruned; fix them and re-apply",
        )
    if not wanted:
        return PruneDecision(
            kept=tuple(Kept(e, "not pruned: the render is empty") for e in gone),
            refused=(
                f"the environment renders no objects at all, so pruning would delete all "
                f"{len(gone)} objects the bot applied; the bot refuses. If the environment "
                "is really going away, delete its objects by hand"
            ),
        )
    allowed = frozenset(allowed_kinds)
    protected = [e for e in gone if is_protected(e.key) and e.key.kind not in allowed]
    deletable = {e.key: e for e in gone if e not in protected}
    return PruneDecision(
        delete=tuple(deletable[key] for key in prune_order(deletable)),
        kept=tuple(Kept(e, _protected_reason(e.key)) for e in protected),
    )


def _protected_reason(key: ObjectKey) -> str:
    return (
        f"a {key.kind} is only pruned when the environment lists it in allow_prune_kinds; "
        "delete it by hand if it should go"
    )


def next_inventory(
    previous: Inventory,
    desired: Iterable[Entry],
    applied: Iterable[ObjectKey],
    deleted: Iterable[ObjectKey],
    decision: PruneDecision,
    *,
    apply_failed: bool,
) -> Inventory:
    """What the bot owns after an apply; nothing it may still own is ever forgotten.

    After a failed apply the previous entries stay and the applied ones join them. After a
    successful one the desired entries replace them, with every entry prune left in the
    cluster except where prune is off (those objects are handed back to their users).
    """
    desired = tuple(desired)
    if apply_failed or decision.refused:
        done = frozenset(applied)
        entries = {e.key: e for e in previous.entries}
        entries.update({e.key: e for e in desired if e.key in done})
        return Inventory(previous.environment, tuple(sorted(entries.values())))
    kept_by_prune = [k.entry for k in decision.kept if k.tracked]
    gone = frozenset(deleted)
    not_deleted = [e for e in decision.delete if e.key not in gone]
    entries = {e.key: e for e in (*kept_by_prune, *not_deleted)}
    entries.update({e.key: e for e in desired})
    return Inventory(previous.environment, tuple(sorted(entries.values())))


def encode_inventory(inventory: Inventory) -> str:
    entries = [
        {
            "apiVersion": e.api_version,
            "kind": e.key.kind,
            "namespace": e.key.namespace,
            "name": e.key.name,
        }
        for e in inventory.entries
    ]
    document = {
        "format": INVENTORY_FORMAT,
        "environment": inventory.environment,
        "entries": entries,
    }
    return json.dumps(document, indent=0, sort_keys=True)


def decode_inventory(text: str, environment: str) -> Inventory:
    """The inventory in `text`; raise InventoryError when it is not one for `environment`."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InventoryError(f"the inventory is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != INVENTORY_FORMAT:
        raise InventoryError(f"the inventory is not in format {INVENTORY_FORMAT}")
    if data.get("environment") != environment:
        raise InventoryError(
            f"the inventory belongs to environment {data.get('environment')!r}, not "
            f"{environment!r}: two environments share a name on this cluster; rename one"
        )
    raw = data.get("entries")
    if not isinstance(raw, list):
        raise InventoryError("the inventory has no list of entries")
    return Inventory(environment, tuple(sorted(_entry(item) for item in raw)))


def _entry(item: Any) -> Entry:
    fields = ("apiVersion", "kind", "namespace", "name")
    if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in fields):
        raise InventoryError(f"an inventory entry is malformed: {item!r}")
    if not item["kind"] or not item["name"] or not item["apiVersion"]:
        raise InventoryError(f"an inventory entry lacks a kind, name or apiVersion: {item!r}")
    key = ObjectKey(group_of(item["apiVersion"]), item["kind"], item["namespace"], item["name"])
    return Entry(key, item["apiVersion"])


def inventory_configmap(inventory: Inventory, namespace: str) -> dict[str, Any]:
    """The ConfigMap that stores the inventory in the cluster it describes."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": inventory_name(inventory.environment),
            "namespace": namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY_VALUE,
                "app.kubernetes.io/component": "inventory",
            },
        },
        "data": {INVENTORY_DATA_KEY: encode_inventory(inventory)},
    }


def inventory_text(configmap: Mapping[str, Any] | None) -> str | None:
    """The stored inventory document, or None when the ConfigMap holds none."""
    if configmap is None:
        return None
    data = configmap.get("data") or {}
    text = data.get(INVENTORY_DATA_KEY)
    return text if isinstance(text, str) else None
