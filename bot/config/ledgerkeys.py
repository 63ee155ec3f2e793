"""The ledger keys from the settings: the current key, retired keys, the legacy head."""

from __future__ import annotations

import re

from bot.config.secrets import Secret
from bot.core.ledgerchain import Anchor, LedgerKey, LedgerKeys, parse_anchor

_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_MIN_KEY_LENGTH = 16  # shorter secrets can be guessed


class LedgerKeyError(ValueError):
    """A ledger key setting that cannot be used; the message names it and the fix."""


def ledger_keys(
    current: Secret | None, current_id: str, retired: Secret | None, legacy_head: str | None
) -> LedgerKeys:
    """The keys verification trusts, checked: ids well formed and distinct, secrets long."""
    key = _key("GITOPS_BOT_LEDGER_KEY", current_id, current.reveal()) if current else None
    old = _retired(retired.reveal()) if retired else ()
    ids = [k.key_id for k in (key, *old) if k is not None]
    if len(set(ids)) != len(ids):
        raise LedgerKeyError(
            f"ledger key ids repeat ({', '.join(ids)}): give each key, current or retired, "
            "its own GITOPS_BOT_LEDGER_KEY_ID"
        )
    return LedgerKeys(key, old, _head(legacy_head))


def _key(setting: str, key_id: str, secret: str) -> LedgerKey:
    if not _KEY_ID.fullmatch(key_id):
        raise LedgerKeyError(
            f"{setting}: key id {key_id!r} must be 1 to 40 letters, digits, '.', '_' or '-'"
        )
    if len(secret.strip()) < _MIN_KEY_LENGTH:
        raise LedgerKeyError(
            f"{setting}: the key of id {key_id!r} is shorter than {_MIN_KEY_LENGTH} "
            "characters; generate one with `openssl rand -hex 32`"
        )
    return LedgerKey(key_id, secret.strip().encode())


def _retired(text: str) -> tuple[LedgerKey, ...]:
    """`ID:SECRET,ID:SECRET`: the keys records may have been sealed with before a rotation."""
    pairs = [item.strip() for item in text.split(",") if item.strip()]
    if not all(":" in pair for pair in pairs):
        raise LedgerKeyError(
            "GITOPS_BOT_LEDGER_RETIRED_KEYS: write each retired key as ID:SECRET, "
            "separated by commas (e.g. k1:3f9a...,k0:77c2...)"
        )
    split = (pair.split(":", 1) for pair in pairs)
    return tuple(_key("GITOPS_BOT_LEDGER_RETIRED_KEYS", i.strip(), s) for i, s in split)


def _head(text: str | None) -> Anchor | None:
    if not text:
        return None
    anchor = parse_anchor(text)
    if anchor is None:
        raise LedgerKeyError(
            f"GITOPS_BOT_LEDGER_LEGACY_HEAD: {text!r} is not SEQUENCE:HASH; copy the sequence "
            "and hash of the last unkeyed record from `gitops-bot audit --format json`"
        )
    return anchor
