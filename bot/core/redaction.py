"""Secret values never leave the bot: Secrets are shown as keys with keyed fingerprints."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

HIDDEN_PREFIX = "(hidden, fingerprint "


def is_secret(body: Mapping[str, Any]) -> bool:
    return body.get("kind") == "Secret" and body.get("apiVersion") == "v1"


def fingerprint(value: bytes, key: bytes) -> str:
    """A short keyed digest: equal values match, yet the value cannot be guessed offline."""
    return hmac.new(key, value, hashlib.sha256).hexdigest()[:12]


def mask_secret(body: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """The Secret with `data` and `stringData` merged into `data`, each value a fingerprint.

    `stringData` is written over `data` by the API server, and the same value in
    either form gets the same fingerprint, so moving a key between them is no change.
    """
    masked = {k: v for k, v in body.items() if k not in ("data", "stringData")}
    values: dict[str, str] = {}
    for name, value in _mapping(body.get("data")).items():
        values[str(name)] = _hidden(_decoded(value), key)
    for name, value in _mapping(body.get("stringData")).items():
        values[str(name)] = _hidden(str(value).encode(), key)
    if values or "data" in body or "stringData" in body:
        masked["data"] = dict(sorted(values.items()))
    return masked


def _mapping(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def _decoded(value: Any) -> bytes:
    text = str(value)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode()  # not base64: the API server will refuse it anyway


def _hidden(value: bytes, key: bytes) -> str:
    return f"{HIDDEN_PREFIX}{fingerprint(value, key)}, {len(value)} bytes)"
