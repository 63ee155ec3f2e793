"""Apply one environment to its cluster: server-side apply in order, then prune, then record."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.clusters.directory import Connection
from bot.clusters.errors import ClusterError
from bot.clusters.ports import Cluster
from bot.core.applies import ObjectResult, Outcome, object_digest
from bot.core.diffs import Action, change_of
from bot.core.inventories import (
    Entry,
    Inventory,
    InventoryError,
    PruneDecision,
    decide_prune,
    next_inventory,
)
from bot.core.livediffs import ProblemKind, explain, scrub
from bot.core.manifests import Manifest, ObjectKey
from bot.core.repoconfig import Environment
from bot.core.rollouts import (
    Stamp,
    apply_groups,
    crd_established,
    is_crd,
    manifest_digest_of,
    stamped,
    stamped_environment,
)
from bot.stages.inventories import read_inventory, write_inventory
from bot.stages.listings import Listing, list_managed
from bot.stages.observations import Observed, RenderFacts, observe

CRD_WAIT_SECONDS = 60.0  # for a new CRD to be Established and its kind to be served
_POLL_SECONDS = 0.2
_COMPARE_KEY = b"apply-compare"  # masks Secrets for comparing only; nothing is shown


@dataclass(frozen=True)
class Applied:
    result: ObjectResult
    entry: Entry  # the object as the inventory records it (scope from the cluster)


async def apply_environment(
    connection: Connection,
    environment: Environment,
    manifests: tuple[Manifest, ...],
    stamp: Stamp,
) -> tuple[tuple[ObjectResult, ...], str | None]:
    """Per-object results, and why the apply as a whole stopped (None when it did not)."""
    cluster, namespace = connection.cluster, connection.settings.inventory_namespace
    try:
        inventory = await read_inventory(cluster, namespace, environment.name)
    except InventoryError as exc:
        return (), f"nothing was applied: the inventory cannot be used: {exc}"
    applied = await _apply_all(cluster, environment, manifests, stamp)
    failed = any(a.result.outcome is Outcome.FAILED for a in applied)
    desired = {a.entry.key for a in applied} | {m.key for m in manifests}
    decision = decide_prune(
        inventory,
        desired,
        prune=environment.prune,
        allowed_kinds=environment.allow_prune_kinds,
        apply_failed=failed,
    )
    pruned, deleted = await _prune(cluster, environment, decision)
    results = tuple(a.result for a in applied) + pruned
    after = next_inventory(
        inventory,
        [a.entry for a in applied],
        [a.entry.key for a in applied if a.result.outcome is not Outcome.FAILED],
        deleted,
        decision,
        apply_failed=failed,
    )
    return results, await _record(cluster, namespace, inventory, after, decision, failed)


async def _record(
    cluster: Cluster,
    namespace: str,
    before: Inventory,
    after: Inventory,
    decision: PruneDecision,
    failed: bool,
) -> str | None:
    if after != before:
        try:
            await write_inventory(cluster, namespace, after)
        except ClusterError as exc:
            return (
                f"objects were applied, but the inventory could not be saved in namespace "
                f"{namespace!r}, so a later prune will not know about them: {exc}"
            )
    return None if failed else decision.refused


async def _apply_all(
    cluster: Cluster, environment: Environment, manifests: tuple[Manifest, ...], stamp: Stamp
) -> list[Applied]:
    """Group by group in dependency order; a new CRD must be served before its objects."""
    facts = RenderFacts.of(manifests)
    listing = await list_managed(cluster, manifests)
    done: list[Applied] = []
    for group in apply_groups(manifests):
        outcomes = await asyncio.gather(
            *(_apply_one(cluster, environment, m, facts, stamp, listing) for m in group)
        )
        done.extend(await asyncio.gather(*(_established(cluster, a) for a in outcomes)))
    return done


async def _apply_one(
    cluster: Cluster,
    environment: Environment,
    manifest: Manifest,
    facts: RenderFacts,
    stamp: Stamp,
    listing: Listing,
) -> Applied:
    entry = Entry(manifest.key, manifest.api_version)
    digest = object_digest(stamped(manifest.body, stamp))
    try:
        await _served(cluster, manifest, facts)
        observed = await observe(cluster, manifest, facts, stamp, listing)
        return await _write(cluster, environment, observed, stamp, digest)
    except ClusterError as exc:  # e.g. the real apply refused after a clean dry run
        return Applied(_failed(entry, digest, scrub(str(exc), manifest.body)), entry)


async def _write(
    cluster: Cluster, environment: Environment, observed: Observed, stamp: Stamp, digest: str
) -> Applied:
    """Apply what the dry run says would change; leave unchanged objects untouched."""
    seen, manifest = observed.observation, observed.manifest
    entry = Entry(manifest.key, manifest.api_version)
    action = Action.CREATE if seen.live is None else Action.UPDATE
    problem, takeover = seen.problem, ""
    if problem is not None and problem.kind is ProblemKind.NO_DRY_RUN:
        return await _apply_blind(cluster, manifest, stamp, digest, problem.message)
    if problem is not None and problem.kind is ProblemKind.CONFLICT and environment.force_conflicts:
        takeover = "took over fields from another field manager: " + "; ".join(problem.conflicts)
    elif problem is not None:
        return Applied(_failed(entry, digest, explain(problem, False)[2], action), entry)
    if seen.applied is None:  # its CRD or namespace never became available
        return Applied(_failed(entry, digest, seen.note or "cannot be applied", action), entry)
    change = change_of(seen.key, seen.live, seen.applied, prune=True, secret_key=_COMPARE_KEY)
    unchanged = ObjectResult(entry.key, Action.UNCHANGED, Outcome.UNCHANGED, digest)
    if change.action is Action.UNCHANGED and stamped_environment(seen.live) == stamp.environment:
        if manifest_digest_of(seen.live) == object_digest(manifest.body):
            return Applied(unchanged, entry)
        # Nothing visible changes, but the apply still records which manifest the bot
        # owns fields for (and lets go of fields Git no longer declares).
        await cluster.apply(stamped(manifest.body, stamp), dry_run=False)
        return Applied(unchanged, entry)
    await cluster.apply(stamped(manifest.body, stamp), dry_run=False, force=bool(takeover))
    action = Action.UPDATE if change.action is Action.UNCHANGED else change.action
    return Applied(ObjectResult(entry.key, action, Outcome.APPLIED, digest, takeover), entry)


async def _apply_blind(
    cluster: Cluster, manifest: Manifest, stamp: Stamp, digest: str, why: str
) -> Applied:
    """An admission webhook refuses dry runs: apply without knowing the change, and say so."""
    entry = Entry(manifest.key, manifest.api_version)
    await cluster.apply(stamped(manifest.body, stamp), dry_run=False)
    message = f"applied without a dry run, so the change was not compared: {why}"
    return Applied(ObjectResult(entry.key, Action.UPDATE, Outcome.APPLIED, digest, message), entry)


def _failed(
    entry: Entry, digest: str, message: str, action: Action = Action.UPDATE
) -> ObjectResult:
    return ObjectResult(entry.key, action, Outcome.FAILED, digest, message)


async def _served(cluster: Cluster, manifest: Manifest, facts: RenderFacts) -> None:
    """Wait until the cluster serves a kind whose CRD this render just applied."""
    if not facts.defines(manifest.api_version, manifest.key.kind):
        return
    deadline = asyncio.get_running_loop().time() + CRD_WAIT_SECONDS
    while await cluster.resource(manifest.api_version, manifest.key.kind) is None:
        if asyncio.get_running_loop().time() > deadline:
            return  # observe() reports the kind as not served
        await asyncio.sleep(_POLL_SECONDS)


async def _established(cluster: Cluster, applied: Applied) -> Applied:
    """A CRD counts as applied once the API server serves its kind."""
    entry = applied.entry
    if not is_crd(entry.key) or applied.result.outcome is Outcome.FAILED:
        return applied
    deadline = asyncio.get_running_loop().time() + CRD_WAIT_SECONDS
    try:
        while not crd_established(await cluster.read(entry.api_version, entry.key)):
            if asyncio.get_running_loop().time() > deadline:
                message = f"applied, but not Established after {CRD_WAIT_SECONDS:.0f}s"
                return Applied(_failed(entry, applied.result.digest, message), entry)
            await asyncio.sleep(_POLL_SECONDS)
    except ClusterError as exc:
        return Applied(_failed(entry, applied.result.digest, str(exc)), entry)
    return applied


async def _prune(
    cluster: Cluster, environment: Environment, decision: PruneDecision
) -> tuple[tuple[ObjectResult, ...], list[ObjectKey]]:
    results = [
        ObjectResult(kept.entry.key, Action.ORPHAN, Outcome.SKIPPED, message=kept.reason)
        for kept in decision.kept
    ]
    deleted: list[ObjectKey] = []
    for entry in decision.delete:  # one by one: the order matters (namespaces last)
        result = await _delete(cluster, environment, entry)
        results.append(result)
        if result.outcome is Outcome.PRUNED or result.outcome is Outcome.SKIPPED:
            deleted.append(entry.key)  # gone, or now another environment's: no longer ours
    return tuple(results), deleted


async def _delete(cluster: Cluster, environment: Environment, entry: Entry) -> ObjectResult:
    try:
        live = await cluster.read(entry.api_version, entry.key)
        owner = stamped_environment(live)
        if live is not None and owner not in (None, environment.name):
            message = f"now applied by environment {owner!r}; left alone and no longer tracked"
            return ObjectResult(entry.key, Action.PRUNE, Outcome.SKIPPED, message=message)
        if live is None or not await cluster.delete(entry.api_version, entry.key):
            return ObjectResult(entry.key, Action.PRUNE, Outcome.PRUNED, message="already gone")
    except ClusterError as exc:
        return ObjectResult(entry.key, Action.PRUNE, Outcome.FAILED, message=str(exc))
    return ObjectResult(entry.key, Action.PRUNE, Outcome.PRUNED)
