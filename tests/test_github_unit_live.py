"""A pull request in a repository managed by Argo CD, compared with the live cluster."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.githubbot import INSTALLATION, SLUG, BotFactory
from helpers.gitopsrepo import application
from helpers.livecluster import CLUSTER, LiveEnv, configmap
from test_live_units import IN_ARGOCD, snapshot

from bot.config.watchlist import WatchedRepository
from bot.core.controllerapply import ARGOCD_MANAGER, ARGOCD_TRACKING, ControllerClusters
from bot.server.timers import queue_drift_checks


def repository(clone_url: str, namespace: str, level: str) -> dict[str, str]:
    app = application("web", f"repoURL: {clone_url}\npath: deploy\n", namespace)
    return {"apps/web.yaml": app, "deploy/web.yaml": configmap("web", level=level)}


def synced(live_env: LiveEnv, level: str) -> None:
    ns = live_env.namespace
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "web",
            "namespace": ns,
            "annotations": {ARGOCD_TRACKING: f"web:/ConfigMap:{ns}/web"},
        },
        "data": {"level": level},
    }
    live_env.kubectl.apply(json.dumps(body), "--server-side", f"--field-manager={ARGOCD_MANAGER}")


async def test_the_comment_shows_the_live_drift_of_a_mapped_application(
    make_bot: BotFactory, live_env: LiveEnv
) -> None:
    ns = live_env.namespace
    mapping = ControllerClusters(argocd=((IN_ARGOCD, CLUSTER),))
    bot = await make_bot(clusters=(live_env.cluster,), controller_clusters=mapping)
    base = bot.origin.commit(repository(bot.clone_url, ns, "1"))
    synced(live_env, "9")  # changed by hand after Argo CD's sync
    head = bot.origin.commit(repository(bot.clone_url, ns, "2"))
    before = snapshot(live_env)

    await bot.deliver("pull_request", bot.pull_request("opened", 5, base, head))
    assert await bot.drain() == 1

    assert snapshot(live_env) == before  # a preview: nothing written to the cluster
    [comment] = bot.fake.comments_on(5)
    body = comment["body"]
    assert f"#### Environment `argocd/web` → cluster `{IN_ARGOCD}`" in body
    assert "Drift already in the cluster, not from this change" in body
    assert f"ConfigMap {ns}/web</code>: differs from Git" in body
    assert "not compared" not in body


async def test_an_application_that_is_not_mapped_names_the_setting(
    make_bot: BotFactory, live_env: LiveEnv
) -> None:
    bot = await make_bot(clusters=(live_env.cluster,))
    base = bot.origin.commit(repository(bot.clone_url, live_env.namespace, "1"))
    head = bot.origin.commit(repository(bot.clone_url, live_env.namespace, "2"))

    await bot.deliver("pull_request", bot.pull_request("opened", 5, base, head))
    assert await bot.drain() == 1

    [comment] = bot.fake.comments_on(5)
    assert (
        "Live cluster: not compared (the `controller_clusters` server setting maps its "
        f"destination `{IN_ARGOCD}` to none of the bot's clusters" in comment["body"]
    )


async def test_the_drift_loop_opens_an_issue_for_a_drifted_application(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    ns = live_env.namespace
    watched = WatchedRepository(
        "github", SLUG, "master", (tmp_path / "origin").as_uri(), INSTALLATION
    )
    mapping = ControllerClusters(argocd=((IN_ARGOCD, CLUSTER),))
    bot = await make_bot(
        clusters=(live_env.cluster,), controller_clusters=mapping, drift_repositories=(watched,)
    )
    bot.fake.branches["master"] = bot.origin.commit(repository(bot.clone_url, ns, "1"))
    synced(live_env, "1")

    assert await queue_drift_checks(bot.services, "the-timer") == 1
    await bot.drain()
    assert bot.fake.issues == {}  # in sync as Argo CD applied it: nothing to track
    metrics = await (await bot.client.get("/metrics")).text()
    checked = [line for line in metrics.splitlines() if line.startswith("gitops_bot_drift_objects")]
    assert len(checked) == 1 and 'environment="argocd/web"' in checked[0]
    assert checked[0].endswith(" 0.0")

    synced(live_env, "1")
    patch = json.dumps({"data": {"level": "3"}})
    live_env.kubectl.run("patch", "configmap", "web", "-n", ns, "-p", patch)
    before = snapshot(live_env)
    assert await queue_drift_checks(bot.services, "the-timer") == 1
    await bot.drain()

    assert snapshot(live_env) == before  # reported, never healed: Argo CD does that
    [issue] = bot.fake.issues.values()
    assert issue["title"] == "Drift detected in argocd/web"
    assert f"ConfigMap {ns}/web" in issue["body"]
