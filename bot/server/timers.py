"""The loops of `gitops-bot serve`: on an interval, queue a drift job per repository, and
a catch-up scan (at start-up too) that queues a catch-up per served repository.

Every replica runs the loops; a lease in the store (an environment lock on a name no
environment has) lets one of them queue the jobs of an interval, and the jobs' coalescing
key lets one worker at a time check a repository. Workers run the jobs like any other.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable

from bot.config.watchlist import repository_for
from bot.workflows.catch_up import scan_job
from bot.workflows.check_drift import drift_job
from bot.workflows.context import Services

log = logging.getLogger(__name__)
TIMER_LEASE = "drift-timer"  # environment keys are forge:slug:name, so never this
CATCH_UP_LEASE = "catch-up-timer"


async def queue_drift_checks(services: Services, holder: str) -> int:
    """Queue a drift job per watched repository, unless another replica did this interval."""
    settings = services.settings
    interval = settings.drift_interval_seconds
    if not await services.store.lock_environment(TIMER_LEASE, holder, interval):
        return 0
    for watched in settings.drift_repositories:
        repo = repository_for(watched, settings.github_api_url, settings.gitlab_url)
        await services.store.add_job(drift_job(repo))
    return len(settings.drift_repositories)


async def queue_catch_up(services: Services, holder: str) -> int:
    """Queue the catch-up scan, unless another replica did this interval."""
    interval = services.settings.catch_up_interval_seconds
    if not await services.store.lock_environment(CATCH_UP_LEASE, holder, interval):
        return 0
    await services.store.add_job(scan_job())
    return 1


def start_catch_up_timer(services: Services, wakeup: asyncio.Event) -> list[asyncio.Task[None]]:
    """The catch-up loop as a task, unless its interval is 0 (off)."""
    interval = services.settings.catch_up_interval_seconds
    if interval <= 0:
        return []
    holder = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}-catch-up-timer"
    return [asyncio.create_task(_catch_up_loop(services, holder, wakeup))]


async def _catch_up_loop(services: Services, holder: str, wakeup: asyncio.Event) -> None:
    interval = services.settings.catch_up_interval_seconds
    try:
        await _every(interval, lambda: queue_catch_up(services, holder), wakeup, "catch-up scan")
    finally:  # a replica started next scans at once instead of waiting out this lease
        await services.store.unlock_environment(CATCH_UP_LEASE, holder)


def start_drift_timer(services: Services, wakeup: asyncio.Event) -> list[asyncio.Task[None]]:
    """The loop as a task, when there is something to watch and an interval to do it at."""
    settings = services.settings
    if not settings.drift_repositories or settings.drift_interval_seconds <= 0:
        return []
    holder = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}-drift-timer"
    interval = settings.drift_interval_seconds
    loop = _every(interval, lambda: queue_drift_checks(services, holder), wakeup, "drift checks")
    return [asyncio.create_task(loop)]


async def _every(
    interval: float, tick: Callable[[], Awaitable[int]], wakeup: asyncio.Event, what: str
) -> None:
    """Run `tick` now, then every `interval` seconds, whatever it raised."""
    while True:
        try:
            if await tick():
                wakeup.set()  # idle workers pick the jobs up now
        except Exception:  # the store is down: keep the loop, try again next interval
            log.exception("could not queue %s", what)
        await asyncio.sleep(interval)
