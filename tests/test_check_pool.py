"""The check pool: jobs run in reused worker processes; a stuck or dead one is replaced;
a plan's checks cross into a worker with everything they need."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from helpers.gitrepos import Repo
from test_custom_resources import APPLICATION, APPLICATION_SCHEMA, ARGO_CONFIG, SCHEMA_FILE

from bot.cli.plan import check_workers
from bot.config.settings import Settings
from bot.git.repos import GitRepo
from bot.renderers import RenderOptions
from bot.stages.checking import run_checks
from bot.stages.checkpool import CheckPool, ChecksTimedOut, CheckWorkerFailed, start_fork_server
from bot.stages.plan import plan_change
from bot.stages.schema_sources import ServerSchemas

T = TypeVar("T")

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


async def test_warming_some_workers_starts_that_many_and_the_rest_when_needed() -> None:
    async with CheckPool(2, GENEROUS_SECONDS) as pool:
        await pool.warm(1)
        assert len(pool._idle) == 1
        warmed = pool._idle[0]
        assert await pool.run(os.getpid) == await pool.run(os.getpid)  # one at a time: reused
        assert pool._idle == [warmed]
        await pool.warm(5)  # never more than the pool's size
        assert len(pool._idle) == 2


def test_the_command_line_checks_on_every_core_unless_the_settings_say() -> None:
    assert check_workers(Settings()) == (os.cpu_count() or 1)
    assert check_workers(Settings(check_workers=3)) == 3


async def test_two_jobs_at_once_get_a_worker_each_and_close_stops_them() -> None:
    pool = CheckPool(2, GENEROUS_SECONDS)
    await pool.warm()
    pids = set(await asyncio.gather(pool.run(os.getpid), pool.run(os.getpid)))
    pool.close()
    assert len(pids) == 2 and os.getpid() not in pids
    assert not any(alive(pid) for pid in pids)


async def test_a_plan_through_the_pool_gets_the_custom_schemas_the_server_gathered(
    tmp_path: Path,
) -> None:
    """The repository's schema folder is read in the server, the organisation's folder
    crosses as a path: in a worker process both check the object as they do in a thread."""
    folder = tmp_path / "org-schemas"
    (folder / "argoproj.io").mkdir(parents=True)
    (folder / "argoproj.io/workflow_v1alpha1.json").write_text(json.dumps({"not": {}}))
    repo = Repo(tmp_path / "repo")
    tree = {".gitops-bot.yaml": ARGO_CONFIG, SCHEMA_FILE: json.dumps(APPLICATION_SCHEMA)}
    typo = APPLICATION.replace("  project:", "  projet:")
    base = repo.commit(tree)
    head = repo.commit(tree | {"apps/guestbook.yaml": typo, "apps/other.yaml": OTHER_APP})
    server = ServerSchemas(folder)

    async def plan(options: RenderOptions) -> list[str]:
        planned = await plan_change(
            GitRepo(repo.path), base, head, b"k", render_options=options, server_schemas=server
        )
        return sorted(f.describe() for f in planned.all_findings)

    async with CheckPool(1, GENEROUS_SECONDS) as pool:
        in_worker = await plan(RenderOptions(offload=pool.run))
    in_thread = await plan(RenderOptions())
    assert in_worker == in_thread
    assert any("spec.projet" in line and f"catalog {SCHEMA_FILE}" in line for line in in_worker)
    org_schema = f"catalog {folder}/argoproj.io/workflow_v1alpha1.json"
    assert any(org_schema in line for line in in_worker), in_worker


async def test_a_check_past_the_limit_is_a_blocking_finding_never_no_changes(
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "repo")
    config = "environments:\n  argocd: {path: apps, cluster: management}\n"
    base = repo.commit({".gitops-bot.yaml": config})
    head = repo.commit({".gitops-bot.yaml": config, "apps/guestbook.yaml": APPLICATION})
    async with CheckPool(1, 3) as pool:
        slow = RenderOptions(offload=partial(_slowly, pool))
        planned = await plan_change(GitRepo(repo.path), base, head, b"k", render_options=slow)
    [env] = planned.environments
    assert planned.blocking and env.failure is not None
    assert [f.rule for f in env.findings] == ["render.checks-timeout"]


OTHER_APP = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: other, namespace: argocd}
spec: {}
"""


async def _slowly(pool: CheckPool, function: Callable[..., T], /, *args: Any) -> T:
    """Checks (not parsing) sleep past the pool's limit in the worker."""
    if function is not run_checks:
        return await pool.run(function, *args)
    return await pool.run(_sleep_then, function, *args)


def _sleep_then(function: Callable[..., T], *args: Any) -> T:
    time.sleep(3600)
    return function(*args)


async def test_a_fork_server_started_ahead_serves_the_pool() -> None:
    start_fork_server()

    async with CheckPool(1, GENEROUS_SECONDS) as pool:
        assert await pool.run(os.getpid) != os.getpid()


def test_a_fork_server_that_cannot_start_ahead_is_left_to_the_first_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from multiprocessing import forkserver

    def refuse() -> None:
        raise OSError("no more processes")

    monkeypatch.setattr(forkserver, "ensure_running", refuse)

    start_fork_server()  # no traceback: the first worker tries again and says why


# Workers started ahead in a new interpreter: with no other thread, they are forks of it.
AHEAD = """
import asyncio, os, sys, threading, time
if sys.argv[1] == "thread":
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
from bot.stages.checkpool import CheckPool

async def parents(pool):
    async with pool:
        return await asyncio.gather(pool.run(os.getppid), pool.run(os.getppid))

pool = CheckPool(2, 60)
pool.start_ahead()
print(sorted(set(p == os.getpid() for p in asyncio.run(parents(pool)))))
"""


@pytest.mark.parametrize(("threads", "forked"), [("none", "[True]"), ("thread", "[False]")])
def test_workers_started_ahead_are_forks_of_a_process_running_no_other_thread(
    threads: str, forked: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", AHEAD, threads],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == forked
