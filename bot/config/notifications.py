"""Where notifications go: Slack incoming webhooks and signed JSON webhooks, and which events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.config.secrets import Secret
from bot.core.notifications import NotificationEvent

_EXAMPLE = (
    '[{"name": "ops", "kind": "slack", "url": "https://hooks.slack.com/services/..."}, '
    '{"name": "audit", "kind": "webhook", "url": "https://...", "secret": "...", '
    '"events": ["apply-failed", "drift-found"]}]'
)
_KEYS = {"name", "kind", "url", "secret", "events"}


class NotificationSettingsError(ValueError):
    """The notifications setting cannot be used; the message says which entry and why."""


class TargetKind(StrEnum):
    SLACK = "slack"  # Slack's message JSON (text and blocks) to an incoming webhook
    WEBHOOK = "webhook"  # the notification as JSON, signed with HMAC-SHA256


@dataclass(frozen=True)
class NotificationTarget:
    name: str  # how jobs and logs name it; the URL is a secret and never shown
    kind: TargetKind
    url: Secret
    secret: Secret | None = None  # the HMAC key of a webhook target (required there)
    events: frozenset[NotificationEvent] = frozenset(NotificationEvent)

    def wants(self, event: NotificationEvent) -> bool:
        return event in self.events


def parse_targets(value: Any) -> tuple[NotificationTarget, ...]:
    """Targets from a list (YAML) or its JSON text; names must differ."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError as exc:
            raise NotificationSettingsError(f"not valid JSON: {exc}; e.g. {_EXAMPLE}") from None
    if not isinstance(value, list):
        raise NotificationSettingsError(f"expected a list of targets, e.g. {_EXAMPLE}")
    targets = tuple(_target(index, item) for index, item in enumerate(value))
    names = [t.name for t in targets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise NotificationSettingsError(f"target names must differ: {', '.join(repeated)}")
    return targets


def _target(index: int, item: Any) -> NotificationTarget:
    where = f"entry {index + 1}"
    if not isinstance(item, Mapping):
        raise NotificationSettingsError(f"{where}: expected a mapping, e.g. {_EXAMPLE}")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise NotificationSettingsError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}"
        )
    name = str(item.get("name") or "").strip()
    if not name:
        raise NotificationSettingsError(f"{where}: give the target a name")
    kind = _kind(name, item.get("kind"))
    key = _hmac_key(name, kind, item.get("secret"))
    return NotificationTarget(name, kind, _url(name, item.get("url")), key, _events(name, item))


def _kind(name: str, value: Any) -> TargetKind:
    try:
        return TargetKind(str(value or "").strip().lower())
    except ValueError:
        raise NotificationSettingsError(
            f"target {name}: kind must be slack or webhook, not {value!r}"
        ) from None


def _url(name: str, value: Any) -> Secret:
    text = str(value or "").strip()
    if not text.startswith(("https://", "http://")):
        raise NotificationSettingsError(f"target {name}: url must be an https:// address")
    return Secret(text)


def _hmac_key(name: str, kind: TargetKind, value: Any) -> Secret | None:
    key = str(value or "")
    if kind is TargetKind.WEBHOOK and not key.strip():
        raise NotificationSettingsError(
            f"target {name}: a webhook target needs a secret (its receivers check the "
            "signature with it); use a long random string"
        )
    return Secret(key) if key.strip() else None


def _events(name: str, item: Mapping[str, Any]) -> frozenset[NotificationEvent]:
    value = item.get("events")
    if value in (None, "", []):
        return frozenset(NotificationEvent)
    items = value if isinstance(value, list) else str(value).split(",")
    try:
        return frozenset(NotificationEvent(str(item).strip()) for item in items)
    except ValueError:
        known = ", ".join(e.value for e in NotificationEvent)
        raise NotificationSettingsError(
            f"target {name}: events must be among {known}; got {value!r}"
        ) from None
