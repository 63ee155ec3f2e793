"""The audit chain: each record carries the hash of the one before; any edit is found."""

from __future__ import annotations

from dataclasses import replace

from bot.core.applies import ApplyResult, ObjectResult, Outcome
from bot.core.audit import AuditRecord, Authority, Span, Trigger, chain, entry_for, verify
from bot.core.diffs import Action
from bot.core.manifests import ObjectKey


def ledger(count: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for index in range(count):
        result = ApplyResult(
            "prod",
            "main",
            f"{index:040x}",
            dry_run=False,
            objects=(
                ObjectResult(
                    ObjectKey("apps", "Deployment", "shop", "web"),
                    Action.UPDATE,
                    Outcome.APPLIED,
                    "sha256:" + "ab" * 32,
                ),
            ),
        )
        authority = Authority(Trigger.MERGE, pr_number=index, approvers=("alice",))
        span = Span("2026-11-22T10:00:00Z", "2026-11-22T10:00:05Z", "0.1.0")
        entry = entry_for(result, authority, span)
        records.append(chain(records[-1] if records else None, entry))
    return records


def test_an_untouched_chain_verifies() -> None:
    records = ledger(5)
    assert verify(records) is None
    assert [r.sequence for r in records] == [1, 2, 3, 4, 5]
    assert records[0].entry.result == "succeeded"


def test_an_edited_record_is_named() -> None:
    records = ledger(5)
    forged = replace(records[2].entry, approvers=("mallory",))
    records[2] = replace(records[2], entry=forged)
    problem = verify(records)
    assert problem is not None and problem.sequence == 3
    assert "changed after it was written" in str(problem)


def test_a_rehashed_edit_breaks_the_next_link() -> None:
    records = ledger(4)
    records[1] = chain(records[0], replace(records[1].entry, commit="f" * 40))
    problem = verify(records)
    assert problem is not None and problem.sequence == 3
    assert "link to the previous record" in problem.reason


def test_a_deleted_record_is_named() -> None:
    records = ledger(4)
    del records[1]
    problem = verify(records)
    assert problem is not None and problem.sequence == 3 and "missing" in problem.reason
