"""Pull request previews: plan the head against the base, then one sticky comment + a check."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum

from bot.core.comments import render_plan
from bot.core.controls import plain
from bot.core.findings import Finding, Severity, has_errors
from bot.core.gitopsapps import RepoIdentity
from bot.core.markdown import code, escape, marker
from bot.core.plans import Plan
from bot.events import PullRequestChanged
from bot.forges.ports import Annotation, CheckReport, CheckState
from bot.renderers import RenderOptions, render_options
from bot.stages.live_preview import LivePreviewer
from bot.stages.plan import plan_change
from bot.stages.schema_sources import server_schemas
from bot.store.ports import Job
from bot.workflows.context import EventWorkflow, Failure, Services

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
    """Plan every environment and report it; a plan overtaken by a newer head is dropped."""
    forge = services.forges.forge_for(event.repo)
    if not event.base_sha:  # GitLab's merge request event names no base: ask the forge
        pull = await forge.pull_request(event.repo, event.number)
        event = replace(event, base_sha=pull.base_sha)
    repo, head = event.repo, event.head_sha
    await forge.report_check(repo, head, pending_check(event))
    auth = await forge.git_auth_header(repo)
    mirror = await services.mirrors.fetch(repo, (event.base_sha, head), auth)
    plan = await plan_change(
        mirror,
        event.base_sha,
        head,
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
    )
    if event.from_fork:
        plan = replace(plan, notes=(*plan.notes, FORK_NOTE))
    if await services.store.is_superseded(job):
        return PlanOutcome.SUPERSEDED
    await forge.upsert_comment(
        repo, event.number, PLAN_KIND, render_plan(plan, forge.comment_limit)
    )
    await forge.report_check(repo, head, plan_check(plan))
    result = PlanOutcome.BLOCKED if plan.blocking else PlanOutcome.READY
    services.metrics.plans.labels(result).inc()
    return result


def live_previewer(services: Services, event: PullRequestChanged) -> LivePreviewer | None:
    """Dry runs against the clusters use the bot's credentials: never for a fork's content."""
    if event.from_fork or services.clusters is None:
        return None
    return LivePreviewer(services.clusters, services.settings.fingerprint_key)


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


def plan_check(plan: Plan) -> CheckReport:
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
    lines = [f"Plan of {code(plan.head[:12])} against {code(plan.base[:12])}: see the PR comment."]
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
    state = CheckState.FAILURE if failed else CheckState.SUCCESS
    return CheckReport(state, title, "\n".join(lines), finding_annotations(findings))


def finding_annotations(findings: tuple[Finding, ...]) -> tuple[Annotation, ...]:
    """One annotation per finding that names a file; the others are in the summary."""
    return tuple(
        Annotation(
            path=f.path,
            line=f.line or 1,
            level="failure" if f.severity is Severity.ERROR else "warning",
            title=plain(f"[{f.rule}] {f.subject or ''}".strip()),
            message=plain(f"{f.field}: {f.message}" if f.field else f.message),
        )
        for f in findings
        if f.path
    )


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
        attempt = failure.job.attempts
        check, comment = could_not_complete(work, failure.error, failure.final, attempt)
        await forge.report_check(work.repo, work.head_sha, check)
        if comment is not None:
            await forge.upsert_comment(work.repo, work.number, PLAN_KIND, (comment,))


WORKFLOW = PlanPullRequest()
