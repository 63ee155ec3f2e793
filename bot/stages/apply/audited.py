"""One audited apply: under the environment's lock, never an older commit over a newer
one, one ledger record. Merges, self-heal and break-glass all apply through here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot import __version__
from bot.clusters.directory import ClusterDirectory
from bot.core.applies import ApplyResult
from bot.core.audit import AuditRecord, Authority, Span, entry_for, superseded_entry
from bot.core.ledgerchain import LedgerKey
from bot.core.repoconfig import Environment
from bot.git.mirrors import MirrorError, is_ancestor
from bot.git.repos import GitRepo
from bot.stages.apply.deploy import DeployContext, deploy_environment
from bot.stages.plan import Checks
from bot.store.ledger import iso_time
from bot.store.ports import ApplyRecords, EnvironmentLocks

# Whether the environment already runs a commit newer than the one given.
NewerCheck = Callable[[str], Awaitable[bool]]


class EnvironmentBusy(RuntimeError):
    """Another holder has the environment's apply lock; try again later."""


@dataclass(frozen=True)
class Ledger:
    """Where an audited apply takes its lock, records its commit and its audit entry."""

    store: ApplyRecords
    clusters: ClusterDirectory | None  # None, or an unknown cluster: a dry apply
    clock: Callable[[], float]
    lease_seconds: float
    sealing: LedgerKey | None = None  # the ledger key (settings); None: records are unkeyed


@dataclass(frozen=True)
class AuditedApply:
    """One environment at one commit, and the names its lock and records go under."""

    repo: GitRepo
    commit: str
    environment: Environment
    checks: Checks
    authority: Authority
    key: str  # the environment's name in the store: its lock and its applied commit
    holder: str  # who holds the lock while this runs: "job-12", "break-glass:alice"
    record_key: str | None = None  # a re-run finds its ledger record instead of a second
    position: int | None = None  # the job id that orders applied commits; None: not recorded


@dataclass(frozen=True)
class Applied:
    """An apply's result and the ledger record that holds it."""

    result: ApplyResult
    record: AuditRecord


@asynccontextmanager
async def environment_lock(ledger: Ledger, key: str, holder: str) -> AsyncIterator[None]:
    """Hold the environment's apply lock for the block, or raise EnvironmentBusy."""
    if not await ledger.store.lock_environment(key, holder, ledger.lease_seconds):
        raise EnvironmentBusy(f"environment {key!r} is being applied by another job")
    try:
        yield
    finally:
        await ledger.store.unlock_environment(key, holder)


async def apply_audited(
    ledger: Ledger, apply: AuditedApply, newer: NewerCheck | None
) -> Applied | None:
    """Take the environment's lock and apply (see apply_locked)."""
    async with environment_lock(ledger, apply.key, apply.holder):
        return await apply_locked(ledger, apply, newer)


async def apply_locked(
    ledger: Ledger, apply: AuditedApply, newer: NewerCheck | None
) -> Applied | None:
    """Apply under a lock the caller holds; the audit record is written before the lock
    goes, so the ledger lists an environment's applies in the order they happened. None
    when `newer` says a newer commit already runs there (audited as superseded)."""
    started = ledger.clock()
    if newer is not None and await newer(apply.commit):
        env = apply.environment
        skipped = ApplyResult(env.name, env.cluster, apply.commit, dry_run=False)
        await _audit(ledger, apply, skipped, started, superseded=True)
        return None
    pull = apply.authority
    context = DeployContext(apply.commit, pull.pr_number, pull.pr_url)
    result = await deploy_environment(
        apply.repo, apply.environment, apply.checks, context, clusters=ledger.clusters
    )
    if result.succeeded and not result.dry_run and apply.position is not None:
        await ledger.store.record_applied(apply.key, apply.commit, apply.position)
    return Applied(result, await _audit(ledger, apply, result, started))


async def _audit(
    ledger: Ledger,
    apply: AuditedApply,
    result: ApplyResult,
    started: float,
    superseded: bool = False,
) -> AuditRecord:
    span = Span(iso_time(started), iso_time(ledger.clock()), __version__)
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
