"""The HTTP edge for forge webhooks: the forge's kit verifies, then persist and answer.

Nothing slow happens here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.core.credentials import mask_credentials
from bot.events import Event
from bot.forges.ports import Hooks, Received, Refused
from bot.store.ports import Delivery, Intake
from bot.telemetry.logs import event_context, log_context
from bot.telemetry.metrics import Metrics
from bot.workflows.context import job_for

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
BODY_TIMEOUT_SECONDS = 30.0  # GitHub gives up on an answer after 10 s; its body comes at once


class Edge:
    """What the webhook handler needs; the app builds one after its store is open."""

    def __init__(
        self,
        store: Intake,
        metrics: Metrics,
        wakeup: asyncio.Event,
        hooks: Mapping[str, Hooks],
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.store, self.metrics, self.wakeup = store, metrics, wakeup
        self.hooks = hooks  # by forge name: only the configured forges have a route
        self.body_timeout = body_timeout
        self._incomplete_log = Throttle(burst=10, window_seconds=60.0)

    async def receive(self, forge: str, request: web.Request) -> web.Response:
        """A delivery from `forge`. A failure to store it raises StoreError, answered 503
        by the app (GitLab disables a hook for good after 4xx answers, only for a while
        after 5xx; GitHub never redelivers on its own)."""
        hooks = self.hooks.get(forge)
        if hooks is None:
            return self._answer(404, "-", "unconfigured", f"not set up for {forge}", forge)
        try:
            outcome = hooks.before_body(request.headers) or await self._verified(hooks, request)
        except BodyNotRead as exc:
            return self._incomplete(exc, forge)
        if isinstance(outcome, Refused):
            return self._refuse(outcome, forge)
        delivery = Delivery(outcome.delivery_id, forge, outcome.event_name, "queued")
        return await self._store(delivery, outcome.event)

    async def _verified(self, hooks: Hooks, request: web.Request) -> Received | Refused:
        body = await read_body(request, timeout=self.body_timeout)
        if body is None:  # known before any parsing, and counted before verification
            return Refused(413, "-", "too-large", hooks.too_large)
        return hooks.receive(request.headers, body)

    async def _store(self, delivery: Delivery, event: Event | None) -> web.Response:
        names = (delivery.id, delivery.event, event.repo.slug if event is not None else "")
        if not all(map(_is_text, names)):  # the store, log and metrics take text only
            text = "the delivery id, event name or repository name is not UTF-8 text"
            return self._answer(400, "-", "malformed", text, delivery.forge)
        # Header values are stored as they came: mask anything shaped like a credential.
        masked = mask_credentials(delivery.id), mask_credentials(delivery.event)
        delivery = Delivery(masked[0], delivery.forge, masked[1], delivery.outcome)
        about = {"forge": delivery.forge} | (event_context(event) if event is not None else {})
        with log_context(delivery=delivery.id, event=delivery.event, **about):
            return await self._record(delivery, event)

    async def _record(self, delivery: Delivery, event: Event | None) -> web.Response:
        job = job_for(event) if event is not None else None
        if job is None:
            delivery = Delivery(delivery.id, delivery.forge, delivery.event, "ignored")
        forge = delivery.forge
        if not await self.store.record_delivery(delivery, job):
            log.info("delivery %s was received before: not processed again", delivery.id)
            return self._answer(200, delivery.event, "duplicate", "already received", forge)
        if job is None:
            log.debug("delivery %s needs nothing done", delivery.id)
            text = "nothing to do for this event"
            return self._answer(200, delivery.event, "ignored", text, forge)
        log.info("delivery %s stored: %s job queued", delivery.id, job.kind)
        self.wakeup.set()
        return self._answer(202, delivery.event, "queued", f"queued {job.kind}", forge)

    def _incomplete(self, exc: BodyNotRead, forge: str) -> web.Response:
        """A body that never fully came: one line, no traceback, and few of them per minute
        (any client can cause it, and must not fill the log)."""
        suppressed = self._incomplete_log.allow()
        if suppressed is not None:
            more = f" ({suppressed} more since the last such line)" if suppressed else ""
            log.warning("%s delivery not read: %s; nothing stored%s", forge, exc, more)
        return self._answer(408, "-", "incomplete", f"request body not read: {exc}", forge)

    def _refuse(self, refused: Refused, forge: str) -> web.Response:
        return self._answer(
            refused.status, refused.event_name, refused.outcome, refused.text, forge
        )

    def _answer(self, status: int, event: str, outcome: str, text: str, forge: str) -> web.Response:
        # Unverified requests are counted under "-": an attacker must not create labels.
        self.metrics.count_delivery(forge, event, outcome)
        return web.Response(status=status, text=text + "\n")


def _is_text(value: str) -> bool:
    """Whether `value` encodes as UTF-8. A header's undecodable bytes (aiohttp keeps them
    as lone surrogates) and a lone surrogate escaped in the JSON do not."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


class BodyNotRead(Exception):
    """The client stopped sending the body, or went away, before it was complete."""


async def read_body(
    request: web.Request, limit: int = MAX_BODY_BYTES, timeout: float = BODY_TIMEOUT_SECONDS
) -> bytes | None:
    """The raw body, or None as soon as it is known to be over `limit` (before any parsing).

    Raises BodyNotRead when it does not arrive whole within `timeout` seconds."""
    if request.content_length is not None and request.content_length > limit:
        return None
    try:
        if request.content.is_eof():  # all of it is here (the usual case): nothing to wait for
            return await _chunks(request, limit)
        async with asyncio.timeout(timeout):
            return await _chunks(request, limit)
    except TimeoutError:
        raise BodyNotRead(f"the body did not arrive within {timeout:g} s") from None
    except (ConnectionError, HttpProcessingError) as exc:  # aiohttp's words for a cut body
        raise BodyNotRead(f"the client went away mid-body ({type(exc).__name__})") from None


async def _chunks(request: web.Request, limit: int) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class Throttle:
    """At most `burst` events per window; says how many were held back since the last."""

    def __init__(self, burst: int, window_seconds: float) -> None:
        self._burst, self._window = burst, window_seconds
        self._started, self._count, self._held = -window_seconds, 0, 0

    def allow(self) -> int | None:
        """None: hold this one back; else the number held back before it."""
        now = time.monotonic()
        if now - self._started >= self._window:
            self._started, self._count = now, 0
        if self._count >= self._burst:
            self._held += 1
            return None
        self._count += 1
        held, self._held = self._held, 0
        return held
