"""Catch-up: apply merges whose webhook never arrived (OpenGitOps' "pulled automatically").

Two job kinds. The timer's scan lists the repositories the bot serves (those its App
installations or token can see, plus the configured list) and queues one catch-up per
repository. A catch-up compares the default branch's head with what each apply-on-merge
environment last applied and applies what was missed through the merge workflow, as a
push webhook would have: same environments, same ordering check, same comment,
deployment and ledger record, with the trigger `catch-up`.

A repository's catch-up shares the coalescing key of its merges, so it runs after the
merges already queued (a webhook that did arrive is applied first, then found handled).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from bot.config.watchlist import repository_for
from bot.core.audit import Trigger
from bot.core.catchup import missed_environments
from bot.core.repoconfig import CONFIG_PATH, ConfigError
from bot.events import PushToDefaultBranch, Repository
from bot.forges.ports import BranchMissing, Forge
from bot.stages.catchup import config_at, environment_states
from bot.store.ports import Job, NewJob
from bot.workflows.apply_merge import ApplyOutcome, apply_merge
from bot.workflows.context import Failure, Services, apply_queue, repository_environment_key

log = logging.getLogger(__name__)
SCAN_KIND = "catch-up-scan"
CATCH_UP_KIND = "catch-up"


def scan_job() -> NewJob:
    """One scan at a time; a scan still waiting is replaced by the newer one."""
    return NewJob(SCAN_KIND, "{}", SCAN_KIND)


def catch_up_job(repo: Repository) -> NewJob:
    """A repository's catch-up waits behind its queued merges, and they behind it."""
    payload = json.dumps({"repo": dataclasses.asdict(repo)}, sort_keys=True)
    return NewJob(CATCH_UP_KIND, payload, apply_queue(repo), supersedes=False)


class ScanOutcome(StrEnum):
    QUEUED = "queued"  # a catch-up per served repository
    NOTHING_SERVED = "nothing-served"


class CatchUpOutcome(StrEnum):
    UNCHANGED = "unchanged"  # the head this process last caught up on: nothing asked
    NOT_SERVED = "not-served"  # no .gitops-bot.yaml at the head, or no branch at all
    REFUSED = "refused"  # the head's .gitops-bot.yaml cannot be used
    UP_TO_DATE = "up-to-date"  # every apply-on-merge environment saw the head
    APPLIED = "applied"  # missed environments applied (or superseded)
    FAILED = "failed"  # some missed environment failed: the merged PR says how


async def scan(services: Services) -> ScanOutcome:
    """Queue a catch-up for every served repository, each once."""
    settings = services.settings
    served: dict[tuple[str, str], Repository] = {}
    if settings.catch_up_discover:
        for repo in await services.forges.served_repositories():
            served[(repo.forge, repo.slug)] = repo
    for watched in settings.drift_repositories:  # the configured list: its details win
        repo = repository_for(watched, settings.github_api_url, settings.gitlab_url)
        served[(repo.forge, repo.slug)] = repo
    for key in sorted(served):
        await services.store.add_job(catch_up_job(served[key]))
    return ScanOutcome.QUEUED if served else ScanOutcome.NOTHING_SERVED


async def catch_up(services: Services, repo: Repository, job: Job) -> CatchUpOutcome:
    """Apply the default branch's head where a lost webhook left it unapplied."""
    forge = services.forges.forge_for(repo)
    try:
        head = await forge.branch_head(repo, repo.default_branch)  # 304 while it stays put
    except BranchMissing:  # an empty repository: nothing was ever merged
        return CatchUpOutcome.NOT_SERVED
    where = f"{repo.forge}:{repo.slug}"
    if services.caught_up.get(where) == head:
        return CatchUpOutcome.UNCHANGED
    outcome = await _catch_up_at(services, forge, repo, head, job)
    services.caught_up[where] = head  # only once done: a failed attempt is tried again
    return outcome


async def _catch_up_at(
    services: Services, forge: Forge, repo: Repository, head: str, job: Job
) -> CatchUpOutcome:
    if not await forge.has_file(repo, head, CONFIG_PATH):
        return CatchUpOutcome.NOT_SERVED
    mirror = await services.mirrors.fetch(repo, (head,), await forge.git_auth_header(repo))
    push = PushToDefaultBranch(repo, head, pusher="")  # who pushed is not known
    try:
        config = await config_at(mirror, head)
    except ConfigError as exc:  # the merged PR learns why nothing is applied, as on a push
        log.warning("catch-up of %s: %s cannot be used: %s", repo.slug, head[:12], exc)
        await apply_merge(services, push, job, Trigger.CATCH_UP, frozenset())
        return CatchUpOutcome.REFUSED
    key = repository_environment_key
    states = await environment_states(services.store, repo, config, head, key)
    missed = missed_environments(head, states)
    if not missed:
        return CatchUpOutcome.UP_TO_DATE
    log.info("catch-up of %s: %s was never applied to %s", repo.slug, head[:12], missed)
    applied = await apply_merge(services, push, job, Trigger.CATCH_UP, frozenset(missed))
    return {
        ApplyOutcome.APPLIED: CatchUpOutcome.APPLIED,
        ApplyOutcome.FAILED: CatchUpOutcome.FAILED,
        ApplyOutcome.REFUSED: CatchUpOutcome.REFUSED,
    }[applied]


def _repo_context(repo: Repository) -> dict[str, Any]:
    return {"forge": repo.forge, "repo": repo.slug}


class CatchUpScan:
    """The timer's scan; a failure (a forge that cannot list) is retried, then logged."""

    kind = SCAN_KIND

    def decode(self, data: Mapping[str, Any]) -> None:
        return None

    def log_context(self, work: None) -> dict[str, Any]:
        return {}

    async def run(self, services: Services, work: None, job: Job) -> ScanOutcome:
        return await scan(services)

    async def report_failure(self, services: Services, work: None, failure: Failure) -> None:
        return None  # no pull request to tell; the next interval scans again


class CatchUp:
    """One repository's catch-up; its failures are retried, and the next interval tries
    again, so a failure to report is not lost."""

    kind = CATCH_UP_KIND

    def decode(self, data: Mapping[str, Any]) -> Repository:
        return Repository(**data["repo"])

    def log_context(self, work: Repository) -> dict[str, Any]:
        return _repo_context(work)

    async def run(self, services: Services, work: Repository, job: Job) -> CatchUpOutcome:
        return await catch_up(services, work, job)

    async def report_failure(self, services: Services, work: Repository, failure: Failure) -> None:
        return None  # the merged PR is not known before the head is; the next interval


SCAN_WORKFLOW = CatchUpScan()
WORKFLOW = CatchUp()
