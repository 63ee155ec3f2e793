"""Pull request previews: the current head's merge result planned, one sticky comment + a check."""

from __future__ import annotations

import logging
from dataclasses import replace
from enum import StrEnum

from bot.core.comments import render_plan, unpreviewed_count
from bot.core.controls import plain
from bot.core.findings import Finding, Severity, has_errors
from bot.core.identities import RepoIdentity
from bot.core.markdown import code, escape, marker
from bot.core.plans import Plan
from bot.core.supersession import stale_heads, superseded
from bot.events import PullRequestChanged
from bot.forges.ports import (
    Annotation,
    CheckReport,
    CheckState,
    Forge,
    ForgeError,
    PullRequest,
)
from bot.renderers import RenderOptions, render_options
from bot.stages.live_preview import LivePreviewer
from bot.stages.merge_preview import current_pull, merge_target
from bot.stages.plan import plan_change
from bot.stages.proposals import rollback_notes
from bot.stages.schema_sources import server_schemas
from bot.stages.unit_live import UnitLivePreviewer
from bot.store.ports import Job
from bot.workflows.context import EventWorkflow, Failure, Services, job_for

log = logging.getLogger(__name__)
PLAN_KIND = "plan"
FORK_NOTE = (
    "This pull request comes from a fork: it is previewed against Git only, without "
    "cluster credentials, and nothing from it is ever applied."
)


class PlanOutcome(StrEnum):
    READY = "ready"
    BLOCKED = "blocked"  # the plan has errors or could not be made: the check fails
    SUPERSEDED = "superseded"  # a newer head is queued: its plan, not this one, gets posted


async def preview_pull_request(
    services: Services, event: PullRequestChanged, job: Job
) -> PlanOutcome:
    """Plan the pull request's current head (asked of the forge: the delivery's may be
    stale) as the merge would produce it; a plan overtaken by a newer head is dropped."""
    forge = services.forges.forge_for(event.repo)
    pull = await current_pull(forge, event.repo, event.number, services.sleep)
    await conclude_stale_checks(forge, event, pull.head_sha)
    event = current_event(event, pull)
    repo, head = event.repo, event.head_sha
    await forge.open_check(repo, head, pending_check(event))
    auth = await forge.git_auth_header(repo)
    target, mirror = await merge_target(services.mirrors, repo, pull, auth)
    plan = await plan_change(
        mirror,
        target.base,
        target.rendered,
        services.settings.fingerprint_key,
        catalogs=services.catalogs,
        render_options=preview_render_options(services, event),
        live=live_previewer(services, event),
        server_schemas=server_schemas(services.settings, services.clusters),
        relaxation=services.settings.policy_rules,
        identity=RepoIdentity(
            (repo.clone_url,),
            branches=(repo.default_branch,),
            clusters=services.settings.argocd_clusters,
        ),
        unit_live=unit_live_previewer(services, event),
    )
    notes = (target.note, *plan.notes, *((FORK_NOTE,) if event.from_fork else ()))
    rollback = await rollback_notes(mirror, target.base, head)  # a CRD change it crosses
    plan = replace(plan, notes=(*notes, *rollback))
    if await overtaken(services, forge, event, job):
        return PlanOutcome.SUPERSEDED
    await forge.upsert_comment(
        repo, event.number, PLAN_KIND, render_plan(plan, forge.comment_limit)
    )
    await forge.report_check(repo, head, plan_check(plan, head))
    result = PlanOutcome.BLOCKED if plan.blocking else PlanOutcome.READY
    services.metrics.plans.labels(result).inc()
    return result


def current_event(event: PullRequestChanged, pull: PullRequest) -> PullRequestChanged:
    """The delivery's event, brought to the forge's current head and base; a fork stays
    a fork if either says so."""
    return replace(
        event,
        base_sha=pull.base_sha,
        head_sha=pull.head_sha,
        from_fork=event.from_fork or pull.from_fork,
    )


async def conclude_stale_checks(forge: Forge, event: PullRequestChanged, head: str) -> None:
    """Checks still open on heads older than `head`: the delivery's own head when it is
    stale, and the head its push replaced."""
    for stale in stale_heads(head, event.head_sha, event.replaced_head):
        try:
            await forge.conclude_open_check(event.repo, stale, superseded_check(stale, head))
        except ForgeError as exc:  # e.g. a force-push left the commit behind: gone with it
            log.warning("could not conclude the check of superseded head %s: %s", stale, exc)


async def overtaken(services: Services, forge: Forge, event: PullRequestChanged, job: Job) -> bool:
    """Whether the plan must not be posted: the PR moved on while it was made (its check
    is concluded as superseded and the new head is queued for a plan), or a newer job of
    this PR is queued (it plans the same head and concludes the check)."""
    now = await forge.pull_request(event.repo, event.number)
    if now.head_sha != event.head_sha:
        await forge.conclude_open_check(
            event.repo, event.head_sha, superseded_check(event.head_sha, now.head_sha)
        )
        if not await services.store.is_superseded(job):
            newer = replace(current_event(event, now), replaced_head=event.head_sha)
            await services.store.add_job(job_for(newer))
        return True
    return await services.store.is_superseded(job)


def superseded_check(old: str, current: str) -> CheckReport:
    words = superseded(old, current)
    return CheckReport(CheckState.NEUTRAL, words.title, words.summary)


def live_previewer(services: Services, event: PullRequestChanged) -> LivePreviewer | None:
    """Dry runs against the clusters use the bot's credentials: never for a fork's content."""
    if event.from_fork or services.clusters is None:
        return None
    return LivePreviewer(services.clusters, services.settings.fingerprint_key)


def unit_live_previewer(services: Services, event: PullRequestChanged) -> UnitLivePreviewer | None:
    """The live layer of Argo CD and Flux units: as for environments, never for a fork."""
    if event.from_fork or services.clusters is None:
        return None
    settings = services.settings
    return UnitLivePreviewer(
        services.clusters,
        settings.fingerprint_key,
        settings.controller_clusters,
        settings.argocd_clusters,
    )


def preview_render_options(services: Services, event: PullRequestChanged) -> RenderOptions:
    """The server's render bounds; a fork's content never gets network access."""
    options = render_options(services.settings, services.offload)
    return replace(options, allow_network=False) if event.from_fork else options


def pending_check(event: PullRequestChanged) -> CheckReport:
    return CheckReport(
        CheckState.PENDING,
        "Planning",
        f"Planning {code(event.head_sha[:12])} against {code(event.base_sha[:12])}.",
    )


def plan_check(plan: Plan, head: str | None = None) -> CheckReport:
    """The check run a plan gets: failure on any error or on a plan that could not be made."""
    findings = plan.all_findings
    failed = plan.blocking or has_errors(findings)
    errors = sum(f.severity is Severity.ERROR for f in findings)
    title = (
        "Could not plan"
        if plan.failure
        else f"{errors} errors, {len(findings) - errors} warnings"
        if findings
        else "No findings"
    )
    if plan.unpreviewed and not failed:
        title = f"{unpreviewed_count(plan)} not previewed; {title[0].lower()}{title[1:]}"
    lines = [f"Plan of {code(plan.head[:12])} against {code(plan.base[:12])}: see the PR comment."]
    if head is not None and head != plan.head:
        lines[0] = (
            f"Plan of the merge result {code(plan.head[:12])} of {code(head[:12])} into "
            f"{code(plan.base[:12])}: see the PR comment."
        )
    if plan.failure:
        lines.append(f"Could not plan: {escape(plan.failure)}")
    lines += [
        f"- {code(env.environment.name)}: "
        + (
            f"cannot preview: {escape(env.failure)}"
            if env.failure
            else f"{len(env.changes)} objects"
        )
        for env in plan.environments
    ]
    lines += [f"- not previewed: {escape(unit.describe())}" for unit in plan.unpreviewed]
    state = check_state(plan, failed)
    return CheckReport(state, title, "\n".join(lines), finding_annotations(findings))


def check_state(plan: Plan, failed: bool) -> CheckState:
    """Failure blocks; a plan that misses affected applications is neutral: GitHub shows it
    apart from a pass without blocking the merge (the controllers deploy, and the bot cannot
    judge what it did not see); GitLab's status for it is `skipped`."""
    if failed:
        return CheckState.FAILURE
    return CheckState.NEUTRAL if plan.unpreviewed else CheckState.SUCCESS


def finding_annotations(findings: tuple[Finding, ...]) -> tuple[Annotation, ...]:
    """One annotation per finding that names a file (the others are in the summary), in
    one order whatever order the findings came in: the same plan writes the same check."""
    annotations = [
        Annotation(
            path=f.path,
            line=f.line or 1,
            level="failure" if f.severity is Severity.ERROR else "warning",
            title=plain(f"[{f.rule}] {f.subject or ''}".strip()),
            message=plain(f"{f.field}: {f.message}" if f.field else f.message),
        )
        for f in findings
        if f.path
    ]
    return tuple(sorted(annotations, key=annotation_order))


def annotation_order(a: Annotation) -> tuple[str, int, str, str, str]:
    return (a.path, a.line, a.level, a.title, a.message)


def could_not_complete(
    event: PullRequestChanged, error: str, final: bool, attempt: int
) -> tuple[CheckReport, str | None]:
    """What a PR shows while a plan job fails: never a success, always how to retry."""
    error = escape(error)
    if not final:
        summary = f"Attempt {attempt} failed: {error}\n\nThe bot will retry on its own."
        return CheckReport(CheckState.PENDING, "Could not complete yet, will retry", summary), None
    how = "Fix the cause if it is yours, then comment `/gitops plan` on this pull request to retry."
    summary = f"The plan of {code(event.head_sha[:12])} failed {attempt} times: {error}\n\n{how}"
    comment = (
        f"{marker(PLAN_KIND, 1)}\n\n### gitops-bot plan: ⚠️ could not complete\n\n"
        f"{code(event.base_sha[:12])} → {code(event.head_sha[:12])}\n\n{summary}\n"
    )
    return CheckReport(CheckState.FAILURE, "Could not complete", summary), comment


async def failing_event(forge: Forge, event: PullRequestChanged) -> PullRequestChanged:
    """The event a failure is reported on: at the PR's current head, so a stale delivery's
    failure neither reopens an old head's check nor hides the current one's; the
    delivery's own when the forge cannot say (it may be what fails)."""
    try:
        pull = await forge.pull_request(event.repo, event.number)
    except ForgeError:
        return event
    await conclude_stale_checks(forge, event, pull.head_sha)
    return current_event(event, pull)


class PlanPullRequest(EventWorkflow[PullRequestChanged]):
    """Plan a pull request's head; a failed attempt shows on the check, the last one in the
    plan comment too."""

    kind, event_type = PLAN_KIND, PullRequestChanged

    async def run(self, services: Services, work: PullRequestChanged, job: Job) -> PlanOutcome:
        return await preview_pull_request(services, work, job)

    async def report_failure(
        self, services: Services, work: PullRequestChanged, failure: Failure
    ) -> None:
        forge = services.forges.forge_for(work.repo)
        work = await failing_event(forge, work)
        attempt = failure.job.attempts
        check, comment = could_not_complete(work, failure.error, failure.final, attempt)
        await forge.report_check(work.repo, work.head_sha, check)
        if comment is not None:
            await forge.upsert_comment(work.repo, work.number, PLAN_KIND, (comment,))


WORKFLOW = PlanPullRequest()
