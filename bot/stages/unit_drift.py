"""The Argo CD and Flux units a drift check compares: those whose destination is mapped."""

from __future__ import annotations

from bot.clusters.directory import ClusterDirectory
from bot.core.controllerapply import ControllerClusters
from bot.core.identities import RepoIdentity
from bot.core.repoconfig import Environment
from bot.git.repos import GitRepo
from bot.stages.controllers import identity_for, units_at, wanted
from bot.stages.plan import Checks


async def mapped_units(
    repo: GitRepo,
    commit: str,
    checks: Checks,
    identity: RepoIdentity,
    mapping: ControllerClusters,
    clusters: ClusterDirectory,
) -> tuple[tuple[Environment, str], ...]:
    """Each previewable unit `commit` declares with the bot's cluster it deploys to; units
    whose destination `controller_clusters` does not map are left out (nothing to compare)."""
    config = checks.config
    if not (config.argocd or config.flux):
        return ()
    identity = identity_for(config, identity)
    version, options = config.kubernetes_version, checks.render_options
    units = wanted(await units_at(repo, commit, identity, version, options), config)
    found = []
    for unit in units:
        env = unit.environment
        name = mapping.cluster_for(env, identity.clusters) if env is not None else None
        if env is not None and name is not None and clusters.knows(name):
            found.append((env, name))
    return tuple(found)
