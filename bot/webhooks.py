"""The HTTP edge for forge webhooks: verify, persist, answer. Nothing slow happens here."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import gidgethub
import gidgethub.sansio
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.core.credentials import mask_credentials
from bot.events import GITHUB, GITLAB, Event, PayloadError, parse_github, parse_gitlab
from bot.forges.githubhooks import signature_problem
from bot.forges.gitlabhooks import EVENT_HEADER, GitLabHooks, delivery_id
from bot.logs import event_context, log_context
from bot.metrics import Metrics
from bot.services import job_for
from bot.settings import Secret
from bot.store import Delivery, Store

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
BODY_TIMEOUT_SECONDS = 30.0  # GitHub gives up on an answer after 10 s; its body comes at once
_MAX_DELIVERY_ID = 200


class Edge:
    """What the webhook handler needs; the app builds one after its store is open."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        secret: Secret | None,
        wakeup: asyncio.Event,
        gitlab: GitLabHooks | None = None,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.store, self.metrics, self.secret, self.wakeup = store, metrics, secret, wakeup
        self.gitlab_hooks = gitlab  # None: the bot serves no GitLab (the route is not added)
        self.body_timeout = body_timeout
        self._incomplete_log = Throttle(burst=10, window_seconds=60.0)

    async def github(self, request: web.Request) -> web.Response:
        if self.secret is None:
            return self._answer(404, "-", "unconfigured", "this bot is not set up for GitHub")
        try:
            body = await read_body(request, timeout=self.body_timeout)
        except BodyNotRead as exc:
            return self._incomplete(exc, GITHUB)
        if body is None:
            return self._answer(413, "-", "too-large", "payload over GitHub's 25 MB cap")
        problem = signature_problem(request.headers, body, self.secret.reveal())
        if problem is not None:
            return self._answer(401, "-", "forged", problem)
        try:
            delivery = gidgethub.sansio.Event.from_http(
                request.headers, body, secret=self.secret.reveal()
            )
        except gidgethub.ValidationFailure:
            return self._answer(401, "-", "forged", "signature missing or wrong")
        except (gidgethub.BadRequest, KeyError, ValueError):
            return self._answer(400, "-", "malformed", "not a GitHub webhook delivery")
        name, delivery_id = delivery.event, delivery.delivery_id
        if not 0 < len(delivery_id) <= _MAX_DELIVERY_ID:
            return self._answer(400, name, "malformed", "bad X-GitHub-Delivery header")
        try:
            event = parse_github(name, delivery.data)
        except PayloadError as exc:
            log.warning("delivery %s: %s", delivery_id, exc)
            return self._answer(400, name, "malformed", str(exc))
        return await self._store(Delivery(delivery_id, GITHUB, name, "queued"), event)

    async def gitlab(self, request: web.Request) -> web.Response:
        """A GitLab delivery. A failure to store it raises StoreError, answered 503 by the
        app (GitLab disables a hook for good after 4xx answers, only for a while after 5xx)."""
        hooks = self.gitlab_hooks
        if hooks is None:
            return self._answer(404, "-", "unconfigured", "not set up for GitLab", GITLAB)
        if not hooks.token_matches(request.headers):  # checked before the body is read
            return self._answer(401, "-", "forged", "X-Gitlab-Token missing or wrong", GITLAB)
        try:
            body = await read_body(request, timeout=self.body_timeout)
        except BodyNotRead as exc:
            return self._incomplete(exc, GITLAB)
        if body is None:
            return self._answer(413, "-", "too-large", "payload over 25 MB", GITLAB)
        problem = hooks.signature_problem(request.headers, body)
        if problem is not None:
            return self._answer(401, "-", "forged", problem, GITLAB)
        name = request.headers.get(EVENT_HEADER, "")[:100]
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise PayloadError("the body is not a JSON object")
            event = parse_gitlab(name, payload)
        except ValueError as exc:  # PayloadError and JSON errors alike
            log.warning("GitLab %s delivery: %s", name or "unnamed", exc)
            return self._answer(400, name, "malformed", f"not a GitLab webhook: {exc}", GITLAB)
        delivery = Delivery(delivery_id(request.headers, body), GITLAB, name, "queued")
        return await self._store(delivery, event)

    async def _store(self, delivery: Delivery, event: Event | None) -> web.Response:
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

    def _answer(
        self, status: int, event: str, outcome: str, text: str, forge: str = GITHUB
    ) -> web.Response:
        # Unverified requests are counted under "-": an attacker must not create labels.
        self.metrics.deliveries.labels(forge, event, outcome).inc()
        return web.Response(status=status, text=text + "\n")


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
