"""The HTTP edge for forge webhooks: the forge's kit verifies, then persist and answer.

Nothing slow happens here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiohttp import web

from bot.events import Event
from bot.forges.ports import Hooks, Received, Refused
from bot.store.ports import Delivery, Intake
from bot.telemetry.logs import event_context, log_context
from bot.telemetry.metrics import Metrics
from bot.workflows.context import job_for

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


class Edge:
    """What the webhook handler needs; the app builds one after its store is open."""

    def __init__(
        self,
        store: Intake,
        metrics: Metrics,
        wakeup: asyncio.Event,
        hooks: Mapping[str, Hooks],
    ) -> None:
        self.store, self.metrics, self.wakeup = store, metrics, wakeup
        self.hooks = hooks  # by forge name: only the configured forges have a route

    async def receive(self, forge: str, request: web.Request) -> web.Response:
        """A delivery from `forge`. A failure to store it raises StoreError, answered 503
        by the app (GitLab disables a hook for good after 4xx answers, only for a while
        after 5xx; GitHub never redelivers on its own)."""
        hooks = self.hooks.get(forge)
        if hooks is None:
            return self._answer(404, "-", "unconfigured", f"not set up for {forge}", forge)
        outcome = hooks.before_body(request.headers) or await _verified(hooks, request)
        if isinstance(outcome, Refused):
            return self._refuse(outcome, forge)
        delivery = Delivery(outcome.delivery_id, forge, outcome.event_name, "queued")
        return await self._store(delivery, outcome.event)

    async def _store(self, delivery: Delivery, event: Event | None) -> web.Response:
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

    def _refuse(self, refused: Refused, forge: str) -> web.Response:
        return self._answer(
            refused.status, refused.event_name, refused.outcome, refused.text, forge
        )

    def _answer(self, status: int, event: str, outcome: str, text: str, forge: str) -> web.Response:
        # Unverified requests are counted under "-": an attacker must not create labels.
        self.metrics.deliveries.labels(forge, event, outcome).inc()
        return web.Response(status=status, text=text + "\n")


async def _verified(hooks: Hooks, request: web.Request) -> Received | Refused:
    body = await read_body(request)
    if body is None:  # known before any parsing, and counted before verification
        return Refused(413, "-", "too-large", hooks.too_large)
    return hooks.receive(request.headers, body)


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The raw body, or None as soon as it is known to be over `limit` (before any parsing)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
