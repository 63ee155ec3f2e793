"""The Cluster port: the few things the bot asks of a Kubernetes cluster."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.manifests import ObjectKey
from bot.core.rollouts import FIELD_MANAGER


@dataclass(frozen=True)
class Resource:
    """How the API serves a kind: its plural resource name and whether it is namespaced."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool


class Cluster(Protocol):
    """One cluster. Every method raises a `bot.clusters.errors.ClusterError` on failure."""

    name: str

    async def resource(self, api_version: str, kind: str) -> Resource | None:
        """The served resource for a kind (discovery, cached), None when not served."""
        ...

    async def read(self, api_version: str, key: ObjectKey) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        ...

    async def list_labelled(
        self, api_version: str, kind: str, namespace: str, selector: str
    ) -> list[dict[str, Any]]:
        """Every object of a kind whose labels match `selector` (namespace '': in all)."""
        ...

    async def apply(
        self,
        body: Mapping[str, Any],
        *,
        dry_run: bool,
        force: bool = False,
        field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        """Server-side apply as `field_manager` (the bot's unless a dry run predicts another
        applier, e.g. Argo CD's); the object as the server made it."""
        ...

    async def delete(self, api_version: str, key: ObjectKey) -> bool:
        """Delete the object; False when it was already gone."""
        ...
