"""The drift loop of the real app: fake GitHub, real git origin, real kube-apiserver.

A merge applies an environment; hand edits in the cluster then show up in one tracking
issue per environment, which is edited as the drift changes and closed when it clears.
"""

from __future__ import annotations

import asyncio
import json
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers.githubbot import INSTALLATION, SLUG, BotFactory, BotHarness
from helpers.livecluster import LiveEnv, configmap
from test_drift_live import HPA, HPA_IGNORE, autoscale, deployment

from bot.config.clusters import ClusterSettings
from bot.config.watchlist import WatchedRepository
from bot.core.markdown import parse_marker
from bot.server.timers import queue_drift_checks
from bot.store.ports import JobState

TITLE = "Drift detected in prod"
REPOSITORY = f'repository="github:{SLUG}"'


def _tree(live_env: LiveEnv, level: str, **options: Any) -> dict[str, str | bytes]:
    environment = {"path": "deploy", "cluster": "test", "namespace": live_env.namespace}
    config = {"version": 1, "environments": {"prod": environment | options}}
    return {
        ".gitops-bot.yaml": json.dumps(config),
        "deploy/web.yaml": configmap("web", level=level),
    }


async def _bot(
    make_bot: BotFactory, tmp_path: Path, cluster: ClusterSettings, **overrides: Any
) -> BotHarness:
    watched = WatchedRepository(
        "github", SLUG, "master", (tmp_path / "origin").as_uri(), INSTALLATION
    )
    return await make_bot(clusters=(cluster,), drift_repositories=(watched,), **overrides)


async def _merge(bot: BotHarness, number: int, tree: dict[str, str | bytes]) -> str:
    """Merge PR `number` with `tree` and let the bot apply it; the branch moves there."""
    head = bot.origin.commit(tree, f"PR #{number}")
    bot.pull_request("opened", number, head, head)
    bot.fake.pulls[number]["html_url"] = f"https://github.com/{SLUG}/pull/{number}"
    merge = bot.origin.commit(tree, f"Merge #{number}")
    bot.fake.branches["master"] = merge
    assert (await bot.deliver("push", bot.merge(number, merge))).status == 202
    await bot.drain()
    return merge


async def _check(bot: BotHarness) -> None:
    """One tick of the drift loop, and the workers running what it queued."""
    assert await queue_drift_checks(bot.services, "the-timer") == 1
    await bot.drain()


def _edit(live_env: LiveEnv, level: str) -> None:
    patch = json.dumps({"data": {"level": level}})
    live_env.kubectl.run("patch", "configmap", "web", "-n", live_env.namespace, "-p", patch)


def _level(live_env: LiveEnv) -> str:
    live = live_env.configmap("web")
    assert live is not None
    return str(live["data"]["level"])


async def _metrics(bot: BotHarness) -> str:
    response = await bot.client.get("/metrics")
    return await response.text()


async def test_a_hand_edit_opens_one_issue_edited_as_it_changes_then_closed_by_a_fix_in_git(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    bot = await _bot(make_bot, tmp_path, live_env.cluster)
    merge = await _merge(bot, 21, _tree(live_env, "1"))
    await _check(bot)
    assert bot.fake.issues == {}  # in sync: nothing to track

    _edit(live_env, "9")
    await _check(bot)
    await _check(bot)  # nothing changed since: the issue is left as it is

    (issue,) = bot.fake.issues.values()
    number, body = issue["number"], issue["body"]
    assert issue["title"] == TITLE and issue["state"] == "open"
    assert parse_marker(body, "drift:prod") == 1
    assert f"ConfigMap {live_env.namespace}/web" in body
    assert "-  level: '9'" in body and "+  level: '1'" in body
    assert f"<code>data.level</code>: set by [#21](https://github.com/{SLUG}/pull/21)" in body
    assert f"in commit {merge}" in body and "kubectl-patch" in body
    assert "Self-heal is off" in body
    assert bot.fake.calls_to("PATCH", r"/issues/\d+$") == []
    assert f'gitops_bot_drift_objects{{environment="prod",{REPOSITORY}}} 1.0' in (
        await _metrics(bot)
    )

    _edit(live_env, "7")
    await _check(bot)
    (edited,) = bot.fake.issues.values()
    assert edited["number"] == number and "-  level: '7'" in edited["body"]
    assert len(bot.fake.calls_to("PATCH", r"/issues/\d+$")) == 1

    fixed = await _merge(bot, 22, _tree(live_env, "7"))  # Git adopts the hand edit
    await _check(bot)

    (closed,) = bot.fake.issues.values()
    assert closed["state"] == "closed" and closed["state_reason"] == "completed"
    assert len(bot.fake.calls_to("POST", r"/issues$")) == 1  # opened once, never again
    (comment,) = bot.fake.comments_on(number)
    assert f"matches commit {fixed} of the default branch again" in comment["body"]
    assert _level(live_env) == "7"
    metrics = await _metrics(bot)
    assert f'gitops_bot_drift_objects{{environment="prod",{REPOSITORY}}} 0.0' in metrics
    assert f'gitops_bot_drift_check_failed{{environment="prod",{REPOSITORY}}} 0.0' in metrics


async def test_self_heal_off_leaves_the_cluster_alone_and_on_restores_it_audited(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    bot = await _bot(make_bot, tmp_path, live_env.cluster)
    await _merge(bot, 31, _tree(live_env, "1"))
    _edit(live_env, "9")
    await _check(bot)
    assert _level(live_env) == "9"  # self-heal is off: reported, not touched
    (issue,) = bot.fake.issues.values()
    assert issue["state"] == "open"

    healing = await _merge(bot, 32, _tree(live_env, "1", self_heal=True))
    assert _level(live_env) == "9"  # the merge's own apply does not take fields over
    await _check(bot)

    assert _level(live_env) == "1"
    (closed,) = bot.fake.issues.values()
    assert closed["number"] == issue["number"] and closed["state"] == "closed"
    (comment,) = bot.fake.comments_on(issue["number"])
    assert f"**Self-heal** re-applied commit {healing}" in comment["body"]
    last = (await bot.services.store.audit_records("prod"))[-1].entry
    assert (last.trigger, last.result, last.commit) == ("self-heal", "succeeded", healing)
    assert (last.pr_number, last.pr_url) == (32, f"https://github.com/{SLUG}/pull/32")
    assert {o["object"]: o["outcome"] for o in last.objects} == {
        f"ConfigMap {live_env.namespace}/web": "applied"
    }
    assert 'gitops_bot_self_heals_total{result="applied"} 1.0' in await _metrics(bot)

    await _check(bot)  # healed and in sync: no second issue, no second heal
    assert len(bot.fake.issues) == 1
    assert (await bot.services.store.audit_records("prod"))[-1].entry.commit == healing
    assert len([r for r in await bot.services.store.audit_records("prod")]) == 3


async def test_self_heal_never_takes_an_ignored_field_back_from_its_autoscaler(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    ns = live_env.namespace
    bot = await _bot(make_bot, tmp_path, live_env.cluster)
    tree = _tree(live_env, "1", self_heal=True, drift=HPA_IGNORE)
    await _merge(
        bot,
        41,
        tree
        | {
            "deploy/app.yaml": textwrap.dedent(deployment(2)),
            "deploy/hpa.yaml": textwrap.dedent(HPA),
        },
    )
    autoscale(live_env, 5)
    await _check(bot)
    assert bot.fake.issues == {}  # the autoscaler's replicas are not drift

    image = "web=registry.example.com/web:6.6.6"
    live_env.kubectl.run("set", "image", "deployment/web", image, "-n", ns)
    await _check(bot)

    live = live_env.kubectl.get("deployment", "web", ns)
    assert live is not None and live["spec"]["replicas"] == 5  # never set back to Git's 2
    (issue,) = bot.fake.issues.values()
    assert "Self-heal of " in issue["body"] and "did not complete" in issue["body"]
    # brackets from the cluster are character references in the Markdown, [ and ] when shown
    assert "spec.template.spec.containers&#91;0&#93;.image" in issue["body"]
    assert "Deployment.apps " + ns + "/web: spec.replicas" in issue["body"]  # listed as ignored
    assert "never takes one from its autoscaler" in issue["body"]
    changed_by = next(
        line for line in issue["body"].splitlines() if "changed in the cluster" in line
    )
    assert "kubectl-set" in changed_by and "horizontal-pod-autoscaler" not in changed_by

    heals = await _self_heals(bot)
    await _check(bot)  # a failed heal is not repeated at every check
    assert await _self_heals(bot) == heals == 1
    (held,) = bot.fake.issues.values()
    assert "Self-heal held back:** the self-heal of" in held["body"]
    bot.clock.advance(3601)
    await _check(bot)
    assert await _self_heals(bot) == 2


async def _self_heals(bot: BotHarness) -> int:
    records = await bot.services.store.audit_records("prod")
    return sum(r.entry.trigger == "self-heal" for r in records)


async def test_an_unreachable_cluster_raises_an_alert_not_a_clean_bill(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    dead = ClusterSettings("test", kubeconfig=_closed_port_kubeconfig(live_env, tmp_path))
    bot = await _bot(make_bot, tmp_path, dead)
    bot.fake.branches["master"] = bot.origin.commit(_tree(live_env, "1"))

    await _check(bot)
    await _check(bot)

    (issue,) = bot.fake.issues.values()
    assert issue["title"] == "Drift check failing in prod" and issue["state"] == "open"
    assert "Cannot compare:" in issue["body"] and "unreachable" in issue["body"]
    assert 'This is not a "no drift" result' in issue["body"]
    metrics = await _metrics(bot)
    assert f'gitops_bot_drift_check_failed{{environment="prod",{REPOSITORY}}} 1.0' in metrics
    assert "gitops_bot_drift_objects{" not in metrics  # no count at all, least of all zero
    assert "gitops_bot_drift_last_success_timestamp_seconds{" not in metrics


async def test_one_replica_queues_the_checks_of_an_interval_and_they_coalesce(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    bot = await _bot(make_bot, tmp_path, live_env.cluster, drift_interval_seconds=60)
    bot.fake.branches["master"] = bot.origin.commit(_tree(live_env, "1"))

    assert await queue_drift_checks(bot.services, "replica-a") == 1
    assert await queue_drift_checks(bot.services, "replica-b") == 0  # a's interval
    bot.clock.advance(61)
    assert await queue_drift_checks(bot.services, "replica-b") == 1

    counts = await bot.services.store.job_counts()
    assert (counts[JobState.READY], counts[JobState.SUPERSEDED]) == (1, 1)
    assert await bot.drain() == 1


async def test_serve_runs_the_drift_loop_on_its_own(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    dead = ClusterSettings("test", kubeconfig=_closed_port_kubeconfig(live_env, tmp_path))
    bot = await _bot(make_bot, tmp_path, dead, workers=True, drift_interval_seconds=3600)
    bot.fake.branches["master"] = bot.origin.commit(_tree(live_env, "1"))

    for _ in range(1200):  # a guard against a hang, not a timing claim
        if bot.fake.issues:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the drift loop never reported")

    (issue,) = bot.fake.issues.values()
    assert issue["title"] == "Drift check failing in prod"


def _closed_port_kubeconfig(live_env: LiveEnv, tmp_path: Path) -> Path:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = json.loads(live_env.plane.admin_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = tmp_path / "unreachable.kubeconfig"
    path.write_text(json.dumps(config))
    return path


async def test_pushes_arriving_newest_first_leave_the_newest_merge_applied(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    bot = await _bot(make_bot, tmp_path, live_env.cluster)
    older = bot.origin.commit(_tree(live_env, "old"), "Merge #41")
    newer = bot.origin.commit(_tree(live_env, "new"), "Merge #42")
    bot.fake.branches["master"] = newer
    for number, merge in ((41, older), (42, newer)):
        bot.pull_request("opened", number, merge, merge)

    # Both pushes are queued before either runs, the newer one first.
    assert (await bot.deliver("push", bot.merge(42, newer))).status == 202
    assert (await bot.deliver("push", bot.merge(41, older))).status == 202
    await bot.drain()

    assert _level(live_env) == "new"
    records = [(r.entry.commit, r.entry.result) for r in await bot.services.store.audit_records()]
    assert records == [(newer, "succeeded"), (older, "superseded")]
