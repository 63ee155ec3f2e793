"""Cluster names from the server settings -> connections, opened on first use, closed together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from bot.clusters.crds import DEFAULT_REFRESH_SECONDS, ClusterCrds
from bot.clusters.errors import ClusterError
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

    async def prepare(self) -> None:
        """Open every cluster ahead of its first use, for a command that starts cold.

        The adapter is imported in a thread, so the event loop goes on reading commits
        meanwhile; then each cluster answers its core discovery (`v1`, where every
        preview reads its inventory), which also opens the first TLS connection, and the
        rest of the connections its first requests will use are opened after it. What
        fails here is left for the first real use to report. Clusters reached in-cluster
        or through a login program are left alone: no program runs for a cluster that
        the command may not need.
        """
        plain = [name for name, s in self._settings.items() if _plain(s)]
        if plain:  # else nothing to open, and nothing to import
            await asyncio.to_thread(_import_adapter)
        await asyncio.gather(*(self._discover_core(name) for name in plain))

    async def _discover_core(self, name: str) -> None:
        # A failure is said by the preview that needs the cluster, in its own words.
        with contextlib.suppress(ClusterError):
            await (await self._cluster(name)).resource("v1", "ConfigMap")
            # It answered: the other connections a preview's first requests use, too.
            await self._open[name].open_ahead()

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


def _plain(settings: ClusterSettings) -> bool:
    """Whether the cluster is reached with a kubeconfig's certificate or token alone."""
    return settings.kubeconfig is not None and not (settings.in_cluster or settings.allow_exec)


def _import_adapter() -> None:
    # An error here is raised again, and said, by the import at first use.
    with contextlib.suppress(Exception):
        import bot.clusters.kubeapi
        import bot.clusters.kubeconfigs  # noqa: F401


async def _open_cluster(settings: ClusterSettings) -> KubernetesCluster:
    # Imported here: the adapter (and, for in-cluster settings or login programs, the
    # Kubernetes client with its ~850 generated models: 0.4 s on an idle machine) is
    # only for a command that reaches a cluster.
    from bot.clusters.kubeapi import KubernetesCluster
    from bot.clusters.kubeconfigs import cluster_transport

    return KubernetesCluster(settings, await cluster_transport(settings))
