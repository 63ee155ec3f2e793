"""How to make a forge's check read a report with the fewest writes: none when it does."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CheckWrite(StrEnum):
    NONE = "none"  # the check already reads the report
    UPDATE = "update"  # edit the open check in place
    CREATE = "create"  # a new check: none is open, and a concluded one is never reopened


@dataclass(frozen=True)
class CheckSeen:
    """The newest check of that name on the commit: whether it is open, and what it reads
    (the fingerprint of the report it was written from)."""

    open: bool
    fingerprint: str


def check_write(seen: CheckSeen | None, pending: bool, fingerprint: str) -> CheckWrite:
    """Creating a concluded check anew keeps its annotations from piling up, as they would
    on an edit; an open check is edited, so no second one is left open beside it."""
    if seen is not None and seen.fingerprint == fingerprint and seen.open == pending:
        return CheckWrite.NONE
    if seen is not None and seen.open:
        return CheckWrite.UPDATE
    return CheckWrite.CREATE
