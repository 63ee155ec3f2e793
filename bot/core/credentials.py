"""Credentials in text, masked by their shape: tokens, Authorization values, URL passwords.

Used before anything from outside is stored (jobs, deliveries) and on every log line, so
a token that arrives where none was expected (a clone URL, an error message) is never
written in plaintext.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "********"
_TOKEN_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+)"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    re.DOTALL,
)
_TOKEN_PREFIXES = ("github_pat_", "glpat-", "eyJ", "-----BEGIN ", *(f"gh{c}_" for c in "pousr"))
# An Authorization header in any quoting (a dict repr, JSON, a raw header line).
_AUTHORIZATION = re.compile(
    r"(?i)(authorization\\?['\"]?\s*[:=]\s*\\?['\"]?(?:bearer|token|basic)\s+)[^\s\"',\\]+"
)
# The user information of a URL (`https://user:token@host/`): it stays a URL with a user
# in it, so whatever refuses credentials in a URL still refuses it.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s\"']+@")
# The header name, as _AUTHORIZATION matches it (Unicode case folding included).
_AUTHORIZATION_NAME = re.compile(r"(?i)authorization")
_GH_PREFIX = re.compile(r"gh[pousr]_")


def mask_credentials(text: str) -> str:
    """`text` with everything shaped like a credential replaced by the mask."""
    if _may_hold_credential(text):
        return masked_everywhere(text)
    return text


def _may_hold_credential(text: str) -> bool:
    """Whether `text` has what some pattern needs to change anything. Substring checks in
    C rule out most strings (names, numbers, commit ids, most log lines) at a fraction of
    the cost of the patterns, and this runs on every stored field and every log line."""
    if "eyJ" in text or "glpat-" in text or "-----BEGIN " in text:
        return True
    if "@" in text and "://" in text:  # a URL with user information (most URLs have none)
        return True
    if "_" in text and ("github_pat_" in text or _GH_PREFIX.search(text) is not None):
        return True
    if text.isascii():  # in ASCII text, ignoring case is lowering it (not so for a dotless i)
        return "authorization" in text.lower()
    return _AUTHORIZATION_NAME.search(text) is not None


def masked_everywhere(text: str) -> str:
    """The reference: every pattern applied to `text`, whatever it holds."""
    text = _AUTHORIZATION.sub(lambda found: found.group(1) + MASK, text)
    text = _URL_USERINFO.sub(lambda found: found.group(1) + "redacted@", text)
    if any(prefix in text for prefix in _TOKEN_PREFIXES):
        text = _TOKEN_SHAPES.sub(MASK, text)
    return text


def masked_data(value: Any) -> Any:
    """JSON-shaped data with `mask_credentials` applied to every string in it."""
    if isinstance(value, str):
        return mask_credentials(value)
    if isinstance(value, Mapping):
        return {k: masked_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked_data(item) for item in value]
    return value
