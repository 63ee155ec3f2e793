"""The check pool: jobs run in reused worker processes; a stuck or dead one is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from bot.stages.checkpool import CheckPool, ChecksTimedOut, CheckWorkerFailed

GENEROUS_SECONDS = 60  # a limit no quick job reaches, even on a loaded machine


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_jobs_run_in_one_reused_worker_process_and_errors_come_back() -> None:
    async with CheckPool(1, GENEROUS_SECONDS) as pool:
        first = await pool.run(os.getpid)
        assert first != os.getpid()
        assert await pool.run(os.getpid) == first
        with pytest.raises(ValueError, match="invalid literal"):
            await pool.run(int, "not a number")
        assert await pool.run(os.getpid) == first  # an error in a job keeps the worker


async def test_a_job_past_the_limit_is_killed_and_its_worker_replaced() -> None:
    async with CheckPool(1, 3) as pool:
        first = await pool.run(os.getpid)
        with pytest.raises(ChecksTimedOut) as timed_out:
            await pool.run(time.sleep, 3600)
        assert timed_out.value.seconds == 3
        assert not alive(first)
        replacement = await pool.run(os.getpid)
        assert replacement not in (first, os.getpid())


async def test_a_worker_killed_from_outside_fails_its_job_clearly_then_is_replaced() -> None:
    async with CheckPool(1, GENEROUS_SECONDS) as pool:
        first = await pool.run(os.getpid)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(CheckWorkerFailed, match="ended during a job"):
            await pool.run(os.getpid)
        assert await pool.run(os.getpid) not in (first, os.getpid())


async def test_two_jobs_at_once_get_a_worker_each_and_close_stops_them() -> None:
    pool = CheckPool(2, GENEROUS_SECONDS)
    await pool.warm()
    pids = set(await asyncio.gather(pool.run(os.getpid), pool.run(os.getpid)))
    pool.close()
    assert len(pids) == 2 and os.getpid() not in pids
    assert not any(alive(pid) for pid in pids)
