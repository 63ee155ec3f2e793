"""Merges: apply each environment at the merged commit, under its lock, then report and audit."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from bot.core.applies import ApplyResult
from bot.core.applycomments import render_apply
from bot.core.audit import Authority, Trigger
from bot.core.controls import plain
from bot.core.ledgerchain import Anchor
from bot.core.markdown import code, escape, marker
from bot.core.repoconfig import ConfigError, Environment
from bot.events import PushToDefaultBranch
from bot.forges.ports import DeploymentReport, DeploymentState, Forge, PullRequest
from bot.git.repos import GitRepo
from bot.renderers import render_options
from bot.stages.apply.audited import Applied, AuditedApply, Skipped, apply_audited, runs_newer
from bot.stages.approvals import Approvals, read_approvals
from bot.stages.plan import CONTROLLED, Checks, load_checks
from bot.stages.schema_sources import server_schemas
from bot.store.ports import Job
from bot.telemetry.logs import log_context
from bot.workflows.context import EventWorkflow, Failure, Services, environment_key, ledger
from bot.workflows.notify import notify_applied

APPLY_KIND = "apply"


@dataclass(frozen=True)
class Merge:
    """One merge being applied: the push, its job, and the PR and approvals behind it."""

    event: PushToDefaultBranch
    job: Job
    pull: PullRequest | None
    approvals: Approvals
    trigger: Trigger = Trigger.MERGE  # CATCH_UP when the push never arrived as a webhook


class ApplyOutcome(StrEnum):
    APPLIED = "applied"  # every environment applied (or dry-applied, or superseded)
    FAILED = "failed"  # some environment failed: the merged PR and the deployment say how
    REFUSED = "refused"  # the commit's .gitops-bot.yaml cannot be used: nothing applied


async def apply_merge(
    services: Services,
    event: PushToDefaultBranch,
    job: Job,
    trigger: Trigger = Trigger.MERGE,
    only: frozenset[str] | None = None,
) -> ApplyOutcome:
    """Apply every apply-on-merge environment at the merge commit (those named in `only`,
    when given); report on the merged PR."""
    forge = services.forges.forge_for(event.repo)
    auth = await forge.git_auth_header(event.repo)
    mirror = await services.mirrors.fetch(event.repo, (event.commit,), auth)
    pull = await forge.pull_request_for_commit(event.repo, event.commit)
    try:
        options = render_options(services.settings, services.offload)
        schemas = server_schemas(services.settings, services.clusters)
        rules = services.settings.policy_rules
        # Without a config there is nothing to apply (Argo CD or Flux may manage the
        # repository, see README): no environments, and no refusal on the merged PR.
        checks = await load_checks(
            mirror, event.commit, services.catalogs, options, schemas, rules, CONTROLLED
        )
    except ConfigError as exc:
        if pull is not None:
            await forge.upsert_comment(
                event.repo, pull.number, APPLY_KIND, (config_refusal(event, str(exc)),)
            )
        return ApplyOutcome.REFUSED
    merge = Merge(event, job, pull, await read_approvals(forge, event.repo, pull), trigger)
    results, anchor = [], None
    for env in checks.config.environments:
        if not env.apply_on_merge or (only is not None and env.name not in only):
            continue
        with log_context(environment=env.name, cluster=env.cluster):
            outcome = await _apply_locked(services, mirror, merge, env, checks)
        if outcome is Skipped.CLAIMED:
            continue  # another delivery's job applies (or applied) this merge and reports it
        applied = None if isinstance(outcome, Skipped) else outcome  # None: superseded
        await notify_applied(
            services, job, event, pull, env.name, applied.result if applied else None
        )
        if applied is None:
            continue  # a newer commit runs there: audited, nothing to report on the PR
        result, anchor = applied.result, anchor_of(applied)
        results.append(result)
        report = deployment_report(result, anchor)
        await forge.record_deployment(event.repo, event.commit, report)
        services.metrics.applies.labels(_result(result)).inc()
    if pull is not None and results:
        parts = render_apply(results, forge.comment_limit, APPLY_KIND, anchor)
        await forge.upsert_comment(event.repo, pull.number, APPLY_KIND, parts)
    return ApplyOutcome.APPLIED if all(r.succeeded for r in results) else ApplyOutcome.FAILED


async def _apply_locked(
    services: Services, mirror: GitRepo, merge: Merge, env: Environment, checks: Checks
) -> Applied | Skipped:
    """Apply one environment through the one audited apply; Skipped when superseded or
    when another delivery of this merge has it (the store's claim on environment and commit)."""
    event, job = merge.event, merge.job
    key = environment_key(event, env.name)
    apply = AuditedApply(
        mirror,
        event.commit,
        env,
        checks,
        authority(merge),
        key,
        holder=f"job-{job.id}",
        record_key=f"job-{job.id}:{key}",  # one record per job and environment, re-runs too
        position=job.id,
    )

    async def fetch(commit: str) -> None:
        forge = services.forges.forge_for(event.repo)
        await services.mirrors.fetch(event.repo, (commit,), await forge.git_auth_header(event.repo))

    newer = partial(runs_newer, services.store, key, mirror, fetch=fetch)
    return await apply_audited(ledger(services), apply, newer)


def anchor_of(applied: Applied) -> Anchor:
    """The apply's audit record as the anchor published on the forge."""
    return Anchor(applied.record.sequence, applied.record.hash)


def authority(merge: Merge) -> Authority:
    """A merge's apply is on the merged PR's author's authority, else the pusher's."""
    pull = merge.pull
    return Authority(
        merge.trigger,
        repository=f"{merge.event.repo.forge}:{merge.event.repo.slug}",
        author=pull.author if pull else merge.event.pusher or None,
        pr_number=pull.number if pull else None,
        pr_url=pull.url if pull else None,
        approvers=merge.approvals.approvers,
        approvals_unknown=merge.approvals.unknown,
    )


def deployment_report(result: ApplyResult, anchor: Anchor | None = None) -> DeploymentReport:
    mode = "dry apply" if result.dry_run else "apply"
    if result.succeeded:
        return DeploymentReport(
            result.environment,
            DeploymentState.SUCCESS,
            f"{mode} of {result.commit[:12]}: {len(result.objects)} objects",
            anchor,
        )
    return DeploymentReport(
        result.environment,
        DeploymentState.FAILURE,
        plain(f"{mode} failed: {result.failure or 'objects failed'}"),
        anchor,
    )


def _result(result: ApplyResult) -> str:
    if not result.succeeded:
        return "failed"
    return "dry-run" if result.dry_run else "applied"


def config_refusal(event: PushToDefaultBranch, error: str) -> str:
    return (
        f"{marker(APPLY_KIND, 1)}\n\n### gitops-bot apply: ❌ not applied\n\n"
        f"Commit {code(event.commit[:12])} has a `.gitops-bot.yaml` that cannot be used, so "
        f"no environment was applied:\n\n{escape(error)}\n\n"
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
        f"The apply of {code(event.commit[:12])} failed {job.attempts} times and has stopped: "
        f"{escape(error)}\n\nOnce the cause is fixed, an operator re-runs it "
        f"with `gitops-bot retry {job.id}`; merging a newer commit applies that one instead."
    )
    await forge.upsert_comment(event.repo, pull.number, APPLY_KIND, (text,))


class ApplyMerge(EventWorkflow[PushToDefaultBranch]):
    """Apply a merge; once its last attempt fails, the merged PR learns how to retry it."""

    kind, event_type = APPLY_KIND, PushToDefaultBranch

    async def run(self, services: Services, work: PushToDefaultBranch, job: Job) -> ApplyOutcome:
        return await apply_merge(services, work, job)

    async def report_failure(
        self, services: Services, work: PushToDefaultBranch, failure: Failure
    ) -> None:
        if failure.final:
            forge = services.forges.forge_for(work.repo)
            await report_apply_failure(forge, work, failure.error, failure.job)


WORKFLOW = ApplyMerge()
