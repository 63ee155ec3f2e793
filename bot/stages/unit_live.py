"""The live layer of an Argo CD or Flux unit: its controller's sync, dry-run on its cluster."""

from __future__ import annotations

from bot.clusters.directory import ClusterDirectory
from bot.clusters.errors import ClusterError
from bot.core.controllerapply import ControllerClusters, controller_apply
from bot.core.identities import ArgoCluster
from bot.core.livediffs import LiveLayer
from bot.core.manifests import LoadResult
from bot.core.plans import LiveOutcome
from bot.core.repoconfig import Environment
from bot.stages.live_preview import preview_environment


class UnitLivePreviewer:
    """The live layer of a unit's plan when `controller_clusters` maps its destination
    to a cluster the bot can reach. Only dry runs: the controller applies, never the bot."""

    def __init__(
        self,
        clusters: ClusterDirectory,
        secret_key: bytes,
        mapping: ControllerClusters,
        argocd_clusters: tuple[ArgoCluster, ...] = (),
    ) -> None:
        self._clusters = clusters
        self._secret_key = secret_key
        self._mapping = mapping
        self._argocd_clusters = argocd_clusters

    def cluster_of(self, unit: Environment) -> str | None:
        """The bot's cluster the unit deploys to, when mapped and configured."""
        name = self._mapping.cluster_for(unit, self._argocd_clusters)
        return name if name is not None and self._clusters.knows(name) else None

    async def __call__(
        self,
        unit: Environment,
        base: LoadResult,
        head: LoadResult,
        head_commit: str,
    ) -> LiveOutcome:
        controller, name = controller_apply(unit), self.cluster_of(unit)
        if controller is None or name is None:
            return LiveOutcome()  # not mapped: the comment says which setting would compare it
        try:
            connection = await self._clusters.connect(name)
            layer, findings = await preview_environment(
                connection, unit, base, head, head_commit, self._secret_key, controller
            )
        except ClusterError as exc:  # unreachable, unauthorized, bad kubeconfig
            return LiveOutcome(LiveLayer(name, failure=str(exc)))
        return LiveOutcome(layer, findings)
