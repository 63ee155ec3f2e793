"""The status page's read model: bounded reads of the store, joined per environment."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from bot.core.audit import AuditEntry, AuditRecord
from bot.core.ledgerchain import ChainCursor, LedgerKeys, verify_rows
from bot.core.statuspage import (
    ApplyLine,
    DeadJob,
    DriftStatus,
    EnvironmentStatus,
    LedgerCheck,
    Pull,
    StatusPage,
    commit_of,
    web_link,
)
from bot.store.ports import (
    AppliedCommit,
    DriftCheckRecord,
    HeldLock,
    Job,
    JobQueue,
    JobState,
    StatusReads,
    UnreadableRecord,
)


class StatusStore(StatusReads, JobQueue, Protocol):
    """What the status page reads."""


@dataclass(frozen=True)
class StatusLimits:
    """How much one view reads, whatever the size of the ledger and the job table."""

    environments: int = 500
    applies: int = 30
    dead_jobs: int = 30
    ledger_page: int = 1000  # records read at a time by the chain check
    ledger_pages_per_view: int = 20  # a longer ledger is checked over several views


class LedgerWatch:
    """The ledger's chain check, carried on across views: each view verifies the records
    added since the last one (at most a bounded number), and the check starts over from
    the first record once `recheck_seconds` have passed, so a rewritten old record is
    still found."""

    def __init__(self, recheck_seconds: float, keys: LedgerKeys) -> None:
        self._recheck_seconds = recheck_seconds
        self._keys = keys  # what `audit --verify` trusts: the same verdict here
        self._progress = ChainCursor()
        self._started = 0.0
        self._last_done: LedgerCheck | None = None
        self._lock = asyncio.Lock()

    async def check(self, store: StatusReads, limits: StatusLimits, now: float) -> LedgerCheck:
        async with self._lock:  # one view reads the ledger at a time
            if self._started == 0.0 or now - self._started >= self._recheck_seconds:
                self._progress, self._started = ChainCursor(), now
            complete = await self._advance(store, limits)
            check = LedgerCheck(
                self._progress.checked,
                complete,
                display_time(self._started),
                None if self._progress.problem is None else str(self._progress.problem),
            )
            if complete or check.problem is not None:
                self._last_done = check
            return check if self._last_done is None else self._last_done

    async def _advance(self, store: StatusReads, limits: StatusLimits) -> bool:
        """Verify up to the view's budget; True when the newest record was reached."""
        for _ in range(limits.ledger_pages_per_view):
            if self._progress.problem is not None:
                return True
            page = await store.audit_rows_after(self._progress.checked, limits.ledger_page)
            self._progress = verify_rows(page, self._keys, self._progress)
            if len(page) < limits.ledger_page:
                return True
        return False


async def gather_status(
    store: StatusStore,
    watch: LedgerWatch,
    web: Mapping[str, str],
    now: float,
    limits: StatusLimits = StatusLimits(),
) -> StatusPage:
    """Everything the page shows, read now. A ledger record that cannot be read (edited
    behind the bot's back) is shown as a problem; the rest of the page still shows."""
    problems: list[str] = []
    try:
        recent = await store.recent_audit_records(limits.applies)
    except UnreadableRecord as exc:
        recent, problems = [], [f"the last applies cannot be shown: {exc}"]
    environments = await _environments(store, recent, web, limits)
    dead = await store.recent_dead_jobs(limits.dead_jobs)
    counts = await store.job_counts()
    return StatusPage(
        generated_at=display_time(now),
        environments=environments,
        applies=tuple(_apply_line(record, web) for record in recent),
        dead_jobs=tuple(_dead_job(job) for job in dead),
        dead_total=counts[JobState.DEAD],
        ledger=await watch.check(store, limits, now),
        problems=tuple(problems),
    )


async def _environments(
    store: StatusStore, recent: list[AuditRecord], web: Mapping[str, str], limits: StatusLimits
) -> tuple[EnvironmentStatus, ...]:
    """Every environment the store knows of (applied, checked, locked or recently in the
    ledger), each with the ledger record of the commit it runs."""
    applied = {a.environment: a for a in await store.applied_commits(limits.environments)}
    drifts = {d.environment: d for d in await store.drift_checks(limits.environments)}
    # Locks that name no repository (the drift timer's) are not environments.
    held = await store.held_locks(limits.environments)
    locks = {lock.environment: lock for lock in held if ":" in lock.environment}
    newest = _newest_by_key(recent)
    keys = sorted({*applied, *drifts, *locks, *newest})[: limits.environments]
    rows = []
    for key in keys:
        record = await _record_of(store, key, applied.get(key)) or newest.get(key)
        row = _environment(key, record, applied.get(key), web)
        rows.append(_with_drift_and_lock(row, drifts.get(key), locks.get(key)))
    return tuple(rows)


def _newest_by_key(records: Iterable[AuditRecord]) -> dict[str, AuditRecord]:
    newest: dict[str, AuditRecord] = {}
    for record in records:  # newest first: keep the first seen
        newest.setdefault(_key(record), record)
    return newest


def _key(record: AuditRecord) -> str:
    """The store key of a record's environment, as applies name their lock and commit."""
    entry = record.entry
    return f"{entry.repository}:{entry.environment}" if entry.repository else entry.environment


async def _record_of(
    store: StatusReads, key: str, applied: AppliedCommit | None
) -> AuditRecord | None:
    """The newest ledger record of the commit the environment runs."""
    if applied is None:
        return None
    repository, _, name = key.rpartition(":")
    records = await store.audit_records_of(name, applied.commit, 5)
    return next((r for r in records if (r.entry.repository or "") == repository), None)


def _environment(
    key: str, record: AuditRecord | None, applied: AppliedCommit | None, web: Mapping[str, str]
) -> EnvironmentStatus:
    repository, _, name = key.rpartition(":")
    if applied is None and record is None:
        return EnvironmentStatus(repository, name)
    entry = record.entry if record is not None else None
    sha = applied.commit if applied is not None else entry.commit if entry else ""
    pull = _pull(entry.pr_number, entry.pr_url, entry.author) if entry else Pull()
    return EnvironmentStatus(
        repository,
        name,
        commit_of(repository, sha, pull.url, web),
        result=entry.result if entry else None,
        applied_at=display_time(applied.applied_at) if applied else _iso(entry),
        pull=pull,
    )


def _with_drift_and_lock(
    row: EnvironmentStatus, drift: DriftCheckRecord | None, lock: HeldLock | None
) -> EnvironmentStatus:
    if drift is not None:
        when = display_time(drift.checked_at)
        status = DriftStatus(drift.state, drift.drifted_objects, when, drift.failure)
        row = replace(row, drift=status)
    if lock is not None:
        row = replace(row, lock_holder=lock.holder, lock_until=display_time(lock.expires_at))
    return row


def _apply_line(record: AuditRecord, web: Mapping[str, str]) -> ApplyLine:
    entry = record.entry
    pull = _pull(entry.pr_number, entry.pr_url, entry.author)
    repository = entry.repository or ""
    return ApplyLine(
        sequence=record.sequence,
        repository=repository,
        environment=entry.environment,
        commit=commit_of(repository, entry.commit, pull.url, web),
        result=entry.result,
        trigger=entry.trigger,
        finished_at=_iso(entry) or "",
        pull=pull,
        message=entry.message,
    )


def _dead_job(job: Job) -> DeadJob:
    return DeadJob(job.id, job.kind, job.attempts, job.last_error, _subject(job.payload))


def _subject(payload: str) -> str:
    """What a job was about, from its stored event: repository, pull request or commit,
    and the branch; "" when the payload says none of it."""
    try:
        data = json.loads(payload)
    except ValueError:
        return ""
    if not isinstance(data, dict) or not isinstance(data.get("repo"), dict):
        return ""
    repo = data["repo"]
    parts = [f"{repo.get('forge', '?')}:{repo.get('slug', '?')}"]
    if "number" in data:
        parts.append(f"#{data['number']}")
    if isinstance(data.get("commit"), str):
        parts.append(data["commit"][:12])
    if repo.get("default_branch"):
        parts.append(f"(branch {repo['default_branch']})")
    return " ".join(str(part) for part in parts)


def _pull(number: int | None, url: str | None, author: str | None) -> Pull:
    return Pull(number, web_link(url), author)


def _iso(entry: AuditEntry | None) -> str | None:
    """When the apply finished, as the page prints it."""
    return display_time(entry.finished_at) if entry is not None else None


def display_time(moment: float | str) -> str:
    """A clock reading or an ISO time as the page prints it: UTC, to the second."""
    if isinstance(moment, str):
        try:
            parsed = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return moment
    else:
        parsed = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    return parsed.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
