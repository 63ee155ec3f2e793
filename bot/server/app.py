"""The aiohttp app factory: routes, and the resources that live as long as the app."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from bot.clusters.directory import ClusterDirectory
from bot.config.settings import Settings, SettingsError
from bot.events import Repository
from bot.forges.ports import Forge, ForgeError, Forges
from bot.forges.registry import Resources, configured_kits
from bot.git.mirrors import Mirrors
from bot.notifiers.http import HttpNotifier
from bot.schemas.catalog import catalog_for
from bot.server.intake import MAX_BODY_BYTES, Edge
from bot.server.statuspage import status_page
from bot.server.timers import start_catch_up_timer, start_drift_timer
from bot.server.worker import Worker, wind_down
from bot.stages.checkpool import CheckPool
from bot.stages.plan import CatalogFactory
from bot.store.backends import store_for_url
from bot.store.ports import JobState, Store, StoreError
from bot.telemetry.metrics import CONTENT_TYPE, Metrics
from bot.workflows.context import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """What tests change about the app besides settings: time, waiting, background work."""

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    run_workers: bool = True
    store: Store | None = None
    catalogs: CatalogFactory = catalog_for


SETTINGS = web.AppKey("settings", Settings)
OPTIONS = web.AppKey("options", Options)
METRICS = web.AppKey("metrics", Metrics)
WAKEUP = web.AppKey("wakeup", asyncio.Event)
SERVICES = web.AppKey("services", Services)
EDGE = web.AppKey("edge", Edge)
WORKERS = web.AppKey("workers", list[asyncio.Task[None]])
DRAINING = web.AppKey("draining", asyncio.Event)  # set at shutdown: not ready, no new jobs


def create_app(settings: Settings, options: Options | None = None) -> web.Application:
    """The webhook server. Settings are parsed once by the caller and passed in."""
    if not configured_kits(settings):
        raise SettingsError(
            "GITOPS_BOT_GITHUB_WEBHOOK_SECRET is not set (nor GITOPS_BOT_GITLAB_WEBHOOK_SECRET): "
            "without it no delivery can be verified; set it to the secret configured on the "
            "GitHub App's webhook (or the GitLab webhook's secret token)"
        )
    if settings.check_timeout_seconds <= 0 or settings.check_workers < 0:
        raise SettingsError(
            "GITOPS_BOT_CHECK_TIMEOUT_SECONDS must be a positive number of seconds and "
            "GITOPS_BOT_CHECK_WORKERS a number of processes (0: one per job worker)"
        )
    kits = configured_kits(settings)
    for kit in kits:
        kit.check_settings(settings)
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_last_resort])
    app[SETTINGS], app[OPTIONS] = settings, options or Options()
    app[METRICS], app[WAKEUP] = Metrics(), asyncio.Event()
    app[DRAINING] = asyncio.Event()
    app.cleanup_ctx.append(_resources)
    for kit in kits:
        app.router.add_post(f"/webhooks/{kit.name}", _webhook(kit.name))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    if settings.status_page:
        clock = app[OPTIONS].clock
        app.router.add_get("/", status_page(settings, _store, clock))
    return app


def _store(app: web.Application) -> Store:
    return app[SERVICES].store


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """The store, one ClientSession for every GitHub call, cluster connections, workers."""
    settings, options = app[SETTINGS], app[OPTIONS]
    store = options.store or store_for_url(settings.database_url, options.clock)
    await store.open()
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
        ClusterDirectory(settings.clusters, settings.cluster_crds_refresh_seconds) as clusters,
        _check_pool(settings) as pool,
    ):
        kits = configured_kits(settings)
        lent = Resources(settings, session, app[METRICS], options.clock, options.sleep)
        forges = {kit.name: kit.forges(lent) for kit in kits}
        services = Services(
            settings=settings,
            store=store,
            forges=_ForgesByName(forges),
            mirrors=Mirrors(settings.data_dir, settings.git_allow_file_remotes),
            metrics=app[METRICS],
            catalogs=options.catalogs,
            clock=options.clock,
            clusters=clusters,
            offload=pool.run,
            notifier=HttpNotifier(session, settings.notification_timeout_seconds),
            sleep=options.sleep,
        )
        app[SERVICES] = services
        hooks = {kit.name: kit.hooks(settings, options.clock) for kit in kits}
        body_timeout = float(settings.http_body_timeout_seconds)
        app[EDGE] = Edge(store, app[METRICS], app[WAKEUP], hooks, body_timeout)
        app[WORKERS] = _start_workers(services, app[WAKEUP], app[DRAINING], options)
        # The drift loop queues jobs for the workers; no loop where no worker runs.
        timers = []
        if options.run_workers:
            timers += start_drift_timer(services, app[WAKEUP])
            timers += start_catch_up_timer(services, app[WAKEUP])  # its first scan: now
        if options.run_workers:  # the first plan should not wait for the processes
            timers.append(asyncio.create_task(pool.warm()))
        try:
            yield
        finally:
            for task in [*timers, *app[WORKERS]]:
                task.cancel()
            await asyncio.gather(*timers, return_exceptions=True)
            await asyncio.gather(*app[WORKERS], return_exceptions=True)
            await store.close()


def _check_pool(settings: Settings) -> CheckPool:
    """Processes for parsing and checks: one per job worker unless the settings say."""
    size = settings.check_workers or settings.worker_count
    return CheckPool(size, settings.check_timeout_seconds)


def _start_workers(
    services: Services, wakeup: asyncio.Event, stopping: asyncio.Event, options: Options
) -> list[asyncio.Task[None]]:
    if not options.run_workers:
        return []
    count = max(1, services.settings.worker_count)
    # Names unique across replicas and restarts: a job's holder must name one worker.
    instance = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    workers = [Worker(services, f"{instance}-worker-{n}", wakeup, stopping) for n in range(count)]
    return [asyncio.create_task(worker.run_forever()) for worker in workers]


async def drain(app: web.Application, seconds: float, hurry: asyncio.Event) -> None:
    """The first step of a shutdown: report not ready and claim no new job; the jobs in
    hand get `seconds` to finish (less if `hurry` is set), then are released to the queue.
    Webhooks are still stored and acknowledged meanwhile: GitHub never redelivers a
    delivery that failed on its own, so refusing one would lose it."""
    app[DRAINING].set()
    app[WAKEUP].set()  # idle workers see the flag now rather than at their next poll
    await wind_down(app[WORKERS], seconds, hurry)


class _ForgesByName:
    """Hands each repository to the adapter of its forge (the ones configured)."""

    def __init__(self, forges: dict[str, Forges]) -> None:
        self._forges = forges

    def forge_for(self, repo: Repository) -> Forge:
        forges = self._forges.get(repo.forge)
        if forges is None:
            raise ForgeError(f"this bot is not set up for {repo.forge} (job for {repo.slug})")
        return forges.forge_for(repo)

    async def served_repositories(self) -> tuple[Repository, ...]:
        """Every configured forge's repositories, forge by forge in the order of the kits."""
        found: list[Repository] = []
        for forges in self._forges.values():
            found += await forges.served_repositories()
        return tuple(found)


def _webhook(forge: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def receive(request: web.Request) -> web.Response:
        return await request.app[EDGE].receive(forge, request)

    return receive


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    """Ready when the store answers and every worker that should run is running."""
    if request.app[DRAINING].is_set():
        return web.Response(status=503, text="shutting down\n")
    try:
        await request.app[SERVICES].store.ping()
    except StoreError as exc:
        return web.Response(status=503, text=f"store unavailable: {exc}\n")
    if any(task.done() for task in request.app[WORKERS]):
        return web.Response(status=503, text="a job worker stopped\n")
    return web.Response(text="ready\n")


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    counts = await request.app[SERVICES].store.job_counts()
    for state, count in counts.items():
        metrics.jobs.labels(str(state)).set(count)
    metrics.dead_letter_jobs.set(counts[JobState.DEAD])
    response = web.Response(body=metrics.exposition())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


@web.middleware
async def _last_resort(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The one catch-all: a failure answers 5xx without details (GitHub can redeliver)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except StoreError:
        log.exception("store failure while handling %s", request.path)
        return web.Response(status=503, text="store unavailable, nothing was stored\n")
    except Exception:
        log.exception("unexpected failure while handling %s", request.path)
        return web.Response(status=500, text="internal error\n")
