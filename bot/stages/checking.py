"""One render's schema and policy checks as plain data, so a check worker process can run them.

A check pool (bot/stages/checkpool.py) runs `run_checks` in a worker process, away from
the event loop and the GIL of the process that answers webhooks and health checks.
Compiled validators do not pickle, so what crosses is what they are built from: the
Kubernetes version (the catalog is built, and cached, in the worker), the policy files
(parsed again, cached by content), the environment's policy ids and severities once
relaxed, the exemption rules, and the custom resource schemas the server gathered for
this render's kinds (the cluster connection never crosses; its CRDs do, as data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from bot.core.checks import Checked, checked_manifests
from bot.core.customschemas import FirstFound, Kind, SchemaLookup
from bot.core.findings import Severity
from bot.core.manifests import LoadResult, SourceFile
from bot.core.policies import Policy
from bot.core.relaxations import ExemptionRules
from bot.core.schemas import UnknownKinds
from bot.schemas.catalog import catalog_for
from bot.schemas.policysets import parse_policies


@dataclass(frozen=True)
class CheckJob:
    """Everything one render's checks take, none of it holding a connection or a validator."""

    loaded: LoadResult
    texts: Mapping[str, bytes]
    kubernetes_version: str
    policy_files: tuple[SourceFile, ...]
    selected: tuple[tuple[str, Severity], ...]  # the environment's policies, once relaxed
    custom: SchemaLookup
    unknown: UnknownKinds
    exemptions: ExemptionRules | None = None


def run_checks(job: CheckJob) -> Checked:
    """The schema and policy findings of the job's objects, with their exemptions."""
    parsed, _ = parse_policies(job.policy_files)  # cached by content; findings reported at load
    policies = _selected(parsed, job.selected)
    return checked_manifests(
        job.loaded,
        catalog_for(job.kubernetes_version),
        policies,
        job.texts,
        job.unknown,
        job.custom,
        exemptions=job.exemptions,
    )


def selection_of(policies: tuple[Policy, ...]) -> tuple[tuple[str, Severity], ...]:
    """What crosses for an environment's policies: each id and its severity there."""
    return tuple((policy.id, policy.severity) for policy in policies)


def narrowed(lookup: SchemaLookup, kinds: frozenset[Kind]) -> SchemaLookup:
    """`lookup` with its in-memory schemas cut to `kinds`: a cluster may serve hundreds of
    CRDs, and only the render's own kinds need to cross. A schema folder crosses as its
    path (it reads a file when asked)."""
    if isinstance(lookup, FirstFound):
        return FirstFound(tuple(narrowed(inner, kinds) for inner in lookup.lookups))
    if isinstance(lookup, Mapping):
        return {kind: lookup[kind] for kind in kinds if kind in lookup}
    return lookup


def kinds_of(loaded: LoadResult) -> frozenset[Kind]:
    return frozenset((m.api_version, m.key.kind) for m in loaded.manifests)


def _selected(
    policies: tuple[Policy, ...], selected: tuple[tuple[str, Severity], ...]
) -> tuple[Policy, ...]:
    by_id = {policy.id: policy for policy in policies}
    return tuple(replace(by_id[pid], severity=severity) for pid, severity in selected)
