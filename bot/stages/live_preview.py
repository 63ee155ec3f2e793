"""The live layer of a plan: dry-run applies against the environment's cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.clusters.directory import ClusterDirectory, Connection
from bot.clusters.errors import ClusterError, Forbidden, NotFound, UnknownKind
from bot.core.controllerapply import ControllerApply
from bot.core.findings import Finding, Severity, Stage
from bot.core.inventories import InventoryError, PruneDecision, decide_prune
from bot.core.livediffs import LiveLayer, Observation, cluster_findings, drift_changes, live_changes
from bot.core.manifests import LoadResult, Manifest, ObjectKey, Source
from bot.core.plans import LiveOutcome
from bot.core.repoconfig import Environment
from bot.core.rollouts import Stamp
from bot.stages.inventories import read_inventory
from bot.stages.listings import Listing, list_managed
from bot.stages.observations import Observed, RenderFacts, observe


class LivePreviewer:
    """The live layer of an environment's plan, when its cluster is configured."""

    def __init__(self, clusters: ClusterDirectory, secret_key: bytes) -> None:
        self._clusters = clusters
        self._secret_key = secret_key

    async def __call__(
        self,
        environment: Environment,
        base: LoadResult,
        head: LoadResult,
        head_commit: str,
    ) -> LiveOutcome:
        if not self._clusters.knows(environment.cluster):
            return LiveOutcome()  # no connection configured: the plan says "not compared"
        try:
            connection = await self._clusters.connect(environment.cluster)
            layer, findings = await preview_environment(
                connection, environment, base, head, head_commit, self._secret_key
            )
        except ClusterError as exc:  # unreachable, unauthorized, bad kubeconfig
            return LiveOutcome(LiveLayer(environment.cluster, failure=str(exc)))
        return LiveOutcome(layer, findings)


async def preview_environment(
    connection: Connection,
    environment: Environment,
    base: LoadResult,
    head: LoadResult,
    head_commit: str,
    secret_key: bytes,
    controller: ControllerApply | None = None,
) -> tuple[LiveLayer, tuple[Finding, ...]]:
    """Live vs head (what merging would do now) and live vs base (drift not from the PR).

    With a `controller`, the dry runs are its sync (an Argo CD or Flux unit), and nothing
    is pruned: the bot keeps no inventory of what a controller applied.
    """
    cluster = connection.cluster
    fresh = Stamp(environment.name, head_commit)
    head_facts = RenderFacts.of(head.manifests)
    listing = await list_managed(connection.cluster, head.manifests + base.manifests)
    how = _How(fresh, listing, controller)
    heads = await _observe_all(connection, head.manifests, head_facts, how)
    bases = await _observe_base(connection, base.manifests, head.manifests, heads, how)
    sources = _sources(heads) | _sources(bases)
    decision, inventory_findings = await _prune_decision(connection, environment, heads, how)
    lives = await _lives(connection, decision)
    head_observations = [o.observation for o in heads]
    layer = LiveLayer(
        cluster.name,
        changes=live_changes(
            head_observations, decision, lives, secret_key=secret_key, sources=sources
        ),
        drift=drift_changes([o.observation for o in bases], secret_key=secret_key, sources=sources),
        unknown=tuple(o.key for o in head_observations if _not_previewed(o)),
    )
    findings = cluster_findings(
        head_observations, force_conflicts=environment.force_conflicts, sources=sources
    )
    return layer, findings + inventory_findings


@dataclass(frozen=True)
class Survey:
    """An environment's objects as the cluster sees them: the drift check's view."""

    observed: tuple[Observed, ...]  # live, and after a dry-run apply of the commit
    prune: PruneDecision  # what prune would delete from the inventory now
    lives: Mapping[ObjectKey, dict[str, Any] | None]  # the live state of those objects
    findings: tuple[Finding, ...]  # e.g. the inventory could not be read


async def survey_environment(
    connection: Connection,
    environment: Environment,
    loaded: LoadResult,
    commit: str,
    controller: ControllerApply | None = None,
) -> Survey:
    """Every object `commit` declares, observed with the same dry runs as a preview."""
    facts = RenderFacts.of(loaded.manifests)
    listing = await list_managed(connection.cluster, loaded.manifests)
    how = _How(Stamp(environment.name, commit), listing, controller)
    observed = await _observe_all(connection, loaded.manifests, facts, how)
    decision, findings = await _prune_decision(connection, environment, observed, how)
    return Survey(tuple(observed), decision, await _lives(connection, decision), findings)


@dataclass(frozen=True)
class _How:
    """How every object of one preview or survey is observed."""

    fresh: Stamp  # what the bot's apply would stamp
    listing: Listing  # the objects already read in bulk
    controller: ControllerApply | None  # whose sync the dry runs predict; None: the bot's


async def _observe_all(
    connection: Connection, manifests: Iterable[Manifest], facts: RenderFacts, how: _How
) -> list[Observed]:
    """Every object at once; the cluster adapter bounds how many requests are in flight."""
    cluster = connection.cluster
    return list(
        await asyncio.gather(
            *(observe(cluster, m, facts, how.fresh, how.listing, how.controller) for m in manifests)
        )
    )


async def _observe_base(
    connection: Connection,
    base: tuple[Manifest, ...],
    head: tuple[Manifest, ...],
    heads: list[Observed],
    how: _How,
) -> list[Observed]:
    """Base objects the change leaves exactly as they are reuse the head's observation."""
    observed = {m.key: (m, o) for m, o in zip(head, heads, strict=True)}

    def untouched(manifest: Manifest) -> bool:
        same = observed.get(manifest.key)
        return same is not None and (same[0].api_version, same[0].body) == (
            manifest.api_version,
            manifest.body,
        )

    reused = [observed[m.key][1] for m in base if untouched(m)]
    others = [m for m in base if not untouched(m)]
    return reused + await _observe_all(connection, others, RenderFacts.of(base), how)


def _sources(observed: Iterable[Observed]) -> dict[ObjectKey, Source]:
    return {o.observation.key: o.manifest.source for o in observed}


def _not_previewed(observation: Observation) -> bool:
    return observation.applied is None and observation.problem is not None


async def _prune_decision(
    connection: Connection, environment: Environment, heads: list[Observed], how: _How
) -> tuple[PruneDecision, tuple[Finding, ...]]:
    if how.controller is not None:  # the controller prunes, from its own records
        return PruneDecision(), ()
    settings = connection.settings
    try:
        inventory = await read_inventory(
            connection.cluster, settings.inventory_namespace, environment.name
        )
    except (InventoryError, Forbidden) as exc:
        finding = Finding(
            Stage.CLUSTER,
            Severity.WARNING,
            "cluster.inventory",
            f"cannot read the inventory in namespace {settings.inventory_namespace!r}, so "
            f"what prune would delete is unknown: {exc}",
        )
        return PruneDecision(), (finding,)
    # Both the scoped and the written key: whatever Git declares is never pruned.
    desired = {o.observation.key for o in heads} | {o.manifest.key for o in heads}
    decision = decide_prune(
        inventory,
        desired,
        prune=environment.prune,
        allowed_kinds=environment.allow_prune_kinds,
    )
    return decision, ()


async def _lives(
    connection: Connection, decision: PruneDecision
) -> dict[ObjectKey, dict[str, Any] | None]:
    """The live state of every object prune would delete or leave."""
    entries = [*decision.delete, *(kept.entry for kept in decision.kept)]

    async def read(api_version: str, key: ObjectKey) -> dict[str, Any] | None:
        try:
            return await connection.cluster.read(api_version, key)
        except (Forbidden, NotFound, UnknownKind):
            return None

    found = await asyncio.gather(*(read(e.api_version, e.key) for e in entries))
    return {entry.key: body for entry, body in zip(entries, found, strict=True)}
