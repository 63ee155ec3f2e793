"""Cluster names from the server settings -> connections, opened on first use, closed together."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from bot.clusters.crds import DEFAULT_REFRESH_SECONDS, ClusterCrds
from bot.clusters.ports import Cluster
from bot.config.clusters import ClusterSettings

if TYPE_CHECKING:
    from bot.clusters.kubeapi import KubernetesCluster


@dataclass(frozen=True)
class Connection:
    settings: ClusterSettings
    cluster: Cluster


class ClusterDirectory:
    """The clusters the bot may reach. Use `async with`, so every connection gets closed."""

    def __init__(
        self,
        clusters: Iterable[ClusterSettings],
        crd_refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        self._settings = {c.name: c for c in clusters}
        self._open: dict[str, KubernetesCluster] = {}
        self._lock = asyncio.Lock()
        # The CRDs each cluster serves, as schemas for checking custom resources.
        self.crds = ClusterCrds(self._cluster, crd_refresh_seconds)

    def knows(self, name: str) -> bool:
        return name in self._settings

    async def connect(self, name: str) -> Connection:
        """The connection to cluster `name`; raises ClusterConfigError when it cannot be set up.

        Callers check `knows(name)` first: asking for an unknown name is a programming error.
        """
        settings = self._settings[name]
        async with self._lock:
            if name not in self._open:
                self._open[name] = await _open_cluster(settings)
            return Connection(settings, self._open[name])

    async def _cluster(self, name: str) -> Cluster:
        return (await self.connect(name)).cluster

    async def close(self) -> None:
        opened, self._open = list(self._open.values()), {}
        for cluster in opened:
            await cluster.close()

    async def __aenter__(self) -> ClusterDirectory:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()


async def _open_cluster(settings: ClusterSettings) -> KubernetesCluster:
    # Imported here: aiohttp (and, for in-cluster settings or login programs, the
    # Kubernetes client with its ~850 generated models: 0.4 s on an idle machine) is
    # only for a command that reaches a cluster.
    from bot.clusters.kubeapi import KubernetesCluster
    from bot.clusters.kubeconfigs import cluster_transport

    return KubernetesCluster(settings, await cluster_transport(settings))
