"""Break-glass `gitops-bot apply` (the CLI, as a subprocess) and the server (signed
deliveries to the real app) apply one environment of a real kube-apiserver through the same
audited apply: each sees the other's lock and the other's applied commit."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.githubbot import ROOT, SLUG, BotFactory, BotHarness
from helpers.livecluster import CLUSTER, ENV, LiveEnv, configmap
from helpers.storetools import execute_sql

from bot.config.clusters import ClusterSettings
from bot.store.ports import JobState

KEY = f"github:{SLUG}:{ENV}"
GUARD_SECONDS = 120  # stops a hang; never a claim about speed


def _tree(live_env: LiveEnv, level: str) -> dict[str, str | bytes]:
    environment = {"path": "deploy", "cluster": CLUSTER, "namespace": live_env.namespace}
    config = {"version": 1, "environments": {ENV: {**environment, "apply_on_merge": True}}}
    return {
        ".gitops-bot.yaml": json.dumps(config),
        "deploy/web.yaml": configmap("web", level=level),
    }


async def _merged(bot: BotHarness, number: int, tree: dict[str, str | bytes]) -> str:
    head = bot.origin.commit(tree, f"PR #{number}")
    bot.pull_request("opened", number, head, head)
    return bot.origin.commit(tree, f"Merge #{number}")


async def _apply_merge(bot: BotHarness, number: int, merge: str) -> None:
    assert (await bot.deliver("push", bot.merge(number, merge))).status == 202
    await bot.drain()


def _checkout(bot: BotHarness, tmp_path: Path) -> Path:
    """An operator's clone, whose `origin` names the repository on github.com."""
    path = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(bot.origin.path), str(path)], check=True)
    url = f"https://github.com/{SLUG}.git"
    subprocess.run(["git", "-C", str(path), "remote", "set-url", "origin", url], check=True)
    return path


def _cluster_setting(kubeconfig: Path, namespace: str) -> str:
    cluster = {"kubeconfig": str(kubeconfig), "context": "admin", "timeout_seconds": 600}
    return json.dumps({CLUSTER: {**cluster, "inventory_namespace": namespace}})


def _command(bot: BotHarness, checkout: Path, ref: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bot",
        "apply",
        "--env",
        ENV,
        "--repo",
        str(checkout),
        "--ref",
        ref,
        *extra,
    ]


def _environment(bot: BotHarness, clusters: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    return {
        **env,
        "GITOPS_BOT_DATABASE_URL": f"sqlite:///{bot.database}",
        "GITOPS_BOT_CLUSTERS": clusters,
    }


def _break_glass(bot: BotHarness, checkout: Path, clusters: str, ref: str, *extra: str) -> Any:
    return subprocess.run(
        _command(bot, checkout, ref, *extra),
        env=_environment(bot, clusters),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _level(live_env: LiveEnv) -> str:
    live = live_env.configmap("web")
    assert live is not None
    return str(live["data"]["level"])


async def test_break_glass_and_merges_see_each_others_applied_commit(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    bot = await make_bot(clusters=(live_env.cluster,))
    first = await _merged(bot, 41, _tree(live_env, "1"))
    await _apply_merge(bot, 41, first)
    late = await _merged(bot, 42, _tree(live_env, "2"))  # its push is delayed
    hotfix = bot.origin.commit(_tree(live_env, "3"), "hotfix, pushed straight to master")
    checkout = _checkout(bot, tmp_path)
    clusters = _cluster_setting(live_env.plane.admin_kubeconfig, live_env.namespace)

    fixed = _break_glass(bot, checkout, clusters, hotfix)
    assert fixed.returncode == 0, fixed.stderr
    assert _level(live_env) == "3"

    await _apply_merge(bot, 42, late)  # the server sees what break-glass applied
    assert _level(live_env) == "3"
    assert {d["ref"] for d in bot.fake.deployments.values()} == {first}

    newest = await _merged(bot, 43, _tree(live_env, "4"))
    await _apply_merge(bot, 43, newest)
    assert _level(live_env) == "4"
    stale = _break_glass(bot, checkout, clusters, hotfix)  # the clone lacks the newest
    assert stale.returncode == 3 and f"runs {newest[:12]}, which" in stale.stderr
    assert "nothing was applied" in stale.stderr
    fetch = ["git", "-C", str(checkout), "fetch", "-q", str(bot.origin.path), "HEAD"]
    subprocess.run(fetch, check=True)
    back = _break_glass(bot, checkout, clusters, hotfix)  # break-glass sees the server's
    assert back.returncode == 3 and f"runs {newest[:12]}" in back.stderr
    assert "--allow-older" in back.stderr
    assert _level(live_env) == "4"

    rollback = _break_glass(bot, checkout, clusters, hotfix, "--allow-older")
    assert rollback.returncode == 0, rollback.stderr
    assert _level(live_env) == "3"
    applied = await bot.services.store.last_applied(KEY)
    assert applied is not None and applied.commit == hotfix

    records = [r.entry for r in await bot.services.store.audit_records()]
    assert [(e.commit, e.trigger, e.result) for e in records] == [
        (first, "merge", "succeeded"),
        (hotfix, "break-glass", "succeeded"),
        (late, "merge", "superseded"),
        (newest, "merge", "succeeded"),
        (hotfix, "break-glass", "superseded"),
        (hotfix, "break-glass", "succeeded"),
    ]
    assert {e.repository for e in records} == {f"github:{SLUG}"}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers: a cluster that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def _silent_kubeconfig(live_env: LiveEnv, port: int, tmp_path: Path) -> Path:
    config = json.loads(live_env.plane.admin_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = tmp_path / "silent.kubeconfig"
    path.write_text(json.dumps(config))
    return path


def _wait_for_lock(bot: BotHarness, holder_prefix: str) -> None:
    deadline = time.monotonic() + GUARD_SECONDS
    sql = "SELECT holder FROM environment_locks WHERE environment = ?"
    while not any(
        h.startswith(holder_prefix)
        for (h,) in execute_sql(f"sqlite:///{bot.database}", sql, (KEY,))
    ):
        assert time.monotonic() < deadline, f"no {holder_prefix} lock on {KEY}"
        time.sleep(0.1)


async def test_a_merge_waits_while_break_glass_holds_the_environment(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path, silent_port: int
) -> None:
    bot = await make_bot(clusters=(live_env.cluster,))
    first = await _merged(bot, 51, _tree(live_env, "1"))
    checkout = _checkout(bot, tmp_path)
    hanging = _cluster_setting(
        _silent_kubeconfig(live_env, silent_port, tmp_path), live_env.namespace
    )
    operator = subprocess.Popen(
        _command(bot, checkout, first),
        env=_environment(bot, hanging),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await asyncio.to_thread(_wait_for_lock, bot, "break-glass:")
        await _apply_merge(bot, 51, first)
    finally:
        operator.kill()
        operator.wait()

    job = await bot.services.store.job(1)
    assert job is not None and job.state is JobState.READY  # to be retried
    assert "being applied by another job" in (job.last_error or "")
    assert live_env.configmap("web") is None and not bot.fake.deployments

    bot.clock.advance(3600)  # the killed operator's lock runs out; the retry comes due
    await bot.drain()
    assert _level(live_env) == "1"
    assert (await bot.services.store.job_counts())[JobState.DONE] == 1


async def test_break_glass_waits_while_a_merge_holds_the_environment(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path, silent_port: int
) -> None:
    hanging = _silent_kubeconfig(live_env, silent_port, tmp_path)
    cluster = ClusterSettings(
        CLUSTER, kubeconfig=hanging, inventory_namespace=live_env.namespace, timeout_seconds=600
    )
    bot = await make_bot(clusters=(cluster,))
    first = await _merged(bot, 61, _tree(live_env, "1"))
    checkout = _checkout(bot, tmp_path)
    assert (await bot.deliver("push", bot.merge(61, first))).status == 202
    server = asyncio.ensure_future(bot.drain())  # its apply hangs on the silent cluster
    try:
        await asyncio.to_thread(_wait_for_lock, bot, "job-")
        clusters = _cluster_setting(live_env.plane.admin_kubeconfig, live_env.namespace)
        refused = await asyncio.to_thread(_break_glass, bot, checkout, clusters, first)
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)

    assert refused.returncode == 3, refused.stderr
    assert "being applied by another job" in refused.stderr
    assert live_env.configmap("web") is None
    assert await bot.services.store.audit_records() == []


async def test_break_glass_refuses_a_repository_it_cannot_name(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    """A clone of a path is no repository of the server's: its key would be no one's."""
    bot = await make_bot(clusters=(live_env.cluster,))
    first = await _merged(bot, 71, _tree(live_env, "1"))
    clusters = _cluster_setting(live_env.plane.admin_kubeconfig, live_env.namespace)

    refused = _break_glass(bot, bot.origin.path, clusters, first)
    malformed = _break_glass(bot, bot.origin.path, clusters, first, "--repository", "acme/shop")

    assert refused.returncode == 2 and "pass --repository FORGE:OWNER/NAME" in refused.stderr
    assert malformed.returncode == 2 and "write github:OWNER/NAME" in malformed.stderr
    assert live_env.configmap("web") is None
    assert await bot.services.store.audit_records() == []
