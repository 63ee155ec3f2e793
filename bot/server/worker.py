"""Job workers: claim a job, run its one workflow, and on failure retry or dead-letter it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable
from enum import StrEnum
from typing import Any

from bot.forges.ports import ForgeError
from bot.store.ports import Job, JobState, Store, StoreError
from bot.telemetry.logs import Redactor, log_context, secret_values
from bot.workflows.context import Failure, Services, Workflow
from bot.workflows.notify import notify_dead_letter
from bot.workflows.table import WORKFLOWS

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0  # how often an idle worker looks for retries that came due
BACKOFF_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 3600.0


class WorkerResult(StrEnum):
    """How a job ended besides its workflow's own outcome."""

    SUPERSEDED = "superseded"  # failed, but a newer job of the same key replaces it
    RETRY = "retry"
    DEAD = "dead"


class Worker:
    def __init__(
        self,
        services: Services,
        name: str,
        wakeup: asyncio.Event,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.services, self.name, self.wakeup = services, name, wakeup
        # Set when the server shuts down: finish the job in hand, claim no other.
        self.stopping = stopping or asyncio.Event()
        # A failure's text is stored, logged and posted to the forge: a credential some
        # server quoted back in an error must not travel with it.
        self.redactor = Redactor(secret_values(services.settings))

    async def run_forever(self) -> None:
        while not self.stopping.is_set():
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
        with log_context(job=job.id, kind=job.kind, attempt=job.attempts):
            try:
                await self._run(job)
            except asyncio.CancelledError:  # shutdown: the job goes back to the queue
                await self.release(job)
                raise
        return True

    async def _run(self, job: Job) -> None:
        started = time.monotonic()
        try:
            workflow = WORKFLOWS[job.kind]
            work = workflow.decode(json.loads(job.payload))
        except (ValueError, KeyError, TypeError) as exc:  # written by another bot version
            await self.services.store.fail_job(job, f"unreadable job: {describe(exc)}", None)
            log.error("job %s is unreadable and was dead-lettered: %s", job.id, describe(exc))
            return
        with log_context(**workflow.log_context(work)):
            log.info("job %s (%s) started, attempt %s", job.id, job.kind, job.attempts)
            try:
                result: StrEnum = await self._leased(job, workflow.run(self.services, work, job))
            except Exception as exc:  # any failure of one job is that job's, never the worker's
                result = await self._failed(job, workflow, work, exc)
            else:
                await self.services.store.complete_job(job)
            log.info("job %s (%s) finished: %s", job.id, job.kind, result)
        self.services.metrics.job_seconds.labels(job.kind, result).observe(
            time.monotonic() - started
        )

    async def release(self, job: Job) -> None:
        """Put an interrupted job back in the queue at once, so another worker (or this
        server after its restart) runs it without waiting out the lease. A job that was
        completed meanwhile stays completed: the store only changes a running job."""
        reason = f"released by {self.name} at shutdown before it finished; it runs again"
        try:
            store = self.services.store
            await store.fail_job(job, reason, await store.now())
        except StoreError as exc:  # the lease still runs out: another worker takes over
            log.warning("job %s: could not release it: %s", job.id, exc)
            return
        log.info("job %s (%s) released: it runs again on the next worker", job.id, job.kind)

    async def _leased(self, job: Job, work: Awaitable[StrEnum]) -> StrEnum:
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

    async def _failed(
        self, job: Job, workflow: Workflow[Any], work: Any, exc: Exception
    ) -> WorkerResult:
        store, error = self.services.store, self.redactor.mask(describe(exc))
        log.warning("job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempts, error)
        if await store.is_superseded(job):
            await store.complete_job(job, JobState.SUPERSEDED)
            return WorkerResult.SUPERSEDED
        final = job.attempts >= self.services.settings.job_max_attempts
        # The store's time, not this host's: on PostgreSQL every replica reads the same one.
        retry_at = None if final else await store.now() + backoff(job.attempts, exc)
        state = await store.fail_job(job, error, retry_at)
        try:
            await workflow.report_failure(self.services, work, Failure(job, error, final))
        except Exception as report_error:  # the forge itself may be what is failing
            log.warning("job %s: could not report the failure: %s", job.id, describe(report_error))
        if state is JobState.DEAD:
            await notify_dead_letter(self.services, job, error, work)
        return WorkerResult.DEAD if state is JobState.DEAD else WorkerResult.RETRY


def backoff(attempt: int, exc: Exception) -> float:
    """Seconds until the next attempt: the forge's word when it gave one, else exponential."""
    if isinstance(exc, ForgeError) and exc.retry_in is not None:
        return exc.retry_in
    return float(min(BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))


def describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:1000]


async def wind_down(
    workers: list[asyncio.Task[None]], seconds: float, hurry: asyncio.Event
) -> None:
    """Wait for stopping workers to finish their jobs, for at most `seconds` or until
    `hurry` is set; then cancel the rest, which releases their jobs (Worker.run_once)."""
    loop = asyncio.get_running_loop()
    deadline, pending = loop.time() + seconds, set(workers)
    hurried = asyncio.ensure_future(hurry.wait())
    try:
        while pending and not hurry.is_set() and (left := deadline - loop.time()) > 0:
            done, _ = await asyncio.wait(
                pending | {hurried}, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            pending -= done
    finally:
        hurried.cancel()
    for task in pending:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


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
