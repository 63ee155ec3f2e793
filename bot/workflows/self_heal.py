"""Self-heal: re-apply the default branch where drift was found, audited like a merge."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot import __version__
from bot.core.applies import ApplyResult
from bot.core.audit import entry_for
from bot.core.drifts import EnvironmentDrift, may_take_over
from bot.core.repoconfig import Environment
from bot.events import Repository
from bot.git.repos import GitRepo
from bot.stages.apply.deploy import DeployContext, deploy_environment
from bot.stages.plan import Checks
from bot.store.ledger import iso_time
from bot.store.ports import Job
from bot.workflows.context import Services

TRIGGER = "self-heal"


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
    """Apply the head through the same path as a merge; the caller holds the lock.

    Fields changed by hand are taken back (that is what healing means) unless that would
    also take back an ignored field another manager owns; then conflicts fail as on merge.
    """
    forge = services.forges.forge_for(target.repo)
    pull = await forge.pull_request_for_commit(target.repo, target.commit)
    environment = target.environment
    force = may_take_over(drift, environment.force_conflicts)
    started = services.clock()
    result = await deploy_environment(
        target.mirror,
        replace(environment, force_conflicts=force),
        target.checks,
        DeployContext(target.commit, pull.number if pull else None, pull.url if pull else None),
        clusters=services.clusters,
    )
    if result.succeeded and not result.dry_run:
        await services.store.record_applied(target.key, target.commit, target.job.id)
    approvers = await forge.approvers(target.repo, pull.number) if pull else ()
    entry = entry_for(
        result,
        trigger=TRIGGER,
        started_at=iso_time(started),
        finished_at=iso_time(services.clock()),
        bot_version=__version__,
        pr_number=pull.number if pull else None,
        pr_url=pull.url if pull else None,
        author=pull.author if pull else None,
        approvers=approvers,
        repository=f"{target.repo.forge}:{target.repo.slug}",
    )
    await services.store.add_audit(entry, key=f"job-{target.job.id}:{target.key}:{TRIGGER}")
    services.metrics.self_heals.labels("applied" if result.succeeded else "failed").inc()
    return result
