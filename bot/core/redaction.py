"""Secret values never leave the bot: Secrets are shown as keys with keyed fingerprints.

Two kinds of object hold secret values:
- a core Secret (`apiVersion: v1`, `kind: Secret`): every field but `apiVersion`, `kind`,
  `metadata`, `type` and `immutable` is masked, whatever its name, so a misspelled
  `stringdata:` shows no more than `stringData:` does;
- a look-alike: any other kind whose name contains "secret" in any letter case, in any
  group (a `Secret` of a custom API, `SealedSecret`, `ExternalSecret`, `SecretStore`).
  The bot cannot know which of its fields hold values, so every field but `apiVersion`,
  `kind` and `metadata` is masked. Its diff still shows which keys changed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

HIDDEN_PREFIX = "(hidden, fingerprint "
_SECRET_SHOWN = frozenset({"apiVersion", "kind", "metadata", "type", "immutable"})
_LOOKALIKE_SHOWN = frozenset({"apiVersion", "kind", "metadata"})


def is_secret(body: Mapping[str, Any]) -> bool:
    """A core Secret, as the API server reads `apiVersion` and `kind`."""
    return body.get("kind") == "Secret" and body.get("apiVersion") == "v1"


def holds_secrets(body: Mapping[str, Any]) -> bool:
    """A core Secret or a look-alike whose values must never be shown."""
    return is_secret(body) or "secret" in str(body.get("kind", "")).lower()


def hides(body: Mapping[str, Any], path: Sequence[object]) -> bool:
    """Whether the value at `path` of `body` is never shown (the whole object: path ())."""
    if not holds_secrets(body):
        return False
    return not path or str(path[0]) not in _shown_fields(body)


def _shown_fields(body: Mapping[str, Any]) -> frozenset[str]:
    return _SECRET_SHOWN if is_secret(body) else _LOOKALIKE_SHOWN


def fingerprint(value: bytes, key: bytes) -> str:
    """A short keyed digest: equal values match, yet the value cannot be guessed offline."""
    return hmac.new(key, value, hashlib.sha256).hexdigest()[:12]


def mask_secret(body: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """The object with every value it may hold replaced by a fingerprint, keys kept.

    In a core Secret, `stringData` is written over `data` by the API server, and the same
    value in either form gets the same fingerprint, so moving a key between them is no
    change; both are shown merged into `data`.
    """
    shown = _shown_fields(body)
    masked = {k: v if k in shown else _masked(v, key) for k, v in body.items()}
    if not is_secret(body):
        return masked
    values: dict[str, str] = {}
    for name, value in _mapping(body.get("data")).items():
        values[str(name)] = _hidden(_decoded(value), key)
    for name, value in _mapping(body.get("stringData")).items():
        values[str(name)] = _hidden(str(value).encode(), key)
    masked.pop("stringData", None)
    if values or "data" in body or "stringData" in body:
        masked["data"] = dict(sorted(values.items()))
    return masked


def _masked(value: Any, key: bytes) -> Any:
    """Keys and list positions kept, each scalar replaced by its fingerprint."""
    if isinstance(value, Mapping):
        return {str(k): _masked(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(item, key) for item in value]
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return _hidden(text.encode(), key)


def hidden_values(body: Mapping[str, Any]) -> Iterator[str]:
    """Every scalar of `body` that is never shown, as text (to scrub it from messages)."""
    if holds_secrets(body):
        for name, value in body.items():
            if str(name) not in _shown_fields(body):
                yield from _scalars(value)


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif value is not None:
        yield str(value)


def undecodable_data(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys of a core Secret's `data` whose values the API server refuses (not base64)."""
    if not is_secret(body):
        return ()
    data = _mapping(body.get("data"))
    return tuple(sorted(str(k) for k, v in data.items() if _base64(v) is None))


def _mapping(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def _base64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _decoded(value: Any) -> bytes:
    decoded = _base64(value)
    # Not base64 (an error finding says so): the text itself is what must stay hidden.
    return decoded if decoded is not None else str(value).encode()


def _hidden(value: bytes, key: bytes) -> str:
    return f"{HIDDEN_PREFIX}{fingerprint(value, key)}, {len(value)} bytes)"
