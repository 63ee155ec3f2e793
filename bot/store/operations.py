"""What operators do with the store from the command line: read and check the audit
ledger, list the dead letters, record a break-glass apply."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.core.audit import record_as_data, record_as_text, verify
from bot.store.ports import AuditLedger, JobQueue, Store

T = TypeVar("T")


async def using(store: Store, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store, do the work, close it again."""
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


async def audit_listing(
    store: AuditLedger, environment: str | None, since: float | None, as_json: bool
) -> str:
    records = await store.audit_records(environment, since)
    if as_json:
        return json.dumps([record_as_data(r) for r in records], indent=2) + "\n"
    if not records:
        return "no audit records" + (f" for {environment}" if environment else "") + "\n"
    return "".join(record_as_text(r) for r in records)


async def audit_check(store: AuditLedger) -> tuple[bool, str]:
    """Whether the whole chain holds, and what to tell the operator."""
    records = await store.audit_records()
    problem = verify(records)
    if problem is None:
        return True, f"audit ledger intact: {len(records)} records, every link verified\n"
    return False, (
        f"audit ledger BROKEN at {problem}. Records from {problem.sequence} on cannot be "
        "trusted: compare the database with its backups to find what was changed.\n"
    )


async def dead_letter_listing(store: JobQueue) -> str:
    jobs = await store.dead_jobs()
    if not jobs:
        return "no dead-lettered jobs\n"
    lines = [
        f"job {job.id} ({job.kind}, {job.attempts} attempts): {job.last_error or 'no error kept'}"
        for job in jobs
    ]
    hint = "re-queue one with `gitops-bot retry JOB_ID` once the cause is fixed"
    return "\n".join([*lines, hint]) + "\n"
