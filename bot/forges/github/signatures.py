"""GitHub webhook deliveries: the one signature the bot accepts, HMAC-SHA256 of the body.

GitHub signs every delivery twice: `X-Hub-Signature: sha1=...` (kept for old receivers)
and `X-Hub-Signature-256: sha256=<64 hex digits>`. SHA-1 is not accepted in any header,
so a delivery authenticates only through the SHA-256 header, in exactly GitHub's form.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})")


def signature_problem(headers: Mapping[str, str], body: bytes, secret: str) -> str | None:
    """Why the delivery is not signed with `secret`, or None when it is."""
    if not secret.strip():
        return "the bot's webhook secret is blank"  # settings refuse it; never match it
    given = headers.get(SIGNATURE_HEADER)
    if given is None:
        return f"{SIGNATURE_HEADER} is missing (SHA-1 signatures are not accepted)"
    found = _SIGNATURE.fullmatch(given)
    if found is None:
        return f"{SIGNATURE_HEADER} is not sha256= and 64 lowercase hex digits"
    expected = hmac.digest(secret.encode(), body, hashlib.sha256).hex()  # one-shot, in C
    if not hmac.compare_digest(found.group(1), expected):
        return f"{SIGNATURE_HEADER} does not match the body"
    return None
