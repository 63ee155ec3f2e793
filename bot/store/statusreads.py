"""The status page's bounded reads, written once over each backend's way to run a query."""

from __future__ import annotations

from typing import Any

from bot.core.audit import AuditRecord
from bot.core.ledgerchain import LedgerRow
from bot.store.ledger import ledger_row, record_from_row
from bot.store.ports import AppliedCommit, DriftCheckRecord, HeldLock, Job, JobState
from bot.store.statements import (
    APPLIED_COMMITS,
    AUDIT_AFTER,
    AUDIT_OF_COMMIT,
    DRIFT_CHECKS,
    HELD_LOCKS,
    RECENT_AUDIT,
    RECENT_DEAD_JOBS,
)


class StatusQueries:
    """The StatusReads port for a backend that supplies `_rows` (one read statement,
    written with SQLite's placeholders, and its rows) and `now` (the store's time)."""

    async def _rows(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def now(self) -> float:
        raise NotImplementedError

    async def applied_commits(self, limit: int) -> list[AppliedCommit]:
        rows = await self._rows(APPLIED_COMMITS, (limit,))
        return [AppliedCommit(*row) for row in rows]

    async def held_locks(self, limit: int) -> list[HeldLock]:
        rows = await self._rows(HELD_LOCKS, (await self.now(), limit))
        return [HeldLock(*row) for row in rows]

    async def drift_checks(self, limit: int) -> list[DriftCheckRecord]:
        rows = await self._rows(DRIFT_CHECKS, (limit,))
        return [DriftCheckRecord(*row) for row in rows]

    async def recent_audit_records(self, limit: int) -> list[AuditRecord]:
        return [record_from_row(row) for row in await self._rows(RECENT_AUDIT, (limit,))]

    async def audit_records_of(
        self, environment: str, commit: str, limit: int
    ) -> list[AuditRecord]:
        rows = await self._rows(AUDIT_OF_COMMIT, (environment, commit, limit))
        return [record_from_row(row) for row in rows]

    async def audit_rows_after(self, sequence: int, limit: int) -> list[LedgerRow]:
        rows = await self._rows(AUDIT_AFTER, (sequence, limit))
        return [ledger_row(row) for row in rows]

    async def recent_dead_jobs(self, limit: int) -> list[Job]:
        rows = await self._rows(RECENT_DEAD_JOBS, (limit,))
        return [
            Job(i, kind, payload, key, n, holder or "", JobState(state), error)
            for i, kind, payload, key, n, holder, state, error in rows
        ]


def drift_check_row(check: DriftCheckRecord) -> tuple[Any, ...]:
    """The values of RECORD_DRIFT_CHECK, in its order."""
    return (check.environment, check.state, check.drifted_objects, check.failure, check.checked_at)
