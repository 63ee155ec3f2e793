"""GitLab webhook deliveries: the secret token, the optional signature, the delivery id.

GitLab sends the webhook's secret token as it is in `X-Gitlab-Token`. When the webhook
also has a signing token (GitLab's implementation of the Standard Webhooks scheme), it
signs `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 and sends
`webhook-signature: v1,<base64>` (several space-separated entries while a key rotates).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping

from bot.config.secrets import Secret
from bot.config.settings import Settings, SettingsError
from bot.events import PayloadError
from bot.forges.gitlab.payloads import parse_gitlab
from bot.forges.ports import Received, Refused

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Gitlab-Token"  # noqa: S105 (a header name, not a credential)
EVENT_HEADER = "X-Gitlab-Event"
# Idempotency-Key stays the same when a delivery is resent; the event UUID is older.
DELIVERY_HEADERS = ("Idempotency-Key", "X-Gitlab-Event-UUID")
SIGNATURE_TOLERANCE_SECONDS = 300.0  # the Standard Webhooks recommendation
_SIGNING_PREFIX = "whsec_"
_MAX_DELIVERY_ID = 200


def check_gitlab_settings(settings: Settings) -> None:
    """Raise SettingsError unless GitLab can be both verified and called."""
    if not settings.gitlab_token:
        raise SettingsError(
            "GITOPS_BOT_GITLAB_WEBHOOK_SECRET is set but GITOPS_BOT_GITLAB_TOKEN is not: set "
            "it to a project, group or personal access token with the api scope"
        )
    if settings.gitlab_webhook_signing_token:
        signing_key(settings.gitlab_webhook_signing_token)


def signing_key(token: Secret) -> bytes:
    """The HMAC key of a signing token: the bytes after `whsec_`, base64-decoded."""
    text = token.reveal().strip().removeprefix(_SIGNING_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise SettingsError(
            "GITOPS_BOT_GITLAB_WEBHOOK_SIGNING_TOKEN is not a signing token: copy the "
            "whsec_... value GitLab shows for the webhook's signing token"
        )
    return key


class GitLabHooks:
    """Verifies deliveries against the configured secret token and signing key."""

    too_large = "payload over 25 MB"

    def __init__(self, token: Secret, key: bytes | None, clock: Callable[[], float]) -> None:
        self._token, self._key, self._clock = token.reveal().encode(), key, clock

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float]) -> GitLabHooks:
        assert settings.gitlab_webhook_secret is not None  # the app routes GitLab only then
        signing = settings.gitlab_webhook_signing_token
        return cls(settings.gitlab_webhook_secret, signing_key(signing) if signing else None, clock)

    def before_body(self, headers: Mapping[str, str]) -> Refused | None:
        if self.token_matches(headers):  # checked before the body is read
            return None
        return Refused(401, "-", "forged", "X-Gitlab-Token missing or wrong")

    def receive(self, headers: Mapping[str, str], body: bytes) -> Received | Refused:
        problem = self.signature_problem(headers, body)
        if problem is not None:
            return Refused(401, "-", "forged", problem)
        name = headers.get(EVENT_HEADER, "")[:100]
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise PayloadError("the body is not a JSON object")
            event = parse_gitlab(name, payload)
        except (ValueError, RecursionError) as exc:  # PayloadError, JSON errors, deep nesting
            log.warning("GitLab %s delivery: %s", name or "unnamed", exc)
            return Refused(400, name, "malformed", f"not a GitLab webhook: {exc}")
        return Received(delivery_id(headers, body), name, event)

    def token_matches(self, headers: Mapping[str, str]) -> bool:
        given = headers.get(TOKEN_HEADER, "").encode()
        return hmac.compare_digest(given, self._token)  # constant time, whatever was sent

    def signature_problem(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Why the signature does not hold, or None (also when no signing key is set)."""
        if self._key is None:
            return None
        message_id = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "")
        if not (message_id and timestamp and signatures):
            return "webhook-signature, webhook-id or webhook-timestamp is missing"
        if not re.fullmatch(r"[0-9]{1,12}", timestamp):  # not str.isdigit: "²" is a digit
            return "webhook-timestamp is not a Unix time"
        if abs(self._clock() - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
            return "webhook-timestamp is more than 5 minutes off (a replay, or a clock to fix)"
        signed = f"{message_id}.{timestamp}.".encode() + body
        expected = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest())
        for entry in signatures.split():
            version, _, value = entry.partition(",")
            if version == "v1" and hmac.compare_digest(value.encode(), expected):
                return None
        return "webhook-signature does not match the body"


def delivery_id(headers: Mapping[str, str], body: bytes) -> str:
    """The store's id of a delivery: GitLab's own id, or the body's digest when it sent none.

    Prefixed so that a GitLab id can never collide with a GitHub delivery id.
    """
    for name in DELIVERY_HEADERS:
        value = headers.get(name, "").strip()
        if 0 < len(value) <= _MAX_DELIVERY_ID:
            return f"gitlab:{value}"
    return "gitlab:sha256:" + hashlib.sha256(body).hexdigest()
