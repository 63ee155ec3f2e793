"""What operators do with the store from the command line: read and check the audit
ledger, list the dead letters, record a break-glass apply."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.core.audit import record_as_data, record_as_text
from bot.core.ledgerchain import (
    Anchor,
    LedgerKeys,
    LedgerRow,
    compare_anchors,
    first_problem,
    verify_chain,
)
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


async def audit_check(
    store: AuditLedger, keys: LedgerKeys, anchors: tuple[Anchor, ...] | None = None
) -> tuple[bool, str]:
    """Whether every record can be trusted (keyed hash, link, and the anchors published on
    the forge when `anchors` is given), and what to tell the operator."""
    rows = await store.audit_rows()
    problem = first_problem(verify_chain(rows, keys), compare_anchors(rows, anchors or ()))
    if problem is not None:
        return False, (
            f"audit ledger NOT TRUSTWORTHY from {problem}.\nRecords from {problem.sequence} "
            "on cannot be trusted: compare the database with its backups and with the "
            'anchors on the forge (docs/operations.md, "Verifying the audit ledger").\n'
        )
    return True, _intact(rows, anchors)


def _intact(rows: list[LedgerRow], anchors: tuple[Anchor, ...] | None) -> str:
    key_ids = sorted({r.key_id for r in rows if r.key_id is not None})
    unkeyed = sum(r.key_id is None for r in rows)
    text = f"audit ledger intact: {len(rows)} records, every link verified and every keyed "
    text += f"hash checked (keys: {', '.join(key_ids) or 'none'}; unkeyed legacy records: "
    text += f"{unkeyed})\n"
    if rows:
        text += f"head: {Anchor(rows[-1].sequence, rows[-1].hash)}\n"
    if anchors is None:
        return text + (
            "not compared with any forge: records deleted from the end cannot be detected "
            "without the anchors there (pass --repository or --anchor)\n"
        )
    newest = max((a.sequence for a in anchors), default=None)
    return text + f"matches every anchor given ({len(set(anchors))}; newest: {newest})\n"


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
