"""One drift check: render a commit, ask the cluster about each object, call the core."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bot.clusters.directory import ClusterDirectory
from bot.clusters.errors import ClusterError
from bot.core.audit import AuditEntry
from bot.core.controllerapply import controller_apply
from bot.core.drifts import EnvironmentDrift, drift_of, with_ledger
from bot.core.livediffs import prune_changes
from bot.core.repoconfig import Environment
from bot.git.repos import GitRepo
from bot.renderers import render_failure
from bot.stages.live_preview import Survey, survey_environment
from bot.stages.plan import Checks, render_environment

NOT_CONFIGURED = (
    "the bot has no connection to cluster {cluster!r} configured (GITOPS_BOT_CLUSTERS), "
    "so this environment cannot be compared"
)


async def check_environment(
    repo: GitRepo,
    commit: str,
    environment: Environment,
    checks: Checks,
    clusters: ClusterDirectory,
    secret_key: bytes,
    unit_cluster: str | None = None,
) -> EnvironmentDrift:
    """The environment's drift against `commit`; a cluster that cannot be asked is a failure,
    never "no drift". Origins come from the objects' annotations (see `add_origins`).

    An Argo CD or Flux unit is compared on `unit_cluster` (its mapped destination), with
    its controller's dry runs; nothing is pruned or healed there: its controller does that.
    """
    cluster = unit_cluster or environment.cluster
    controller = controller_apply(environment) if unit_cluster else None
    base = EnvironmentDrift(environment.name, cluster, commit)
    if not clusters.knows(cluster):
        return _failed(base, NOT_CONFIGURED.format(cluster=cluster))
    loaded, findings = await render_environment(repo, commit, environment, checks, check=False)
    failure = render_failure(findings)
    if failure is not None:
        return _failed(base, f"cannot render commit {commit[:12]}: {failure}")
    try:
        connection = await clusters.connect(cluster)
        survey = await survey_environment(connection, environment, loaded, commit, controller)
    except ClusterError as exc:  # unreachable, unauthorized, a bad kubeconfig
        return _failed(base, f"cannot compare with cluster {cluster!r}: {exc}")
    return _drift(base, survey, environment, secret_key)


def _drift(
    base: EnvironmentDrift, survey: Survey, environment: Environment, secret_key: bytes
) -> EnvironmentDrift:
    sources = {o.observation.key: o.manifest.source for o in survey.observed}
    leftovers = prune_changes(survey.prune, survey.lives, secret_key)
    drift = drift_of(
        base,
        (o.observation for o in survey.observed),
        leftovers,
        rules=environment.drift_ignore,
        secret_key=secret_key,
        sources=sources,
    )
    if survey.findings:  # without the inventory, what prune would still delete is unknown
        return _failed(drift, "; ".join(finding.message for finding in survey.findings))
    return drift


def _failed(drift: EnvironmentDrift, failure: str) -> EnvironmentDrift:
    return replace(drift, failure=failure)


def add_origins(drift: EnvironmentDrift, ledger: Sequence[AuditEntry]) -> EnvironmentDrift:
    """Links to the PRs behind drifted objects that their annotations do not give."""
    if all(d.origin is not None and d.origin.url for d in drift.objects):
        return drift
    return with_ledger(drift, ledger)
