"""The live layer starts once both commits are rendered, while the head's checks still run;
what the checks then decide still wins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from helpers.gitrepos import Repo
from helpers.manifests import CONFIG, configmap, deployment

from bot.core.livediffs import LiveLayer
from bot.core.manifests import LoadResult
from bot.core.plans import LiveOutcome
from bot.core.repoconfig import Environment
from bot.git.repos import GitRepo
from bot.renderers import RenderOptions
from bot.stages.checking import run_checks
from bot.stages.checkpool import ChecksTimedOut
from bot.stages.plan import plan_change

KEY = b"test-fingerprint-key"
WAIT_SECONDS = 20  # far more than a started task needs to run, even on a loaded machine


class FakeLive:
    """A live layer that records what it was given and can be held until cancelled."""

    def __init__(self, hold: bool = False) -> None:
        self.started, self.cancelled = asyncio.Event(), asyncio.Event()
        self.heads: list[LoadResult] = []
        self.hold = hold

    async def __call__(
        self, env: Environment, base: LoadResult, head: LoadResult, commit: str
    ) -> LiveOutcome:
        self.heads.append(head)
        self.started.set()
        if self.hold:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        return LiveOutcome(LiveLayer(env.cluster))


def checks_after(live: FakeLive, then: Callable[..., Any] | None = None) -> RenderOptions:
    """Render options whose checks begin only once the live layer has started."""

    async def offload(function: Callable[..., Any], *args: Any) -> Any:
        if function is run_checks:
            await asyncio.wait_for(live.started.wait(), WAIT_SECONDS)
            if then is not None:
                return then()
        return await asyncio.to_thread(function, *args)

    return RenderOptions(offload=offload)


async def test_the_live_layer_starts_before_the_heads_checks_end(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    head = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment(replicas=3)})
    live = FakeLive()
    # Were the live layer started after the checks, the checks would wait for it in vain.
    plan = await plan_change(
        GitRepo(repo.path), base, head, KEY, render_options=checks_after(live), live=live
    )
    [env] = plan.environments
    assert env.live == LiveLayer(env.environment.cluster)
    assert env.failure is None and len(env.changes) == 1
    [given] = live.heads
    assert [m.key.name for m in given.manifests] == ["web"]


async def test_checks_out_of_time_stop_the_live_layer_and_block(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    head = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment(replicas=3)})
    live = FakeLive(hold=True)

    def timed_out() -> None:
        raise ChecksTimedOut(5)

    plan = await plan_change(
        GitRepo(repo.path), base, head, KEY, render_options=checks_after(live, timed_out), live=live
    )
    [env] = plan.environments
    assert env.failure is not None and "checks did not finish within 5 s" in env.failure
    assert env.live is None and plan.blocking
    assert live.cancelled.is_set()


async def test_a_deleted_folder_is_previewed_live_as_everything_going(repo: Repo) -> None:
    files = {"deploy/web.yaml": deployment(), "deploy/cm.yaml": configmap()}
    base = repo.commit({".gitops-bot.yaml": CONFIG, **files})
    head = repo.commit({".gitops-bot.yaml": CONFIG, "elsewhere/README.md": "moved"})
    live = FakeLive()
    plan = await plan_change(
        GitRepo(repo.path), base, head, KEY, render_options=checks_after(live), live=live
    )
    [env] = plan.environments
    assert env.live == LiveLayer(env.environment.cluster)
    assert [h.manifests for h in live.heads] == [()]  # started once, with nothing at the head
