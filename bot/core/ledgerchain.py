"""The audit ledger's chain: records sealed with a keyed HMAC, checked link by link, and
compared with the anchors (position and hash of a record) published outside the database."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.core.audit import AuditEntry, AuditRecord, entry_as_data, entry_from_data

GENESIS = "0" * 64  # the "previous hash" of the first record
_ANCHOR = re.compile(r"([1-9][0-9]*):([0-9a-f]{64})")
ANCHOR_PREFIX = "ledger "  # how an anchor is written where it is published


@dataclass(frozen=True)
class LedgerKey:
    """A secret that seals records, under the id records name so it can be rotated."""

    key_id: str
    material: bytes = field(repr=False)


@dataclass(frozen=True)
class Anchor:
    """A record's place in the chain and its hash, as published on the forge."""

    sequence: int
    hash: str

    def __str__(self) -> str:
        return f"{self.sequence}:{self.hash}"


@dataclass(frozen=True)
class LedgerKeys:
    """What verification trusts: the current key, retired keys, and the last record
    written before the ledger was keyed that the operator vouches for."""

    current: LedgerKey | None = None
    retired: tuple[LedgerKey, ...] = ()
    legacy_head: Anchor | None = None

    def by_id(self, key_id: str) -> LedgerKey | None:
        keys = (self.current, *self.retired) if self.current else self.retired
        return next((k for k in keys if k.key_id == key_id), None)


@dataclass(frozen=True)
class LedgerRow:
    """One ledger row exactly as stored, before anything trusts it."""

    sequence: int
    environment: str
    commit: str
    entry_text: str
    previous_hash: str
    hash: str
    recorded_at: float
    key_id: str | None


@dataclass(frozen=True)
class ChainProblem:
    """The first record that cannot be trusted, and why."""

    sequence: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.sequence}: {self.reason}"


def parse_anchor(text: str) -> Anchor | None:
    """`12:<64 hex>` as an Anchor; None for anything else."""
    found = _ANCHOR.fullmatch(text.strip())
    return Anchor(int(found.group(1)), found.group(2)) if found else None


def anchors_in(text: str) -> tuple[Anchor, ...]:
    """Every anchor written as `ledger N:HASH` in a text (a comment, a status)."""
    pattern = r"\b" + re.escape(ANCHOR_PREFIX) + r"([1-9][0-9]*:[0-9a-f]{64})\b"
    found = (parse_anchor(m.group(1)) for m in re.finditer(pattern, text))
    return tuple(a for a in found if a is not None)


def anchor_text(anchor: Anchor) -> str:
    return f"{ANCHOR_PREFIX}{anchor}"


def seal(
    sequence: int, previous_hash: str, data: Mapping[str, Any], recorded_at: float, key: LedgerKey
) -> str:
    """The keyed hash of a record: every field, its time and its key id included."""
    payload = {
        "sequence": sequence,
        "previous": previous_hash,
        "entry": data,
        "recorded_at": recorded_at,
        "key_id": key.key_id,
    }
    return hmac.new(key.material, _canonical(payload), hashlib.sha256).hexdigest()


def legacy_hash(sequence: int, previous_hash: str, data: Mapping[str, Any]) -> str:
    """The unkeyed hash records carried before the ledger was keyed (anyone can compute it)."""
    payload = {"sequence": sequence, "previous": previous_hash, "entry": data}
    return hashlib.sha256(_canonical(payload)).hexdigest()


def chain(
    previous: AuditRecord | None, entry: AuditEntry, recorded_at: float, key: LedgerKey | None
) -> AuditRecord:
    """The record that follows `previous` (None for the first one), sealed with `key`;
    unkeyed (and so never trusted past the legacy head) when the server has no key."""
    sequence = previous.sequence + 1 if previous else 1
    link = previous.hash if previous else GENESIS
    data = entry_as_data(entry)
    digest = (
        seal(sequence, link, data, recorded_at, key) if key else legacy_hash(sequence, link, data)
    )
    return AuditRecord(sequence, entry, link, digest, recorded_at, key.key_id if key else None)


@dataclass(frozen=True)
class ChainCursor:
    """How far a check of the chain got: records up to `checked` hold, and the next must
    link to `link`. A check can go on from here with the records that follow."""

    checked: int = 0
    link: str = GENESIS
    last_unkeyed: bool = False  # whether the record at `checked` was written unkeyed
    problem: ChainProblem | None = None  # the first record that cannot be trusted


def verify_chain(rows: Sequence[LedgerRow], keys: LedgerKeys) -> ChainProblem | None:
    """The first record that cannot be trusted, or None when every record and link holds."""
    cursor = verify_rows(rows, keys)
    return cursor.problem or _short_of_legacy_head(len(rows), keys.legacy_head)


def verify_rows(
    rows: Iterable[LedgerRow], keys: LedgerKeys, after: ChainCursor = ChainCursor()
) -> ChainCursor:
    """The check carried on over `rows`, the records that follow `after.checked` in chain
    order (so a long ledger can be checked a page at a time); it stops at a problem."""
    cursor = after
    for row in rows:
        if cursor.problem is not None:
            break
        cursor = _step(cursor, row, keys)
    return cursor


def _step(cursor: ChainCursor, row: LedgerRow, keys: LedgerKeys) -> ChainCursor:
    position = cursor.checked + 1
    if row.sequence != position:
        missing = ChainProblem(position, f"it is missing (record {row.sequence} comes next)")
        return replace(cursor, problem=missing)
    doubt = _doubt(row, keys)
    if doubt is not None:
        return replace(cursor, problem=ChainProblem(position, doubt))
    if row.previous_hash != cursor.link:
        return replace(cursor, problem=_broken_link(position, cursor.last_unkeyed))
    return ChainCursor(position, row.hash, row.key_id is None)


def compare_anchors(rows: Sequence[LedgerRow], anchors: Iterable[Anchor]) -> ChainProblem | None:
    """The first record the published anchors contradict: one missing (the ledger was cut
    short) or one whose hash differs (it was rewritten)."""
    problems = [p for p in (_against(rows, a) for a in set(anchors)) if p is not None]
    return min(problems, key=lambda p: p.sequence, default=None)


def first_problem(*problems: ChainProblem | None) -> ChainProblem | None:
    found = [p for p in problems if p is not None]
    return min(found, key=lambda p: p.sequence, default=None)


def _against(rows: Sequence[LedgerRow], anchor: Anchor) -> ChainProblem | None:
    if anchor.sequence > len(rows):
        return ChainProblem(
            len(rows) + 1,
            f"it is missing: the forge holds anchor {anchor} of a published apply, but the "
            f"ledger ends at record {len(rows)}; records were deleted",
        )
    if rows[anchor.sequence - 1].hash != anchor.hash:
        return ChainProblem(
            anchor.sequence,
            f"its hash differs from anchor {anchor} the forge holds: it (or a record before "
            "it) was rewritten",
        )
    return None


def _doubt(row: LedgerRow, keys: LedgerKeys) -> str | None:
    """Why this record on its own cannot be trusted, or None."""
    data = _entry_data(row)
    if data is None:
        return "its entry is not a readable record: it was edited outside the bot"
    if row.key_id is None:
        return _legacy_doubt(row, data, keys.legacy_head)
    key = keys.by_id(row.key_id)
    if key is None:
        return (
            f"it names ledger key id {row.key_id!r}, which is neither the current key nor a "
            "retired one in the settings: it was forged, or that key's id was dropped"
        )
    sealed = seal(row.sequence, row.previous_hash, data, row.recorded_at, key)
    if not hmac.compare_digest(sealed, row.hash):
        return "its content was changed after it was written (or it was forged)"
    return None


def _legacy_doubt(row: LedgerRow, data: dict[str, Any], head: Anchor | None) -> str | None:
    if head is None or row.sequence > head.sequence:
        vouched = f"record {head.sequence}" if head else "none"
        return (
            "it is not keyed, so anyone with database access could have written it; the "
            f"settings vouch for unkeyed records up to {vouched} "
            "(GITOPS_BOT_LEDGER_LEGACY_HEAD, see docs/operations.md)"
        )
    try:
        rebuilt = entry_as_data(entry_from_data(data))
    except TypeError:
        return "its entry has fields no bot writes: it was edited outside the bot"
    if legacy_hash(row.sequence, row.previous_hash, rebuilt) != row.hash:
        return "its content was changed after it was written"
    if row.sequence == head.sequence and row.hash != head.hash:
        return f"it is not the record GITOPS_BOT_LEDGER_LEGACY_HEAD names ({head})"
    return None


def _broken_link(position: int, before_unkeyed: bool) -> ChainProblem:
    """Record `position` holds, yet names another predecessor: the one before it is the
    record that was inserted or rewritten."""
    if position == 1:
        return ChainProblem(1, "it does not start the chain: records before it were deleted")
    where = " (or an unkeyed record before it)" if before_unkeyed else ""
    return ChainProblem(
        position - 1,
        f"record {position} was chained to a different record here{where}: this one was "
        "inserted or rewritten",
    )


def _short_of_legacy_head(count: int, head: Anchor | None) -> ChainProblem | None:
    if head is None or count >= head.sequence:
        return None
    return ChainProblem(
        count + 1,
        f"it is missing: GITOPS_BOT_LEDGER_LEGACY_HEAD names record {head.sequence}, but the "
        f"ledger ends at record {count}",
    )


def _entry_data(row: LedgerRow) -> dict[str, Any] | None:
    try:
        data = json.loads(row.entry_text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {**data, "environment": row.environment, "commit": row.commit}


def _canonical(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
