"""Drift and conflicts: hand edits in the cluster, and fields another field manager owns."""

from __future__ import annotations

import base64
import json

from helpers.livecluster import LiveEnv, changes_by_key, configmap, outcomes_by_key

from bot.core.comments import render_plan
from bot.core.findings import Severity, Stage
from bot.core.reports import plan_as_data


async def test_a_hand_edit_shows_up_as_drift_not_as_part_of_the_change(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    files = {"web.yaml": configmap("web", level="1"), "db.yaml": configmap("db", size="10")}
    base = live_env.commit(files)
    assert (await live_env.apply(base)).succeeded
    live_env.kubectl.run("patch", "configmap", "web", "-n", ns, "-p", '{"data":{"level":"9"}}')
    head = live_env.commit({**files, "db.yaml": configmap("db", size="20")})

    plan = await live_env.plan(base, head)

    (env,) = plan.environments
    assert changes_by_key(env.changes)[f"ConfigMap {ns}/web"] == "unchanged"  # not the PR's
    assert env.live is not None
    assert changes_by_key(env.live.drift) == {f"ConfigMap {ns}/web": "update"}
    (drift,) = env.live.drift
    assert "-  level: '9'" in drift.diff and "+  level: '1'" in drift.diff
    comment = "\n".join(render_plan(plan))
    assert "Drift already in the cluster, not from this change" in comment
    assert f"ConfigMap {ns}/web</code>: differs from Git" in comment


async def test_a_hand_edit_of_a_field_the_bot_sets_is_a_reported_conflict(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    base = live_env.commit({"web.yaml": configmap("web", level="1")})
    assert (await live_env.apply(base)).succeeded
    live_env.kubectl.run("patch", "configmap", "web", "-n", ns, "-p", '{"data":{"level":"9"}}')

    plan = await live_env.env_plan(base, base)

    (finding,) = [f for f in plan.findings if f.stage is Stage.CLUSTER]
    assert finding.rule == "cluster.conflict" and finding.severity is Severity.ERROR
    assert 'conflict with "kubectl-patch"' in finding.message
    assert ".data.level" in finding.message
    assert finding.path == "deploy/web.yaml" and finding.line == 1
    assert plan.blocking


async def test_a_field_owned_by_another_manager_is_a_conflict_in_plan_and_apply(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    base = live_env.commit(
        {"web.yaml": configmap("web", level="1"), "old.yaml": configmap("old", a="b")}
    )
    assert (await live_env.apply(base)).succeeded
    live_env.kubectl.apply(
        f"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: web, namespace: {ns}}}
        data: {{level: "5"}}
        """,
        "--server-side",
        "--field-manager=platform-team",
        "--force-conflicts",
    )
    head = live_env.commit({"web.yaml": configmap("web", level="2")})

    plan = await live_env.env_plan(base, head)

    conflicts = [f for f in plan.findings if f.rule == "cluster.conflict"]
    assert len(conflicts) == 1
    assert 'conflict with "platform-team": .data.level' in conflicts[0].message
    assert plan.blocking
    assert plan.live is not None  # the forced dry run still shows what would change
    assert changes_by_key(plan.live.changes)[f"ConfigMap {ns}/web"] == "update"

    result = await live_env.apply(head)

    assert not result.succeeded
    outcomes = outcomes_by_key(result)
    assert outcomes[f"ConfigMap {ns}/web"] == "failed"
    assert outcomes[f"ConfigMap {ns}/old"] == "skipped"  # no prune after a failure
    assert live_env.configmap("old") is not None
    web = live_env.configmap("web")
    assert web is not None and web["data"] == {"level": "5"}
    failed = next(o for o in result.objects if o.key.name == "web")
    assert "platform-team" in failed.message


async def test_force_conflicts_takes_over_and_reports_it(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    base = live_env.commit({"web.yaml": configmap("web", level="1")}, force_conflicts=True)
    assert (await live_env.apply(base)).succeeded
    live_env.kubectl.run("patch", "configmap", "web", "-n", ns, "-p", '{"data":{"level":"9"}}')
    head = live_env.commit({"web.yaml": configmap("web", level="2")}, force_conflicts=True)

    plan = await live_env.env_plan(base, head)

    (finding,) = [f for f in plan.findings if f.stage is Stage.CLUSTER]
    assert finding.rule == "cluster.conflict-takeover"
    assert finding.severity is Severity.WARNING
    assert not plan.blocking

    result = await live_env.apply(head)

    assert result.succeeded, result
    (item,) = result.objects
    assert str(item.outcome) == "applied"
    assert 'took over fields from another field manager: conflict with "kubectl-patch"' in (
        item.message
    )
    web = live_env.configmap("web")
    assert web is not None and web["data"] == {"level": "2"}


async def test_secret_values_never_show_in_drift_or_conflicts(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    secret = f"""\
        apiVersion: v1
        kind: Secret
        metadata: {{name: creds, namespace: {ns}}}
        stringData: {{password: first-Secret-Value}}
        """
    base = live_env.commit({"creds.yaml": secret})
    assert (await live_env.apply(base)).succeeded
    live_env.kubectl.run(
        "patch",
        "secret",
        "creds",
        "-n",
        ns,
        "-p",
        '{"stringData":{"password":"hand-Edited-Value"}}',
    )

    plan = await live_env.plan(base, base)

    everything = json.dumps(plan_as_data(plan)) + "\n".join(render_plan(plan))
    (env,) = plan.environments
    assert env.live is not None and len(env.live.drift) == 1
    for value in ("first-Secret-Value", "hand-Edited-Value"):
        assert value not in everything
        encoded = base64.b64encode(value.encode()).decode()
        assert encoded not in everything
    assert "(hidden, fingerprint" in env.live.drift[0].diff
