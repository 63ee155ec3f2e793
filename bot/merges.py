"""Merges: apply each environment at the merged commit, under its lock, then report and audit."""

from __future__ import annotations

import html
from dataclasses import dataclass, replace

from bot import __version__
from bot.core.applies import ApplyResult
from bot.core.audit import AuditEntry, entry_for
from bot.core.comments import render_apply
from bot.core.markdown import marker
from bot.core.repoconfig import ConfigError, Environment
from bot.deploys import DeployContext, deploy_environment
from bot.events import PushToDefaultBranch
from bot.forges import DeploymentReport, DeploymentState, Forge, PullRequest
from bot.gitrepo import GitRepo
from bot.logs import log_context
from bot.mirrors import MirrorError, is_ancestor
from bot.renderers import render_options
from bot.services import Services, environment_key
from bot.store import Job
from bot.store.ledger import iso_time
from bot.workflows import Checks, load_checks

APPLY_KIND = "apply"


class EnvironmentBusy(RuntimeError):
    """Another job holds the environment's apply lock; this job is retried later."""


@dataclass(frozen=True)
class Merge:
    """One merge being applied: the push, its job, and the PR and approvals behind it."""

    event: PushToDefaultBranch
    job: Job
    pull: PullRequest | None
    approvers: tuple[str, ...]


async def apply_merge(services: Services, event: PushToDefaultBranch, job: Job) -> str:
    """Apply every apply-on-merge environment at the merge commit; report on the merged PR."""
    forge = services.forges.forge_for(event.repo)
    auth = await forge.git_auth_header(event.repo)
    mirror = await services.mirrors.fetch(event.repo, (event.commit,), auth)
    pull = await forge.pull_request_for_commit(event.repo, event.commit)
    try:
        options = render_options(services.settings, services.offload)
        checks = await load_checks(mirror, event.commit, services.catalogs, options)
    except ConfigError as exc:
        if pull is not None:
            await forge.upsert_comment(
                event.repo, pull.number, APPLY_KIND, (config_refusal(event, str(exc)),)
            )
        return "refused"
    approvers = await forge.approvers(event.repo, pull.number) if pull else ()
    merge = Merge(event, job, pull, approvers)
    results = []
    for env in checks.config.environments:
        if not env.apply_on_merge:
            continue
        with log_context(environment=env.name, cluster=env.cluster):
            result = await _apply_locked(services, mirror, merge, env, checks)
        if result is None:
            continue  # a newer commit is already applied there: audited as superseded
        results.append(result)
        await forge.record_deployment(event.repo, event.commit, deployment_report(result))
        services.metrics.applies.labels(_result(result)).inc()
    if pull is not None and results:
        parts = render_apply(results, forge.comment_limit, APPLY_KIND)
        await forge.upsert_comment(event.repo, pull.number, APPLY_KIND, parts)
    return "applied" if all(r.succeeded for r in results) else "failed"


async def _apply_locked(
    services: Services, mirror: GitRepo, merge: Merge, env: Environment, checks: Checks
) -> ApplyResult | None:
    """Apply one environment under its lock and write its audit record before letting go,
    so the ledger lists the applies of an environment in the order they happened."""
    event, job, pull = merge.event, merge.job, merge.pull
    key, holder = environment_key(event, env.name), f"job-{job.id}"
    store = services.store
    if not await store.lock_environment(key, holder, services.settings.job_lease_seconds):
        raise EnvironmentBusy(f"environment {env.name!r} is being applied by another job")
    try:
        started = services.clock()
        if await _newer_applied(services, mirror, event, key):
            skipped = ApplyResult(env.name, env.cluster, event.commit, dry_run=False)
            await _audit(services, merge, key, skipped, started, superseded=True)
            return None
        context = DeployContext(
            event.commit, pull.number if pull else None, pull.url if pull else None
        )
        result = await deploy_environment(mirror, env, checks, context, clusters=services.clusters)
        if result.succeeded and not result.dry_run:
            await store.record_applied(key, event.commit, job.id)
        await _audit(services, merge, key, result, started)
        return result
    finally:
        await store.unlock_environment(key, holder)


async def _audit(
    services: Services,
    merge: Merge,
    key: str,
    result: ApplyResult,
    started: float,
    superseded: bool = False,
) -> None:
    """One ledger record per job and environment: a job re-run after a crash finds its
    record already there instead of writing a second one."""
    entry = audit_entry(merge, result, iso_time(started), iso_time(services.clock()))
    if superseded:
        entry = replace(
            entry,
            result="superseded",
            message="not applied: the environment already runs a newer commit",
        )
    await services.store.add_audit(entry, key=f"job-{merge.job.id}:{key}")


async def _newer_applied(
    services: Services, mirror: GitRepo, event: PushToDefaultBranch, key: str
) -> bool:
    """Whether the environment already runs a descendant of this commit: never go back."""
    last = await services.store.last_applied(key)
    if last is None or last.commit == event.commit:
        return False
    forge = services.forges.forge_for(event.repo)
    try:
        await services.mirrors.fetch(
            event.repo, (last.commit,), await forge.git_auth_header(event.repo)
        )
    except MirrorError:
        return False  # history was rewritten: the merge on the default branch wins
    return await is_ancestor(mirror, event.commit, last.commit)


def audit_entry(merge: Merge, result: ApplyResult, started: str, finished: str) -> AuditEntry:
    """The ledger entry of a merge's apply: the merged PR's author, else the pusher."""
    pull = merge.pull
    return entry_for(
        result,
        trigger="merge",
        started_at=started,
        finished_at=finished,
        bot_version=__version__,
        pr_number=pull.number if pull else None,
        pr_url=pull.url if pull else None,
        author=pull.author if pull else merge.event.pusher,
        approvers=merge.approvers,
        repository=f"{merge.event.repo.forge}:{merge.event.repo.slug}",
    )


def deployment_report(result: ApplyResult) -> DeploymentReport:
    mode = "dry apply" if result.dry_run else "apply"
    if result.succeeded:
        return DeploymentReport(
            result.environment,
            DeploymentState.SUCCESS,
            f"{mode} of {result.commit[:12]}: {len(result.objects)} objects",
        )
    return DeploymentReport(
        result.environment,
        DeploymentState.FAILURE,
        f"{mode} failed: {result.failure or 'objects failed'}",
    )


def _result(result: ApplyResult) -> str:
    if not result.succeeded:
        return "failed"
    return "dry-run" if result.dry_run else "applied"


def config_refusal(event: PushToDefaultBranch, error: str) -> str:
    return (
        f"{marker(APPLY_KIND, 1)}\n\n### gitops-bot apply: ❌ not applied\n\n"
        f"Commit `{event.commit[:12]}` has a `.gitops-bot.yaml` that cannot be used, so no "
        f"environment was applied:\n\n{html.escape(error, quote=False)}\n\n"
        "Fix the file in a new pull request; merging it applies the environments."
    )


async def report_apply_failure(
    forge: Forge, event: PushToDefaultBranch, error: str, job: Job
) -> None:
    """The merged PR learns that its apply could not complete, and how to retry it."""
    pull = await forge.pull_request_for_commit(event.repo, event.commit)
    if pull is None:
        return
    text = (
        f"{marker(APPLY_KIND, 1)}\n\n### gitops-bot apply: ⚠️ could not complete\n\n"
        f"The apply of `{event.commit[:12]}` failed {job.attempts} times and has stopped: "
        f"{html.escape(error, quote=False)}\n\nOnce the cause is fixed, an operator re-runs it "
        f"with `gitops-bot retry {job.id}`; merging a newer commit applies that one instead."
    )
    await forge.upsert_comment(event.repo, pull.number, APPLY_KIND, (text,))
