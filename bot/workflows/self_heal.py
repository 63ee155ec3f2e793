"""Self-heal: re-apply the default branch where drift was found, audited like a merge."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.core.applies import ApplyResult
from bot.core.audit import Authority, Trigger
from bot.core.drifts import EnvironmentDrift, may_take_over
from bot.core.repoconfig import Environment
from bot.events import Repository
from bot.git.repos import GitRepo
from bot.stages.apply.audited import AuditedApply, Skipped, apply_locked
from bot.stages.approvals import read_approvals
from bot.stages.plan import Checks
from bot.store.ports import Job
from bot.workflows.context import Services, ledger

TRIGGER = Trigger.SELF_HEAL


@dataclass(frozen=True)
class Target:
    """One environment of a watched repository, at the default branch's head."""

    repo: Repository
    mirror: GitRepo
    commit: str
    environment: Environment
    checks: Checks
    job: Job
    key: str  # the store's name for the environment (its lock, its applied commit)


async def heal(services: Services, target: Target, drift: EnvironmentDrift) -> ApplyResult:
    """Apply the head through the one audited apply; the caller holds the lock and has
    checked that no newer commit runs there.

    Fields changed by hand are taken back (that is what healing means) unless that would
    also take back an ignored field another manager owns; then conflicts fail as on merge.
    """
    forge = services.forges.forge_for(target.repo)
    pull = await forge.pull_request_for_commit(target.repo, target.commit)
    approvals = await read_approvals(forge, target.repo, pull)
    environment = target.environment
    force = may_take_over(drift, environment.force_conflicts)
    authority = Authority(
        Trigger.SELF_HEAL,
        repository=f"{target.repo.forge}:{target.repo.slug}",
        author=pull.author if pull else None,
        pr_number=pull.number if pull else None,
        pr_url=pull.url if pull else None,
        approvers=approvals.approvers,
        approvals_unknown=approvals.unknown,
    )
    apply = AuditedApply(
        target.mirror,
        target.commit,
        replace(environment, force_conflicts=force),
        target.checks,
        authority,
        target.key,
        holder=f"job-{target.job.id}",
        record_key=f"job-{target.job.id}:{target.key}:{TRIGGER}",
        position=target.job.id,
    )
    applied = await apply_locked(ledger(services), apply, newer=None)
    assert not isinstance(applied, Skipped)  # self-heal claims no merge and checks no order
    result = applied.result
    services.metrics.self_heals.labels("applied" if result.succeeded else "failed").inc()
    return result
