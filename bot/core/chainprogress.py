"""The audit ledger's chain checked page by page: how far a check got and what it found."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.audit import GENESIS, AuditRecord, ChainProblem, record_hash


@dataclass(frozen=True)
class ChainProgress:
    """A check under way: every record up to `checked` holds; the next links to `last_hash`."""

    checked: int = 0  # the sequence of the last record verified; 0 before the first
    last_hash: str = GENESIS
    problem: ChainProblem | None = None  # set once a record breaks the chain; checking stops


def advance(progress: ChainProgress, records: Iterable[AuditRecord]) -> ChainProgress:
    """The progress after the next records in chain order (those after `progress.checked`)."""
    if progress.problem is not None:
        return progress
    checked, last_hash = progress.checked, progress.last_hash
    for record in records:
        problem = link_problem(record, checked + 1, last_hash)
        if problem is not None:
            return ChainProgress(checked, last_hash, problem)
        checked, last_hash = record.sequence, record.hash
    return ChainProgress(checked, last_hash)


def link_problem(record: AuditRecord, sequence: int, previous_hash: str) -> ChainProblem | None:
    """Why `record` cannot be the chain's record `sequence` after `previous_hash`, if it cannot."""
    if record.sequence != sequence:
        return ChainProblem(
            record.sequence, f"expected record {sequence} here: a record is missing"
        )
    if record.previous_hash != previous_hash:
        return ChainProblem(record.sequence, "its link to the previous record does not match")
    if record.hash != record_hash(record.sequence, record.entry, record.previous_hash):
        return ChainProblem(record.sequence, "its content was changed after it was written")
    return None
