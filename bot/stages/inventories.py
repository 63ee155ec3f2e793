"""The inventory of each environment, kept as a ConfigMap in the cluster it describes."""

from __future__ import annotations

from bot.clusters.errors import NotFound
from bot.clusters.ports import Cluster
from bot.core.inventories import (
    Inventory,
    InventoryError,
    decode_inventory,
    inventory_configmap,
    inventory_name,
    inventory_text,
)
from bot.core.manifests import ObjectKey
from bot.core.rollouts import MANAGED_BY_LABEL, MANAGED_BY_VALUE


async def read_inventory(cluster: Cluster, namespace: str, environment: str) -> Inventory:
    """The stored inventory; empty when there is none yet. Raises InventoryError if unusable."""
    key = ObjectKey("", "ConfigMap", namespace, inventory_name(environment))
    body = await cluster.read("v1", key)
    if body is None:
        return Inventory(environment)
    text = inventory_text(body)
    if text is None:
        raise InventoryError(
            f"ConfigMap {namespace}/{key.name} exists but holds no inventory; the bot will not "
            "overwrite or prune from it. Rename or delete it"
        )
    return decode_inventory(text, environment)


async def write_inventory(cluster: Cluster, namespace: str, inventory: Inventory) -> None:
    """Store the inventory, creating its namespace the first time."""
    body = inventory_configmap(inventory, namespace)
    try:
        await cluster.apply(body, dry_run=False, force=True)
    except NotFound:
        namespace_body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
        }
        await cluster.apply(namespace_body, dry_run=False)
        await cluster.apply(body, dry_run=False, force=True)
