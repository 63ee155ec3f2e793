"""The drift job: check each environment of a watched repository, heal where allowed, report."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import partial
from typing import Any

from bot.core.audit import Result
from bot.core.controllerapply import NO_CONTROLLER_CLUSTERS
from bot.core.drifts import DriftState, EnvironmentDrift
from bot.core.identities import RepoIdentity
from bot.core.repoconfig import ConfigError, Environment
from bot.events import Repository
from bot.git.repos import GitRepo
from bot.renderers import render_options
from bot.stages.apply.audited import EnvironmentBusy, runs_newer, while_locked
from bot.stages.drift import add_origins, check_environment
from bot.stages.drift_reports import record_in_store, record_metrics, report_to_forge
from bot.stages.plan import CONTROLLED, Checks, load_checks
from bot.stages.schema_sources import server_schemas
from bot.stages.unit_drift import mapped_units
from bot.store.ports import Job, NewJob
from bot.workflows.context import Failure, Services, ledger, repository_environment_key
from bot.workflows.notify import notify_drift
from bot.workflows.self_heal import TRIGGER, Target, heal

log = logging.getLogger(__name__)
DRIFT_KIND = "drift"
HEAL_RETRY_SECONDS = 3600.0


@dataclass(frozen=True)
class DriftCheck:
    """A timer's request: compare every environment of `repo` with its default branch."""

    repo: Repository


def drift_job(repo: Repository) -> NewJob:
    """Checks of one repository coalesce: one runs at a time, a waiting one is replaced."""
    payload = json.dumps({"repo": dataclasses.asdict(repo)}, sort_keys=True)
    return NewJob(DRIFT_KIND, payload, f"{DRIFT_KIND}:{repo.forge}:{repo.slug}")


def drift_check_from_data(data: Mapping[str, Any]) -> DriftCheck:
    return DriftCheck(Repository(**data["repo"]))


def drift_context(check: DriftCheck) -> dict[str, Any]:
    """What log lines of a drift job say it is about."""
    return {"forge": check.repo.forge, "repo": check.repo.slug}


class DriftOutcome(StrEnum):
    DRIFTED = "drifted"  # the worst state found, in this order
    UNKNOWN = "unknown"
    IN_SYNC = "in-sync"
    NOTHING_TO_CHECK = "nothing-to-check"  # no environment has a configured cluster
    REFUSED = "refused"  # the head's .gitops-bot.yaml cannot be used


async def check_drift(services: Services, check: DriftCheck, job: Job) -> DriftOutcome:
    """Every environment with a configured cluster; a failure to report retries the job."""
    repo = check.repo
    forge = services.forges.forge_for(repo)
    head = await forge.branch_head(repo, repo.default_branch)
    mirror = await services.mirrors.fetch(repo, (head,), await forge.git_auth_header(repo))
    try:
        options = render_options(services.settings, services.offload)
        schemas = server_schemas(services.settings, services.clusters)
        rules = services.settings.policy_rules
        # Without a config, its Argo CD and Flux units, if any destination is mapped.
        units = services.settings.controller_clusters != NO_CONTROLLER_CLUSTERS
        checks = await load_checks(
            mirror, head, services.catalogs, options, schemas, rules, CONTROLLED if units else None
        )
    except ConfigError as exc:
        log.warning("drift check of %s: %s cannot be used: %s", repo.slug, head[:12], exc)
        return DriftOutcome.REFUSED
    states = []
    for environment in checks.config.environments:
        if services.clusters is None or not services.clusters.knows(environment.cluster):
            continue  # a dry-apply environment: there is no live state to compare
        key = repository_environment_key(repo, environment.name)
        target = Target(repo, mirror, head, environment, checks, job, key)
        drift = await _locked(services, target)
        if drift is not None:
            states.append(await _report(services, job, repo, key, drift))
    for unit, cluster in await _mapped_units(services, repo, mirror, head, checks):
        key = repository_environment_key(repo, unit.name)
        drift = await _check_unit(services, mirror, head, unit, checks, cluster)
        states.append(await _report(services, job, repo, key, drift))
    return _summary(states)


async def _report(
    services: Services, job: Job, repo: Repository, key: str, drift: EnvironmentDrift
) -> DriftState:
    """Metrics, the store, the forge and the notifications hear of one drift result."""
    record_metrics(services.metrics, repo, drift, services.clock())
    await record_in_store(services.store, key, drift, services.clock())
    report = await report_to_forge(services.forges.forge_for(repo), repo, drift)
    await notify_drift(services, job, repo, drift, report)
    return drift.state


async def _mapped_units(
    services: Services, repo: Repository, mirror: GitRepo, head: str, checks: Checks
) -> tuple[tuple[Environment, str], ...]:
    """The Argo CD and Flux units of the head whose destination maps to a cluster."""
    settings = services.settings
    if services.clusters is None or settings.controller_clusters == NO_CONTROLLER_CLUSTERS:
        return ()
    identity = RepoIdentity(
        (repo.clone_url,), branches=(repo.default_branch,), clusters=settings.argocd_clusters
    )
    return await mapped_units(
        mirror, head, checks, identity, settings.controller_clusters, services.clusters
    )


async def _check_unit(
    services: Services,
    mirror: GitRepo,
    head: str,
    unit: Environment,
    checks: Checks,
    cluster: str,
) -> EnvironmentDrift:
    """A unit's drift, with no lock and no heal: its controller applies, never the bot."""
    assert services.clusters is not None
    key = services.settings.fingerprint_key
    return await check_environment(mirror, head, unit, checks, services.clusters, key, cluster)


async def _locked(services: Services, target: Target) -> EnvironmentDrift | None:
    """Check (and heal) under the environment's apply lock, renewed as an apply's is, so a
    check never sees an apply half done; None when an apply holds the lock or the branch
    moved on meanwhile."""
    holder = f"job-{target.job.id}"
    try:
        work = partial(_check_unless_behind, services, target)
        return await while_locked(ledger(services), target.key, holder, work)
    except EnvironmentBusy:
        log.info("drift check of %s skipped: it is being applied", target.key)
        return None


async def _check_unless_behind(services: Services, target: Target) -> EnvironmentDrift | None:
    if await _behind(services, target):
        log.info("drift check of %s skipped: a newer commit is applied", target.key)
        return None
    return await _checked(services, target)


async def _checked(services: Services, target: Target) -> EnvironmentDrift:
    environment = target.environment
    drift = await _check(services, target)
    if drift.state is DriftState.DRIFTED and environment.self_heal:
        held = await _heal_failed_lately(services, target)
        if held:
            drift = replace(drift, heal_held=held)
        else:
            result = await heal(services, target, drift)
            drift = replace(await _check(services, target), heal=result)
    last = await services.store.last_applied(target.key)
    applied = last.commit if last is not None and last.commit != target.commit else None
    drift = replace(drift, self_heal=environment.self_heal, applied_commit=applied)
    if not drift.objects:
        return drift
    ledger = await services.store.audit_records(environment.name)
    repository = f"{target.repo.forge}:{target.repo.slug}"
    return add_origins(drift, [r.entry for r in ledger if r.entry.repository == repository])


async def _heal_failed_lately(services: Services, target: Target) -> str:
    """Why not to heal now: a self-heal of the same commit failed within the hour. The
    cause (a conflict, a refused object) rarely goes away by itself, and each attempt
    would add a failed record to the audit ledger at every check."""
    since = await services.store.now() - HEAL_RETRY_SECONDS
    records = await services.store.audit_records(target.environment.name, since)
    repository = f"{target.repo.forge}:{target.repo.slug}"
    for record in reversed(records):
        entry = record.entry
        if entry.repository != repository:
            continue
        if (
            entry.trigger == TRIGGER
            and entry.commit == target.commit
            and entry.result == Result.FAILED
        ):
            return (
                f"the self-heal of {target.commit[:12]} failed (audit record "
                f"{record.sequence}): {entry.message or 'objects failed'}; it is tried again "
                "an hour later, or sooner once a merge applies a newer commit"
            )
        return ""  # the newest record is another apply: heal
    return ""


async def _check(services: Services, target: Target) -> EnvironmentDrift:
    assert services.clusters is not None
    return await check_environment(
        target.mirror,
        target.commit,
        target.environment,
        target.checks,
        services.clusters,
        services.settings.fingerprint_key,
    )


async def _behind(services: Services, target: Target) -> bool:
    """Whether the environment already runs a commit newer than the head this job saw."""

    async def fetch(commit: str) -> None:
        forge = services.forges.forge_for(target.repo)
        auth = await forge.git_auth_header(target.repo)
        await services.mirrors.fetch(target.repo, (commit,), auth)

    return await runs_newer(services.store, target.key, target.mirror, target.commit, fetch)


def _summary(states: list[DriftState]) -> DriftOutcome:
    for state in (DriftState.DRIFTED, DriftState.UNKNOWN, DriftState.IN_SYNC):
        if state in states:
            return DriftOutcome(str(state))
    return DriftOutcome.NOTHING_TO_CHECK


class CheckDrift:
    """A timer's drift check of one repository; its failures are logged and retried."""

    kind = DRIFT_KIND

    def decode(self, data: Mapping[str, Any]) -> DriftCheck:
        return drift_check_from_data(data)

    def log_context(self, work: DriftCheck) -> dict[str, Any]:
        return drift_context(work)

    async def run(self, services: Services, work: DriftCheck, job: Job) -> DriftOutcome:
        return await check_drift(services, work, job)

    async def report_failure(self, services: Services, work: DriftCheck, failure: Failure) -> None:
        return None  # no pull request to tell; the drift metrics show the check is failing


WORKFLOW = CheckDrift()
