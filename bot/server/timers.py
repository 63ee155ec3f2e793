"""The drift loop of `gitops-bot serve`: on an interval, queue a drift job per repository.

Every replica runs the loop; a lease in the store (an environment lock on a name no
environment has) lets one of them queue the jobs of an interval, and the jobs' coalescing
key lets one worker at a time check a repository. Workers run the jobs like any other.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid

from bot.config.watchlist import repository_for
from bot.workflows.check_drift import drift_job
from bot.workflows.context import Services

log = logging.getLogger(__name__)
TIMER_LEASE = "drift-timer"  # environment keys are forge:slug:name, so never this


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


def start_drift_timer(services: Services, wakeup: asyncio.Event) -> list[asyncio.Task[None]]:
    """The loop as a task, when there is something to watch and an interval to do it at."""
    settings = services.settings
    if not settings.drift_repositories or settings.drift_interval_seconds <= 0:
        return []
    holder = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}-drift-timer"
    return [asyncio.create_task(_run_forever(services, holder, wakeup))]


async def _run_forever(services: Services, holder: str, wakeup: asyncio.Event) -> None:
    while True:
        try:
            if await queue_drift_checks(services, holder):
                wakeup.set()  # idle workers pick the jobs up now
        except Exception:  # the store is down: keep the loop, try again next interval
            log.exception("could not queue drift checks")
        await asyncio.sleep(services.settings.drift_interval_seconds)
