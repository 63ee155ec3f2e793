"""The audit ledger's rows, shared by every backend, and the times its entries carry."""

from __future__ import annotations

import datetime
import json

from bot.core.audit import AuditEntry, AuditRecord, entry_as_data, entry_from_data
from bot.core.ledgerchain import LedgerRow
from bot.store.ports import UnreadableRecord

COLUMNS = "sequence, environment, commit_sha, entry, previous_hash, hash, recorded_at, key_id"


def entry_text(entry: AuditEntry) -> str:
    """The entry as the ledger stores it: canonical JSON, so a reader rebuilds it exactly."""
    return json.dumps(entry_as_data(entry), sort_keys=True, ensure_ascii=False)


def record_from_row(row: tuple[object, ...]) -> AuditRecord:
    """A ledger row as a chained record; every column that can drift is part of the entry,
    so an edit of any of them breaks the record's hash."""
    sequence, environment, commit, text, previous_hash, hash_, recorded_at, key_id = row
    try:
        data = json.loads(str(text))
        entry = entry_from_data({**data, "environment": environment, "commit": commit})
    except (ValueError, TypeError) as exc:
        raise UnreadableRecord(
            int(str(sequence)),
            f"audit record {sequence} cannot be read ({exc}): it was edited outside the bot; "
            "`gitops-bot audit --verify` needs every record readable",
        ) from exc
    when = float(str(recorded_at))
    key = None if key_id is None else str(key_id)
    return AuditRecord(int(str(sequence)), entry, str(previous_hash), str(hash_), when, key)


def ledger_row(row: tuple[object, ...]) -> LedgerRow:
    """A ledger row as stored, for `audit --verify`: nothing in it is trusted or parsed yet."""
    sequence, environment, commit, text, previous_hash, hash_, recorded_at, key_id = row
    return LedgerRow(
        int(str(sequence)),
        str(environment),
        str(commit),
        str(text),
        str(previous_hash),
        str(hash_),
        float(str(recorded_at)),
        None if key_id is None else str(key_id),
    )


def iso_time(seconds: float) -> str:
    """A clock reading as the ISO 8601 UTC text audit entries carry (microseconds kept,
    so the apply intervals of one environment can be compared)."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def since_timestamp(text: str) -> float:
    """`--since` as a clock reading: an ISO date or date-time, UTC unless it names a zone."""
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r} is not an ISO date: write 2026-01-31 or 2026-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()
