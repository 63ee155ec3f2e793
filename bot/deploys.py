"""Applying one environment at one commit: render, check, then apply (or plan a dry apply)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.core.applies import ApplyResult, ObjectResult, Outcome, object_digest
from bot.core.diffs import Action
from bot.core.findings import has_errors
from bot.core.repoconfig import Environment
from bot.gitrepo import GitRepo
from bot.workflows import Checks, render_environment


@dataclass(frozen=True)
class DeployContext:
    """Who and what an apply is for: it ends up on every object and in the audit trail."""

    commit: str
    pr_number: int | None = None
    pr_url: str | None = None


async def deploy_environment(
    repo: GitRepo, environment: Environment, checks: Checks, context: DeployContext
) -> ApplyResult:
    """Apply the environment as the commit declares it.

    Without a cluster connection this is a dry apply: the result lists every object
    the commit declares as PLANNED, and nothing is sent anywhere.
    """
    loaded, findings = await render_environment(repo, context.commit, environment, checks)
    base = ApplyResult(environment.name, environment.cluster, context.commit, dry_run=True)
    if has_errors(findings):
        return ApplyResult(
            **{
                **base.__dict__,
                "failure": (
                    "the commit has error findings, so nothing was applied; fix them in a new PR"
                ),
            }
        )
    objects = tuple(
        ObjectResult(m.key, Action.CREATE, Outcome.PLANNED, object_digest(m.body))
        for m in sorted(loaded.manifests, key=lambda m: m.key)
    )
    return replace(base, objects=objects)
