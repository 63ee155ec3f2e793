"""Applying one environment at one commit: render, check, then apply (or plan a dry apply)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.clusters.directory import ClusterDirectory
from bot.clusters.errors import ClusterError
from bot.core.applies import ApplyResult, ObjectResult, Outcome, object_digest
from bot.core.diffs import Action
from bot.core.findings import has_errors
from bot.core.manifests import Manifest
from bot.core.repoconfig import Environment
from bot.core.rollouts import Stamp
from bot.git.repos import GitRepo
from bot.stages.apply.cluster import apply_environment
from bot.stages.plan import Checks, render_environment

FINDINGS_REFUSAL = "the commit has error findings, so nothing was applied; fix them in a new PR"


@dataclass(frozen=True)
class DeployContext:
    """Who and what an apply is for: it ends up on every object and in the audit trail."""

    commit: str
    pr_number: int | None = None
    pr_url: str | None = None

    def stamp(self, environment: str) -> Stamp:
        number = f"#{self.pr_number}" if self.pr_number is not None else ""
        return Stamp(environment, self.commit, self.pr_url or number)


async def deploy_environment(
    repo: GitRepo,
    environment: Environment,
    checks: Checks,
    context: DeployContext,
    *,
    clusters: ClusterDirectory | None = None,
) -> ApplyResult:
    """Apply the environment as the commit declares it.

    When `clusters` has a connection for the environment's cluster this is a real
    server-side apply followed by prune. Without one it is a dry apply: the result lists
    every object the commit declares as PLANNED, and nothing is sent anywhere.
    """
    loaded, findings = await render_environment(repo, context.commit, environment, checks)
    live = clusters is not None and clusters.knows(environment.cluster)
    base = ApplyResult(environment.name, environment.cluster, context.commit, dry_run=not live)
    if has_errors(findings):
        return replace(base, failure=FINDINGS_REFUSAL)
    manifests = tuple(sorted(loaded.manifests, key=lambda m: m.key))
    if clusters is None or not live:
        return replace(base, objects=_planned(manifests))
    try:
        connection = await clusters.connect(environment.cluster)
        objects, failure = await apply_environment(
            connection, environment, manifests, context.stamp(environment.name)
        )
    except ClusterError as exc:
        return replace(base, failure=f"nothing was applied: {exc}")
    return replace(base, objects=objects, failure=failure)


def _planned(manifests: tuple[Manifest, ...]) -> tuple[ObjectResult, ...]:
    return tuple(
        ObjectResult(m.key, Action.CREATE, Outcome.PLANNED, object_digest(m.body))
        for m in manifests
    )
