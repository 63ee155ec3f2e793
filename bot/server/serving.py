"""`gitops-bot serve`: listen until SIGTERM (or SIGINT), then shut down within the grace period.

The shutdown, in order: report not ready and claim no new job (`bot.server.app.drain`); let the
jobs in hand finish until the grace period is nearly used up, then cancel the rest, which
puts each back in the queue; stop listening, let requests in flight finish, close the
store. Webhooks are still answered until the listener closes: a delivery acknowledged
then is stored like any other and runs after the restart (or on another replica).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from bot.config.settings import Settings, SettingsError
from bot.server.app import create_app, drain
from bot.telemetry.logs import configure_logging

log = logging.getLogger(__name__)
# Kept from the grace period for what comes after the jobs: releasing them, answering the
# requests in flight, closing the store.
RESERVE_SECONDS = 5.0
# Young objects before the collector's next young pass (Python's default is 700).
YOUNG_GENERATION_THRESHOLD = 10_000
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
_DELIVERY_HEADERS = ("X-GitHub-Delivery", "Idempotency-Key", "X-Gitlab-Event-UUID")


def run_server(settings: Settings) -> None:
    """Serve until told to stop (gitops-bot serve)."""
    configure_logging(settings)
    asyncio.run(serve(settings))


async def serve(settings: Settings) -> None:
    """Run the app on the settings' host and port until the first SIGTERM or SIGINT."""
    grace = float(settings.shutdown_grace_seconds)
    reserve = min(RESERVE_SECONDS, grace / 3)
    app = create_app(settings)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=AccessLog,
        shutdown_timeout=reserve / 2,
        # aiohttp closes a connection that has not sent a whole request head by then
        # (a slow or silent client), and one idle that long between requests.
        keepalive_timeout=float(settings.http_header_timeout_seconds),
    )
    first, again = _stop_signals()  # before the workers start: none is ever killed mid-job
    await runner.setup()  # opens the store and starts the job workers
    _settle_garbage_collector()
    try:
        await _listen(runner, settings)
        log.info("listening on %s:%s", settings.host, settings.port)
        if not settings.ledger_key:
            log.warning(
                "GITOPS_BOT_LEDGER_KEY is not set: audit records are written unkeyed, and "
                "`gitops-bot audit --verify` does not trust them; see docs/operations.md"
            )
        await first.wait()
        log.info(
            "shutting down: not ready, no new jobs; jobs in hand have %.0fs to finish before "
            "they are released (signal again to release them now)",
            grace - reserve,
        )
        await drain(app, grace - reserve, again)
    finally:
        await runner.cleanup()
    log.info("stopped")


async def _listen(runner: web.AppRunner, settings: Settings) -> None:
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
    except OSError as exc:
        raise SettingsError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}; "
            "free the port or choose another with GITOPS_BOT_HOST and GITOPS_BOT_PORT"
        ) from exc


def _settle_garbage_collector() -> None:
    """Exempt what start-up built (modules, settings, clients: about 100,000 objects) from
    the garbage collector's full passes. Parsed payloads bring on such a pass every few
    seconds under load, and walking all those objects stalled the requests in flight for
    40-110 ms each time (benchmark 1); what start-up built lives as long as the process.

    Then let the young generation grow to YOUNG_GENERATION_THRESHOLD objects before a
    pass. With the default of 700, a delivery's own objects (request, coroutines,
    futures, the parsed payload) set off a young pass every 50 or so deliveries, each
    costing about 10 ms of CPU on the event loop, which put about one delivery in twenty
    behind one (benchmark 1's p99). A delivery leaves no cycles behind (its objects go
    by reference counting), so the larger threshold delays little garbage."""
    gc.collect()  # what is garbage now is not kept for good
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)


def _stop_signals() -> tuple[asyncio.Event, asyncio.Event]:
    """Events set by the first SIGTERM or SIGINT, and by the next one."""
    first, again = asyncio.Event(), asyncio.Event()

    def received(number: signal.Signals) -> None:
        (again if first.is_set() else first).set()
        log.info("received %s", number.name)

    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, received, number)
    return first, again


class AccessLog(AbstractAccessLogger):
    """One line per request, as fields; successful probes are left out (they come every
    few seconds and say nothing)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if request.path in _PROBES and response.status < 400:
            return
        http = {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "seconds": round(time, 4),
            "remote": request.remote,
        }
        # The forge's delivery id, even for a delivery refused before it was parsed (401,
        # 413): what the forge's "recent deliveries" page shows. Unverified, so cut short.
        delivery = next(
            (request.headers[h] for h in _DELIVERY_HEADERS if h in request.headers), None
        )
        extra = {"http": http} | ({"delivery": delivery[:100]} if delivery else {})
        self.logger.info("%s %s %s", request.method, request.path, response.status, extra=extra)
