"""GitHub webhook deliveries: the signature checked on the raw bytes, then the payload parsed."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import gidgethub
import gidgethub.sansio

from bot.config.secrets import Secret
from bot.events import PayloadError
from bot.forges.github.payloads import parse_github
from bot.forges.github.signatures import signature_problem
from bot.forges.ports import Received, Refused

log = logging.getLogger(__name__)
_MAX_DELIVERY_ID = 200
_SIGNATURE_HEADERS = frozenset({"x-hub-signature", "x-hub-signature-256"})


class GitHubHooks:
    """Verifies deliveries with the webhook secret (X-Hub-Signature-256) and parses them."""

    too_large = "payload over GitHub's 25 MB cap"

    def __init__(self, secret: Secret) -> None:
        self._secret = secret

    def before_body(self, headers: Mapping[str, str]) -> Refused | None:
        return None  # the signature covers the body: nothing to check before it is read

    def receive(self, headers: Mapping[str, str], body: bytes) -> Received | Refused:
        problem = signature_problem(headers, body, self._secret.reveal())
        if problem is not None:  # before gidgethub, which would also take a SHA-1 signature
            return Refused(401, "-", "forged", problem)
        try:
            delivery = _delivery(_unsigned(headers), body)
        # json's decoder raises RecursionError for JSON nested too deeply
        except (gidgethub.BadRequest, KeyError, ValueError, RecursionError):
            return Refused(400, "-", "malformed", "not a GitHub webhook delivery")
        name, delivery_id = delivery.event, delivery.delivery_id
        if not 0 < len(delivery_id) <= _MAX_DELIVERY_ID:
            return Refused(400, name, "malformed", "bad X-GitHub-Delivery header")
        if not isinstance(delivery.data, dict):  # GitHub always sends one JSON object
            return Refused(400, name, "malformed", "the body is not a JSON object")
        try:
            return Received(delivery_id, name, parse_github(name, delivery.data))
        except PayloadError as exc:
            log.warning("delivery %s: %s", delivery_id, exc)
            return Refused(400, name, "malformed", str(exc))


def _delivery(headers: Mapping[str, str], body: bytes) -> gidgethub.sansio.Event:
    """What gidgethub's `Event.from_http` reads from a delivery. The JSON body GitHub sends
    (`Content-Type: application/json`, no parameters) is decoded here as gidgethub decodes
    it, without its parsing of the header through the email package; anything else goes
    to gidgethub. Errors are ValueError or KeyError either way."""
    if headers.get("content-type") == "application/json" and body:
        data = json.loads(body.decode("utf-8"))
        event, delivery_id = headers["x-github-event"], headers["x-github-delivery"]
        return gidgethub.sansio.Event(data, event=event, delivery_id=delivery_id)
    return gidgethub.sansio.Event.from_http(headers, body)


def _unsigned(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers as gidgethub reads them (lower-case names), without the signatures:
    the body was verified above, and a second HMAC of it would only cost time."""
    unsigned: dict[str, str] = {}
    for name, value in headers.items():  # the first of a repeated header, as gidgethub reads
        if name.lower() not in _SIGNATURE_HEADERS:
            unsigned.setdefault(name.lower(), value)
    return unsigned
