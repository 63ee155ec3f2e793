"""Which of the bot's clusters an Argo CD or Flux unit deploys to (`controller_clusters`).

Kept apart from `controllerapply`, which re-exports it, so that the settings can name
their default without importing what a controller's dry run needs (the ApplicationSet
generators, the repository configuration): every command reads the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core.identities import ArgoCluster
    from bot.core.repoconfig import Environment


class Controller:
    """The prefixes of the unit names each controller's units carry (bot/core/gitopsapps.py)."""

    ARGOCD = "argocd/"
    FLUX = "flux/"
    HELM = "helmrelease/"


@dataclass(frozen=True)
class ControllerClusters:
    """The `controller_clusters` setting: a unit's destination -> a cluster of `clusters`.

    Argo CD destinations are a `destination.server` URL or a `destination.name`; Flux
    ones are `in-cluster`, or `kubeconfig:<namespace>/<secret>` for `spec.kubeConfig`.
    """

    argocd: tuple[tuple[str, str], ...] = ()
    flux: tuple[tuple[str, str], ...] = ()

    def cluster_for(self, unit: Environment, known: tuple[ArgoCluster, ...] = ()) -> str | None:
        """The bot's cluster for the unit's destination; Argo CD names and server URLs
        also match through `argocd_clusters` (`known`), which pairs them."""
        if unit.name.startswith(Controller.ARGOCD):
            mapping = dict(self.argocd)
            aliases = [c.server for c in known if c.name == unit.cluster]
            aliases += [c.name for c in known if c.server == unit.cluster]
            found = [mapping[d] for d in (unit.cluster, *aliases) if d in mapping]
            return found[0] if found else None
        return dict(self.flux).get(unit.cluster)


NO_CONTROLLER_CLUSTERS = ControllerClusters()
