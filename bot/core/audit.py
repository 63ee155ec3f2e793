"""The audit ledger: apply results as append-only records chained by hash, and their check."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.core.applies import ApplyResult

GENESIS = "0" * 64  # the "previous hash" of the first record


@dataclass(frozen=True)
class AuditEntry:
    """What one apply of one environment did, and on whose authority."""

    environment: str
    cluster: str
    commit: str
    result: str  # succeeded | failed | superseded | dry-run
    trigger: str  # merge | break-glass | self-heal
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


@dataclass(frozen=True)
class AuditRecord:
    sequence: int
    entry: AuditEntry
    previous_hash: str
    hash: str = field(default="")


@dataclass(frozen=True)
class ChainProblem:
    sequence: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.sequence}: {self.reason}"


def entry_for(
    result: ApplyResult,
    *,
    trigger: str,
    started_at: str,
    finished_at: str,
    bot_version: str,
    pr_number: int | None = None,
    pr_url: str | None = None,
    author: str | None = None,
    approvers: tuple[str, ...] = (),
    outcome: str | None = None,
    repository: str | None = None,
) -> AuditEntry:
    """The audit entry of an apply result; the caller says who, when and why."""
    default = "dry-run" if result.dry_run else "succeeded" if result.succeeded else "failed"
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
        result=outcome or default,
        trigger=trigger,
        started_at=started_at,
        finished_at=finished_at,
        bot_version=bot_version,
        pr_number=pr_number,
        pr_url=pr_url,
        author=author,
        approvers=approvers,
        objects=objects,
        message=result.failure,
        repository=repository,
    )


def chain(previous: AuditRecord | None, entry: AuditEntry) -> AuditRecord:
    """The record that follows `previous` (None for the first one)."""
    sequence = previous.sequence + 1 if previous else 1
    previous_hash = previous.hash if previous else GENESIS
    return AuditRecord(sequence, entry, previous_hash, record_hash(sequence, entry, previous_hash))


def record_hash(sequence: int, entry: AuditEntry, previous_hash: str) -> str:
    payload = {"sequence": sequence, "previous": previous_hash, "entry": entry_as_data(entry)}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def verify(records: Iterable[AuditRecord]) -> ChainProblem | None:
    """The first record that breaks the chain, or None when every link holds."""
    expected_sequence, expected_previous = 1, GENESIS
    for record in records:
        if record.sequence != expected_sequence:
            return ChainProblem(
                record.sequence, f"expected record {expected_sequence} here: a record is missing"
            )
        if record.previous_hash != expected_previous:
            return ChainProblem(record.sequence, "its link to the previous record does not match")
        if record.hash != record_hash(record.sequence, record.entry, record.previous_hash):
            return ChainProblem(record.sequence, "its content was changed after it was written")
        expected_sequence, expected_previous = record.sequence + 1, record.hash
    return None


def entry_as_data(entry: AuditEntry) -> dict[str, Any]:
    data = asdict(entry)
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
