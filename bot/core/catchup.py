"""Catch-up decisions: which environments a lost merge webhook left behind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvironmentState:
    """What the store knows of one apply-on-merge environment, against the branch head."""

    name: str
    applied: str | None  # the commit it last applied, when one is recorded
    head_recorded: bool  # the ledger holds a record of the head in this environment


def missed_environments(head: str, states: Sequence[EnvironmentState]) -> tuple[str, ...]:
    """The environments that never saw the head: not applied there, and no ledger record
    of it (applied, dry-applied, failed or superseded). A merge that was handled, even
    one that failed, is not missed: its own job retries it, catch-up does not.
    Whether the applied commit is newer than the head is left to the apply's ordering
    check, which records the head as superseded rather than going back."""
    return tuple(
        state.name for state in states if state.applied != head and not state.head_recorded
    )
