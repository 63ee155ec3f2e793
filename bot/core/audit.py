"""The audit ledger's records: what an apply did and on whose authority, as data and text
(the chain that links them is bot.core.ledgerchain)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from bot.core.applies import ApplyResult


@dataclass(frozen=True)
class AuditEntry:
    """What one apply of one environment did, and on whose authority."""

    environment: str
    cluster: str
    commit: str
    result: str  # a Result; stored as its text
    trigger: str  # a Trigger; stored as its text
    started_at: str  # ISO 8601, UTC; the shell reads the clock
    finished_at: str
    bot_version: str
    pr_number: int | None = None
    pr_url: str | None = None
    author: str | None = None
    approvers: tuple[str, ...] = ()
    objects: tuple[Mapping[str, str], ...] = ()  # object, action, outcome, digest
    message: str | None = None
    repository: str | None = None  # "forge:owner/name": environment names repeat across repos
    approvals_unknown: str | None = None  # why the approvers could not be read, if so


@dataclass(frozen=True)
class AuditRecord:
    sequence: int
    entry: AuditEntry
    previous_hash: str
    hash: str = field(default="")
    recorded_at: float | None = None  # when the store wrote it (its clock); sealed too
    key_id: str | None = None  # the ledger key that sealed it; None: unkeyed


class Trigger(StrEnum):
    """Why an environment was applied: the closed list of who may apply."""

    MERGE = "merge"
    SELF_HEAL = "self-heal"
    BREAK_GLASS = "break-glass"
    CATCH_UP = "catch-up"  # a merge whose webhook never arrived, found by the catch-up loop


class Result(StrEnum):
    """What an audited apply came to."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # not applied: the environment already runs a newer commit
    DRY_RUN = "dry-run"


@dataclass(frozen=True)
class Authority:
    """On whose authority an apply ran: its trigger, the repository, the PR behind it."""

    trigger: Trigger
    repository: str | None = None  # "forge:owner/name", or "local:/path" for break-glass
    author: str | None = None  # the merged PR's author, the pusher, or the operator
    pr_number: int | None = None
    pr_url: str | None = None
    approvers: tuple[str, ...] = ()
    approvals_unknown: str | None = None  # why the approvers could not be read: not "none"


@dataclass(frozen=True)
class Span:
    """When an apply ran (ISO 8601, UTC; the shell reads the clock) and by which bot."""

    started_at: str
    finished_at: str
    bot_version: str


def result_of(result: ApplyResult) -> Result:
    if result.dry_run:
        return Result.DRY_RUN
    return Result.SUCCEEDED if result.succeeded else Result.FAILED


def entry_for(result: ApplyResult, authority: Authority, span: Span) -> AuditEntry:
    """The audit entry of an apply result: what happened, on whose authority, when."""
    objects = tuple(
        {
            "object": str(o.key),
            "action": str(o.action),
            "outcome": str(o.outcome),
            "digest": o.digest,
        }
        for o in result.objects
    )
    return AuditEntry(
        environment=result.environment,
        cluster=result.cluster,
        commit=result.commit,
        result=result_of(result),
        trigger=authority.trigger,
        started_at=span.started_at,
        finished_at=span.finished_at,
        bot_version=span.bot_version,
        pr_number=authority.pr_number,
        pr_url=authority.pr_url,
        author=authority.author,
        approvers=authority.approvers,
        objects=objects,
        message=result.failure,
        repository=authority.repository,
        approvals_unknown=authority.approvals_unknown,
    )


def applies_once_per_commit(trigger: str) -> bool:
    """Whether the apply brings a merge to its environments (a merge, or a merge caught
    up with): that happens once per environment and commit, whatever the number of
    deliveries. Self-heal and break-glass apply a commit again on purpose."""
    return trigger not in (Trigger.SELF_HEAL, Trigger.BREAK_GLASS)


def superseded_entry(entry: AuditEntry) -> AuditEntry:
    """The record of an apply skipped because a newer commit already runs there."""
    message = "not applied: the environment already runs a newer commit"
    return replace(entry, result=Result.SUPERSEDED, message=message)


def entry_as_data(entry: AuditEntry) -> dict[str, Any]:
    data = asdict(entry)
    if entry.approvals_unknown is None:  # absent, as in the records written before it existed
        del data["approvals_unknown"]
    data["approvers"] = list(entry.approvers)
    data["objects"] = [dict(o) for o in entry.objects]
    return data


def entry_from_data(data: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        **{
            **data,
            "approvers": tuple(data.get("approvers", ())),
            "objects": tuple(dict(o) for o in data.get("objects", ())),
        }
    )


def record_as_data(record: AuditRecord) -> dict[str, Any]:
    """A record as JSON data: its place in the chain, then the entry."""
    return {
        "sequence": record.sequence,
        "previous_hash": record.previous_hash,
        "hash": record.hash,
        "key_id": record.key_id,
        "recorded_at": record.recorded_at,
        **entry_as_data(record.entry),
    }


def record_as_text(record: AuditRecord) -> str:
    """A record for people: one headline, then one line per object."""
    e = record.entry
    who = f"PR #{e.pr_number}" if e.pr_number is not None else "no PR"
    if e.author:
        who += f" by {e.author}"
    if e.approvers:
        who += f", approved by {', '.join(e.approvers)}"
    if e.approvals_unknown:
        who += f", approvals unknown ({e.approvals_unknown})"
    where = f"{e.repository} " if e.repository else ""
    lines = [
        f"#{record.sequence} {e.started_at} {where}{e.environment} (cluster {e.cluster}) "
        f"{e.commit[:12]} {e.result} [{e.trigger}] {who}; {len(e.objects)} objects; "
        f"bot {e.bot_version}; finished {e.finished_at}"
    ]
    if e.pr_url:
        lines.append(f"    {e.pr_url}")
    if e.message:
        lines.append(f"    {e.message}")
    lines += [
        f"    {o.get('action', '?')} {o.get('object', '?')}: {o.get('outcome', '?')} "
        f"{o.get('digest', '')}".rstrip()
        for o in e.objects
    ]
    return "\n".join(lines) + "\n"
