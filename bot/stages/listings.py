"""The live objects the bot manages, read with one list per kind instead of a read per object."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.clusters.errors import Forbidden, Invalid, NotFound, ServerError, UnknownKind
from bot.clusters.ports import Cluster
from bot.core.manifests import Manifest, ObjectKey, group_of
from bot.core.rollouts import MANAGED_SELECTOR

# A list may be refused where a read is allowed (RBAC granting `get` only): those
# kinds are simply read object by object.
_UNLISTABLE = (Forbidden, Invalid, NotFound, ServerError, UnknownKind)
# Secrets are read by name only: a right to list them would be a right to read them all.
_SECRETS = ("v1", "Secret")


@dataclass(frozen=True)
class Listing:
    """Live objects found by listing. Absent here does not mean absent from the cluster:
    an object the bot has not applied yet carries no managed-by label."""

    # By apiVersion too: two versions of one kind are two different views of an object.
    objects: Mapping[tuple[str, ObjectKey], dict[str, Any]] = field(default_factory=dict)

    def live(self, api_version: str, key: ObjectKey) -> dict[str, Any] | None:
        return self.objects.get((api_version, key))


NO_LISTING = Listing()


async def list_managed(cluster: Cluster, manifests: Iterable[Manifest]) -> Listing:
    """One list per kind of which more than one object is declared (one object: a read).

    A kind declared in several namespaces is listed in all of them at once where RBAC
    allows it, else in each namespace holding more than one of its objects.
    """
    spread: dict[tuple[str, str], Counter[str]] = {}
    # Once per object: a preview passes the base and the head, which share most of them.
    for manifest in {(m.api_version, m.key): m for m in manifests}.values():
        if (manifest.api_version, manifest.key.kind) != _SECRETS:
            kind = spread.setdefault((manifest.api_version, manifest.key.kind), Counter())
            kind[manifest.key.namespace] += 1
    listed = [(kind, namespaces) for kind, namespaces in spread.items() if namespaces.total() > 1]
    found = await asyncio.gather(*(_list_kind(cluster, *kind, ns) for kind, ns in listed))
    return Listing({(str(o["apiVersion"]), _key(o)): o for objects in found for o in objects})


async def _list_kind(
    cluster: Cluster, api_version: str, kind: str, namespaces: Counter[str]
) -> list[dict[str, Any]]:
    try:
        resource = await cluster.resource(api_version, kind)
    except _UNLISTABLE:
        return []
    if resource is None:
        return []
    if not resource.namespaced or len(namespaces) > 1:
        everywhere = await _list(cluster, api_version, kind, "")
        if everywhere is not None or not resource.namespaced:
            return everywhere or []
    each = [ns for ns, count in namespaces.items() if count > 1]
    found = await asyncio.gather(*(_list(cluster, api_version, kind, ns) for ns in each))
    return [o for objects in found for o in objects or ()]


async def _list(
    cluster: Cluster, api_version: str, kind: str, namespace: str
) -> list[dict[str, Any]] | None:
    """The objects, or None when the cluster refuses the list."""
    try:
        return await cluster.list_labelled(api_version, kind, namespace, MANAGED_SELECTOR)
    except _UNLISTABLE:
        return None


def _key(live: Mapping[str, Any]) -> ObjectKey:
    metadata = live.get("metadata") or {}
    return ObjectKey(
        group_of(str(live["apiVersion"])),
        str(live["kind"]),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name") or ""),
    )
