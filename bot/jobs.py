"""Job workers: claim a job, run its one workflow, and on failure retry or dead-letter it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.commands import run_command
from bot.events import (
    CommentCommand,
    Event,
    PullRequestChanged,
    PushToDefaultBranch,
    event_from_data,
)
from bot.forges import ForgeError
from bot.merges import apply_merge, report_apply_failure
from bot.previews import PLAN_KIND, could_not_complete, preview_pull_request
from bot.services import Services
from bot.store import Job, JobState, Store, StoreError

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0  # how often an idle worker looks for retries that came due
BACKOFF_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 3600.0

Workflow = Callable[[Services, Any, Job], Awaitable[str]]
# One workflow per event type, so the order of work for an event is explicit.
WORKFLOWS: dict[type[Event], Workflow] = {
    PullRequestChanged: preview_pull_request,
    PushToDefaultBranch: apply_merge,
    CommentCommand: run_command,
}


class Worker:
    def __init__(self, services: Services, name: str, wakeup: asyncio.Event) -> None:
        self.services, self.name, self.wakeup = services, name, wakeup

    async def run_forever(self) -> None:
        while True:
            try:
                if await self.run_once():
                    continue
            except Exception:  # the store is down: keep the worker, try again later
                log.exception("worker %s could not claim a job", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), POLL_SECONDS)
            self.wakeup.clear()

    async def run_once(self) -> bool:
        """Run one claimable job; False when there was none."""
        settings = self.services.settings
        job = await self.services.store.claim_job(self.name, settings.job_lease_seconds)
        if job is None:
            return False
        started = time.monotonic()
        try:
            event = event_from_data(json.loads(job.payload))
        except (ValueError, KeyError, TypeError) as exc:  # written by another bot version
            await self.services.store.fail_job(job, f"unreadable job: {describe(exc)}", None)
            return True
        try:
            result = await self._leased(job, WORKFLOWS[type(event)](self.services, event, job))
        except Exception as exc:  # any failure of one job is that job's, never the worker's
            result = await self._failed(job, event, exc)
        else:
            await self.services.store.complete_job(job)
        self.services.metrics.job_seconds.labels(job.kind, result).observe(
            time.monotonic() - started
        )
        return True

    async def _leased(self, job: Job, work: Awaitable[str]) -> str:
        """Run the job's work while renewing its lease: a slow job is never taken over while
        its worker lives, and one whose worker died is resumed once the lease runs out."""
        renewer = asyncio.create_task(self._renew_lease(job))
        try:
            return await work
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)

    async def _renew_lease(self, job: Job) -> None:
        lease = self.services.settings.job_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                if not await self.services.store.renew_lease(job, lease):
                    log.warning("job %s was taken over by another worker", job.id)
                    return
            except StoreError as exc:  # the lease may still hold: try again next time
                log.warning("job %s: could not renew its lease: %s", job.id, exc)

    async def _failed(self, job: Job, event: Event, exc: Exception) -> str:
        store, error = self.services.store, describe(exc)
        log.warning("job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempts, error)
        if await store.is_superseded(job):
            await store.complete_job(job, JobState.SUPERSEDED)
            return "superseded"
        final = job.attempts >= self.services.settings.job_max_attempts
        retry_at = None if final else self.services.clock() + backoff(job.attempts, exc)
        state = await store.fail_job(job, error, retry_at)
        try:
            await self._report(job, event, error, final)
        except Exception as report_error:  # the forge itself may be what is failing
            log.warning("job %s: could not report the failure: %s", job.id, describe(report_error))
        return "dead" if state is JobState.DEAD else "retry"

    async def _report(self, job: Job, event: Event, error: str, final: bool) -> None:
        forge = self.services.forges.forge_for(event.repo)
        if isinstance(event, PullRequestChanged):
            check, comment = could_not_complete(event, error, final, job.attempts)
            await forge.report_check(event.repo, event.head_sha, check)
            if comment is not None:
                await forge.upsert_comment(event.repo, event.number, PLAN_KIND, (comment,))
        elif isinstance(event, PushToDefaultBranch) and final:
            await report_apply_failure(forge, event, error, job)
        elif isinstance(event, CommentCommand) and final:
            await forge.reply(
                event.repo,
                event.number,
                f"@{event.author} `/gitops {event.command}` could not complete: {error}. "
                "Comment the command again to retry.",
            )


def backoff(attempt: int, exc: Exception) -> float:
    """Seconds until the next attempt: the forge's word when it gave one, else exponential."""
    if isinstance(exc, ForgeError) and exc.retry_in is not None:
        return exc.retry_in
    return float(min(BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))


def describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:1000]


async def run_until_idle(services: Services, name: str = "worker") -> int:
    """Run jobs until none is claimable (for tests and one-shot runs); returns how many."""
    worker = Worker(services, name, asyncio.Event())
    count = 0
    while await worker.run_once():
        count += 1
    return count


async def requeue_dead_job(store: Store, job_id: int) -> bool:
    """Make a dead-lettered job run again (gitops-bot retry JOB_ID)."""
    await store.open()
    try:
        return await store.requeue(job_id)
    finally:
        await store.close()
