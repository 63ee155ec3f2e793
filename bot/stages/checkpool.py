"""Worker processes for parsing and checks: reused, each job bounded in time.

The server's event loop and GIL answer webhooks and health checks. Parsing rendered
YAML and running schemas and a repository's own policies over it is CPU work whose cost
the repository decides, so it runs here: a renderer's parsing, then the render's
checks (bot/stages/checking.py), two jobs with the server's gathering of schemas
between. Workers start with `forkserver`: a clean process that imported the checking
code once forks each of them, which is safe while the server runs threads (a plain fork
could copy a held lock) and quick after the first. A job that outlives the time limit
has its worker killed and replaced; its caller gets ChecksTimedOut, which the plan
reports as a finding.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from multiprocessing.context import ForkContext, ForkServerContext

from bot.stages.checklimits import ChecksTimedOut as ChecksTimedOut

T = TypeVar("T")
# Imported once by the fork server, so each worker starts with the checking code loaded.
# What the fork server imports for its workers: the checks and every renderer's parsing
# (the renderers' package imports kustomize's and Helm's adapters only where used).
_PRELOAD = ["bot.renderers", "bot.renderers.kustomize", "bot.renderers.helm", "bot.stages.checking"]
_STOP_SECONDS = 5.0


class CheckWorkerFailed(RuntimeError):
    """The worker process ended in the middle of a job (killed from outside, out of memory)."""


class CheckPool:
    """Up to `size` worker processes, started when first needed (or by `warm`)."""

    def __init__(self, size: int, timeout_seconds: float) -> None:
        self.size, self.timeout_seconds = max(1, size), timeout_seconds
        self._idle: list[_Worker] = []
        self._slots = asyncio.Semaphore(self.size)
        # Sending, receiving (and so pickling) and starting block: never on the event loop.
        self._threads = ThreadPoolExecutor(self.size, thread_name_prefix="check-pool")

    async def __aenter__(self) -> CheckPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def start_ahead(self) -> None:
        """Start the workers now, for a command that starts cold.

        Forked from this process where that is safe (no other thread runs: a fork
        could copy a held lock), each is ready at once with what this interpreter has
        imported. Otherwise the fork server starts now, a new interpreter importing the
        checks while the command goes on. Replacements always come from the fork server.
        """
        if not hasattr(os, "fork") or threading.active_count() > 1:
            start_fork_server()
            return
        sys.stdout.flush()  # what is buffered here must not be written again by a child
        sys.stderr.flush()
        self._idle += [_Worker(forked=True) for _ in range(self.size - len(self._idle))]

    async def warm(self, workers: int | None = None) -> None:
        """Start every worker (or `workers` of them) now, so the first plans do not wait."""
        count = self.size if workers is None else min(workers, self.size)
        await asyncio.gather(*(self.run(_ready) for _ in range(count)))

    async def run(self, function: Callable[..., T], /, *args: Any) -> T:
        """`function(*args)` in a worker; ChecksTimedOut when it takes too long.

        The function and its arguments must pickle (a module-level function, plain
        data); its exception, if any, is raised here.
        """
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._in_thread(_Worker)
            try:
                call = self._in_thread(worker.call, function, args)
                succeeded, value = await asyncio.wait_for(call, self.timeout_seconds)
            except BaseException as exc:  # timeout, shutdown, dead worker: never reused
                worker.stop()
                if isinstance(exc, TimeoutError):
                    raise ChecksTimedOut(self.timeout_seconds) from None
                raise
            self._idle.append(worker)
        if not succeeded:
            raise value
        result: T = value
        return result

    def close(self) -> None:
        """Stop the idle workers; a busy one is stopped by its cancelled `run`."""
        while self._idle:
            self._idle.pop().retire()
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _in_thread(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._threads, function, *args)


def start_fork_server() -> None:
    """Start the process the workers fork from now, for a command that starts cold.

    It is a new interpreter importing the checking code: started first thing, that
    overlaps the command's own imports and reading instead of delaying its first job.
    Without it, the first worker starts it.
    """
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(_PRELOAD)
    # One that cannot start is tried again by the first worker, which says why.
    with contextlib.suppress(Exception):
        forkserver.ensure_running()


def _context(forked: bool) -> ForkContext | ForkServerContext:
    """Workers forked from this process, or from the fork server that imported the checks."""
    import multiprocessing  # only here: every command would pay for the import

    if forked:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


class _Worker:
    """One worker process and the pipe to it."""

    def __init__(self, forked: bool = False) -> None:
        context = _context(forked)
        self._connection, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(theirs,), name="gitops-bot-checks", daemon=True
        )
        self._process.start()
        theirs.close()

    def call(self, function: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        """Send one job, wait for its outcome: (True, result) or (False, exception)."""
        try:
            self._connection.send((function, args))
            outcome: tuple[bool, Any] = self._connection.recv()
        except (EOFError, OSError):
            self._connection.close()  # this thread is the only reader: closing here is safe
            self._process.join(_STOP_SECONDS)
            raise CheckWorkerFailed(
                f"the check worker process ended during a job (exit code "
                f"{self._process.exitcode}); it was replaced, and the job can be retried"
            ) from None
        return outcome

    def stop(self) -> None:
        """Kill the process; a thread waiting on the pipe then sees it close."""
        self._process.kill()
        self._process.join(_STOP_SECONDS)

    def retire(self) -> None:
        """Stop an idle worker: no thread waits on its pipe, so it is closed here."""
        self.stop()
        self._connection.close()


def _serve(connection: Any) -> None:
    """The worker's loop: a job in, its outcome out, until the server closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    while True:
        try:
            function, args = connection.recv()
        except EOFError:
            return
        try:
            outcome: tuple[bool, Any] = (True, function(*args))
        except Exception as exc:
            outcome = (False, exc)
        try:
            connection.send(outcome)
        except Exception as exc:  # the result or the exception would not pickle
            connection.send((False, CheckWorkerFailed(f"a check's outcome cannot be sent: {exc}")))


def _ready() -> None:
    """The job `warm` sends: starting the worker is the point."""
