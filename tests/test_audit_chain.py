"""The audit chain: each record sealed with the ledger key and linked to the one before;
any edit, forgery or cut is found, and the first record that cannot be trusted is named."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.core.applies import ApplyResult, ObjectResult, Outcome
from bot.core.audit import AuditRecord, Authority, Span, Trigger, entry_as_data, entry_for
from bot.core.diffs import Action
from bot.core.ledgerchain import (
    Anchor,
    LedgerKey,
    LedgerKeys,
    LedgerRow,
    anchors_in,
    chain,
    compare_anchors,
    legacy_hash,
    seal,
    verify_chain,
)
from bot.core.manifests import ObjectKey

KEY = LedgerKey("k2", b"the current ledger key, 32 bytes")
OLD = LedgerKey("k1", b"the retired ledger key, 32 bytes")
KEYS = LedgerKeys(KEY, (OLD,))
ATTACKER = LedgerKey("k2", b"a guess at the key, also 32 byte")


def records(
    count: int, key: LedgerKey | None = KEY, after: list[AuditRecord] | None = None
) -> list[AuditRecord]:
    made = list(after or [])
    for index in range(len(made), len(made) + count):
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
        made.append(chain(made[-1] if made else None, entry, 1_790_000_000.25 + index, key))
    return made


def rows(chained: list[AuditRecord]) -> list[LedgerRow]:
    return [
        LedgerRow(
            r.sequence,
            r.entry.environment,
            r.entry.commit,
            json.dumps(entry_as_data(r.entry), sort_keys=True),
            r.previous_hash,
            r.hash,
            r.recorded_at or 0.0,
            r.key_id,
        )
        for r in chained
    ]


def forged(row: LedgerRow, sequence: int, link: str, key: LedgerKey = ATTACKER) -> LedgerRow:
    """`row` moved to `sequence` after `link`, rehashed with a key that is not the bot's."""
    data = {**json.loads(row.entry_text), "environment": row.environment, "commit": row.commit}
    digest = seal(sequence, link, data, row.recorded_at, key)
    return replace(row, sequence=sequence, previous_hash=link, hash=digest, key_id=key.key_id)


def problem_at(ledger: list[LedgerRow], keys: LedgerKeys = KEYS) -> tuple[int, str]:
    problem = verify_chain(ledger, keys)
    assert problem is not None
    return problem.sequence, problem.reason


def test_an_untouched_chain_verifies_with_current_and_retired_keys() -> None:
    ledger = rows(records(3, KEY, records(3, OLD)))
    assert verify_chain(ledger, KEYS) is None
    assert [r.key_id for r in ledger] == ["k1", "k1", "k1", "k2", "k2", "k2"]
    assert problem_at(ledger, LedgerKeys(KEY))[0] == 1  # k1 retired and dropped: not trusted


def test_an_edited_record_is_named() -> None:
    ledger = rows(records(5))
    ledger[2] = replace(ledger[2], entry_text=ledger[2].entry_text.replace("alice", "mallory"))
    assert problem_at(ledger) == (
        3,
        "its content was changed after it was written (or it was forged)",
    )


def test_an_edited_recorded_at_is_named() -> None:
    ledger = rows(records(5))
    ledger[1] = replace(ledger[1], recorded_at=ledger[1].recorded_at - 86400)
    assert problem_at(ledger)[0] == 2


def test_appending_a_record_with_a_recomputed_hash_is_named() -> None:
    ledger = rows(records(5))
    ledger.append(forged(ledger[-1], 6, ledger[-1].hash))
    assert problem_at(ledger)[0] == 6
    unkeyed = ledger[-1]
    data = {**json.loads(unkeyed.entry_text), "environment": "prod", "commit": unkeyed.commit}
    ledger[-1] = replace(unkeyed, key_id=None, hash=legacy_hash(6, ledger[4].hash, data))
    sequence, reason = problem_at(ledger)
    assert sequence == 6 and "not keyed" in reason


def test_deleting_a_record_and_rehashing_the_rest_is_named() -> None:
    ledger = rows(records(6))
    del ledger[2]
    for index in range(2, len(ledger)):
        ledger[index] = forged(ledger[index], index + 1, ledger[index - 1].hash)
    assert problem_at(ledger)[0] == 3


def test_a_record_inserted_at_4_is_named_4() -> None:
    ledger = rows(records(6))
    intruder = forged(ledger[3], 4, ledger[2].hash)
    shifted = [replace(r, sequence=r.sequence + 1) for r in ledger[3:]]
    assert problem_at([*ledger[:3], intruder, *shifted])[0] == 4


def test_a_record_replaced_with_a_stolen_key_is_named_4() -> None:
    """With the key, the replacement's own hash holds; record 5's link still points at
    the record it followed, so the replacement (4) is named, not its successor (5)."""
    ledger = rows(records(6))
    other = replace(ledger[3], entry_text=ledger[3].entry_text.replace("alice", "mallory"))
    intruder = forged(other, 4, ledger[2].hash, KEY)
    sequence, reason = problem_at([*ledger[:3], intruder, *ledger[4:]])
    assert sequence == 4 and "inserted or rewritten" in reason


def test_a_deleted_record_is_named() -> None:
    ledger = rows(records(4))
    del ledger[1]
    assert problem_at(ledger) == (2, "it is missing (record 3 comes next)")


def test_an_unknown_key_id_is_named() -> None:
    ledger = rows(records(4))
    ledger[2] = replace(ledger[2], key_id="k9")
    sequence, reason = problem_at(ledger)
    assert sequence == 3 and "key id 'k9'" in reason


def test_an_unknown_field_in_a_record_is_named() -> None:
    ledger = rows(records(4))
    ledger[1] = replace(ledger[1], entry_text=ledger[1].entry_text.replace("{", '{"x": 1, ', 1))
    assert problem_at(ledger)[0] == 2
    ledger[1] = replace(ledger[1], entry_text="not json")
    assert "not a readable record" in problem_at(ledger)[1]


def test_legacy_records_are_trusted_only_up_to_the_head_the_operator_names() -> None:
    legacy = records(3, None)
    ledger = rows(records(2, KEY, legacy))
    assert problem_at(ledger)[0] == 1  # no legacy head: unkeyed records are not trusted
    head = Anchor(3, legacy[2].hash)
    assert verify_chain(ledger, replace(KEYS, legacy_head=head)) is None
    wrong = replace(KEYS, legacy_head=Anchor(3, "f" * 64))
    assert problem_at(ledger, wrong)[0] == 3
    short = replace(KEYS, legacy_head=Anchor(2, legacy[1].hash))
    assert problem_at(ledger, short)[0] == 3  # record 3 is unkeyed past the head


def test_anchors_find_a_cut_and_a_rewrite() -> None:
    ledger = rows(records(6))
    head = Anchor(6, ledger[5].hash)
    assert compare_anchors(ledger, [head, Anchor(2, ledger[1].hash)]) is None
    cut = compare_anchors(ledger[:4], [head])
    assert cut is not None and cut.sequence == 5 and "records were deleted" in cut.reason
    rewritten = compare_anchors(ledger, [Anchor(6, "e" * 64)])
    assert rewritten is not None and rewritten.sequence == 6


def test_anchors_are_read_from_text_and_nothing_else_is() -> None:
    digest = "a" * 64
    text = f"apply of abc: 3 objects · ledger 12:{digest}\n<!-- ledger 7:{digest} -->"
    assert anchors_in(text) == (Anchor(12, digest), Anchor(7, digest))
    assert anchors_in(f"ledger 0:{digest} ledger 3:{digest[:-1]} myledger 4:{digest}") == ()
