"""The one audited apply. Merges, catch-up, self-heal and break-glass all apply through
here: under the environment's lock (renewed while the apply runs), with the same
environment key, never an older commit over a newer one, one merge applied once per
environment, the applied commit recorded (dry applies too), one ledger record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TypeVar

from bot import __version__
from bot.clusters.directory import ClusterDirectory
from bot.core.applies import ApplyResult
from bot.core.audit import (
    AuditRecord,
    Authority,
    Span,
    applies_once_per_commit,
    entry_for,
    superseded_entry,
)
from bot.core.ledgerchain import LedgerKey
from bot.core.repoconfig import Environment
from bot.git.mirrors import MirrorError, is_ancestor
from bot.git.repos import GitRepo
from bot.stages.apply.deploy import DeployContext, deploy_environment
from bot.stages.plan import Checks
from bot.store.ledger import iso_time
from bot.store.ports import ApplyRecords, EnvironmentLocks, StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")
# Whether the environment already runs a commit newer than the one given.
NewerCheck = Callable[[str], Awaitable[bool]]


class EnvironmentBusy(RuntimeError):
    """Another holder has the environment's apply lock; try again later."""


class EnvironmentLockLost(RuntimeError):
    """The lock ran out mid-apply and another holder took it: this apply stopped and
    recorded nothing; its job runs again."""


@dataclass(frozen=True)
class Ledger:
    """Where an audited apply takes its lock, records its commit and its audit entry; its
    times are the store's (on PostgreSQL the database server's, see store/ports)."""

    store: ApplyRecords
    clusters: ClusterDirectory | None  # None, or an unknown cluster: a dry apply
    lease_seconds: float  # the lock's lease, renewed every third of it while applying
    sealing: LedgerKey | None = None  # the ledger key (settings); None: records are unkeyed


@dataclass(frozen=True)
class AuditedApply:
    """One environment at one commit, and the names its lock and records go under."""

    repo: GitRepo
    commit: str
    environment: Environment
    checks: Checks
    authority: Authority
    key: str  # the environment's name in the store (context.repository_environment_key)
    holder: str  # who holds the lock while this runs: "job-12", "break-glass:alice@host"
    record_key: str | None = None  # a re-run finds its ledger record instead of a second
    position: int | None = None  # the job id that orders applied commits; None: not recorded
    # Break-glass: record the commit at the last apply's position, neither before nor
    # after the merges the server has queued.
    record_in_place: bool = False


@dataclass(frozen=True)
class Applied:
    """An apply's result and the ledger record that holds it."""

    result: ApplyResult
    record: AuditRecord


class Skipped(StrEnum):
    """Why an audited apply applied nothing."""

    SUPERSEDED = "superseded"  # a newer commit runs there (audited as superseded)
    CLAIMED = "claimed"  # another delivery's job has this merge: nothing applied or recorded


async def apply_audited(
    ledger: Ledger, apply: AuditedApply, newer: NewerCheck | None
) -> Applied | Skipped:
    """Take the environment's lock, keep it while the apply runs, and apply (see
    apply_locked). EnvironmentBusy when another holder has it; EnvironmentLockLost when
    it was taken over meanwhile."""
    work = partial(apply_locked, ledger, apply, newer)
    return await while_locked(ledger, apply.key, apply.holder, work)


async def while_locked(
    ledger: Ledger, key: str, holder: str, work: Callable[[], Awaitable[T]]
) -> T:
    """Run `work` holding the environment's lock, renewed every third of its lease."""
    if not await ledger.store.lock_environment(key, holder, ledger.lease_seconds):
        raise EnvironmentBusy(f"environment {key!r} is being applied by another job")
    try:
        return await _renewed(ledger, key, holder, work())
    finally:
        await ledger.store.unlock_environment(key, holder)


async def _renewed(ledger: Ledger, key: str, holder: str, work: Awaitable[T]) -> T:
    """`work`'s result; when a renewal finds the lock taken, `work` is cancelled (a
    cluster apply stops between requests) and EnvironmentLockLost raised."""
    running = asyncio.ensure_future(work)
    renewing = asyncio.ensure_future(_renew_until_lost(ledger, key, holder))
    try:
        await asyncio.wait((running, renewing), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this task is cancelled: neither outlives it
        lost = renewing.done() and not running.done()
        for task in (running, renewing):
            task.cancel()
        await asyncio.gather(running, renewing, return_exceptions=True)
    if lost:
        raise EnvironmentLockLost(
            f"the lock on environment {key!r} was taken over while {holder} applied it; "
            "the apply stopped and will run again"
        )
    return running.result()


async def _renew_until_lost(ledger: Ledger, key: str, holder: str) -> None:
    """Renew the lock every third of its lease; return once another holder has it."""
    while True:
        await asyncio.sleep(ledger.lease_seconds / 3)
        try:
            if not await ledger.store.lock_environment(key, holder, ledger.lease_seconds):
                return
        except StoreError as exc:  # the lock may still hold: try again next time
            log.warning("could not renew the lock on %s: %s", key, exc)


async def apply_locked(
    ledger: Ledger, apply: AuditedApply, newer: NewerCheck | None
) -> Applied | Skipped:
    """Apply under a lock the caller holds; the audit record is written before the lock
    goes, so the ledger lists an environment's applies in the order they happened.
    Skipped when another delivery's job has this merge (nothing applied or recorded
    again), or when `newer` says a newer commit already runs there (audited)."""
    if not await _claimed(ledger, apply):
        return Skipped.CLAIMED
    started = await ledger.store.now()
    if newer is not None and await newer(apply.commit):
        env = apply.environment
        skipped = ApplyResult(env.name, env.cluster, apply.commit, dry_run=False)
        await _audit(ledger, apply, skipped, started, superseded=True)
        return Skipped.SUPERSEDED
    pull = apply.authority
    context = DeployContext(apply.commit, pull.pr_number, pull.pr_url)
    result = await deploy_environment(
        apply.repo, apply.environment, apply.checks, context, clusters=ledger.clusters
    )
    if result.succeeded:  # a dry apply too: the ordering check needs it without a cluster
        await _record_applied(ledger, apply)
    return Applied(result, await _audit(ledger, apply, result, started))


async def _claimed(ledger: Ledger, apply: AuditedApply) -> bool:
    """Whether this apply may go on: always for self-heal and break-glass; for a merge,
    when its claim on (environment, commit) is this holder's (a re-run's too)."""
    if not applies_once_per_commit(apply.authority.trigger):
        return True
    claimant = await ledger.store.claim_merge(apply.key, apply.commit, apply.holder)
    if claimant != apply.holder:
        log.info("%s at %s is %s's to apply: not applied again", apply.key, apply.commit, claimant)
    return claimant == apply.holder


async def _record_applied(ledger: Ledger, apply: AuditedApply) -> None:
    position = apply.position
    if apply.record_in_place:
        last = await ledger.store.last_applied(apply.key)
        position = last.position if last is not None else 0
    if position is not None:
        await ledger.store.record_applied(apply.key, apply.commit, position)


async def _audit(
    ledger: Ledger,
    apply: AuditedApply,
    result: ApplyResult,
    started: float,
    superseded: bool = False,
) -> AuditRecord:
    span = Span(iso_time(started), iso_time(await ledger.store.now()), __version__)
    entry = entry_for(result, apply.authority, span)
    return await ledger.store.add_audit(
        superseded_entry(entry) if superseded else entry, apply.record_key, ledger.sealing
    )


async def runs_newer(
    store: EnvironmentLocks,
    key: str,
    repo: GitRepo,
    commit: str,
    fetch: Callable[[str], Awaitable[None]],
) -> bool:
    """Whether the environment already runs a descendant of `commit`: never go back.
    `fetch` brings the applied commit into `repo` when it is not there yet."""
    last = await store.last_applied(key)
    if last is None or last.commit == commit:
        return False
    try:
        await fetch(last.commit)
    except MirrorError:
        return False  # history was rewritten: the default branch is what counts
    return await is_ancestor(repo, commit, last.commit)
