"""Prune deletes only what the inventory says the bot applied, and never on a bad day."""

from __future__ import annotations

import json
from typing import Any

from helpers.livecluster import LiveEnv, changes_by_key, configmap, outcomes_by_key

from bot.core.inventories import INVENTORY_DATA_KEY, inventory_name
from bot.core.rollouts import COMMIT_ANNOTATION, ENVIRONMENT_ANNOTATION, MANAGED_BY_LABEL


async def test_an_object_with_the_bots_label_copied_on_is_never_pruned(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    live_env.kubectl.apply(
        f"""
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: lookalike
          namespace: {ns}
          labels: {{{MANAGED_BY_LABEL}: gitops-bot}}
          annotations: {{{ENVIRONMENT_ANNOTATION}: prod, {COMMIT_ANNOTATION}: abc}}
        data: {{mine: "yes"}}
        """
    )
    base = live_env.commit({"a.yaml": configmap("a", x="1"), "b.yaml": configmap("b", y="1")})
    assert (await live_env.apply(base)).succeeded
    head = live_env.commit({"a.yaml": configmap("a", x="1")})

    plan = await live_env.env_plan(base, head)
    result = await live_env.apply(head)

    assert plan.live is not None
    assert f"ConfigMap {ns}/lookalike" not in changes_by_key(plan.live.changes)
    assert changes_by_key(plan.live.changes)[f"ConfigMap {ns}/b"] == "prune"
    assert outcomes_by_key(result) == {
        f"ConfigMap {ns}/a": "unchanged",
        f"ConfigMap {ns}/b": "pruned",
    }
    assert live_env.configmap("lookalike") is not None
    assert live_env.configmap("b") is None


async def test_an_empty_render_prunes_nothing(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    base = live_env.commit({"a.yaml": configmap("a", x="1"), "b.yaml": configmap("b", y="1")})
    assert (await live_env.apply(base)).succeeded
    empty = live_env.commit({})

    plan = await live_env.env_plan(base, empty)
    result = await live_env.apply(empty)

    assert plan.blocking
    assert any(f.rule == "prune.empty-render" for f in plan.findings)
    assert plan.live is not None
    assert changes_by_key(plan.live.changes) == {
        f"ConfigMap {ns}/a": "orphan",
        f"ConfigMap {ns}/b": "orphan",
    }
    assert not result.succeeded
    assert result.failure is not None and "renders no objects at all" in result.failure
    assert set(outcomes_by_key(result).values()) == {"skipped"}
    assert live_env.configmap("a") is not None and live_env.configmap("b") is not None


async def test_a_partial_apply_failure_reports_each_object_and_prunes_nothing(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    base = live_env.commit({"a.yaml": configmap("a", x="1"), "old.yaml": configmap("old", y="1")})
    assert (await live_env.apply(base)).succeeded
    # Immutable ConfigMap: the API server refuses to change its data.
    live_env.kubectl.run("patch", "configmap", "a", "-n", ns, "-p", '{"immutable": true}')
    head = live_env.commit({"a.yaml": configmap("a", x="2"), "c.yaml": configmap("c", z="1")})

    result = await live_env.apply(head)

    assert not result.succeeded
    assert outcomes_by_key(result) == {
        f"ConfigMap {ns}/a": "failed",
        f"ConfigMap {ns}/c": "applied",
        f"ConfigMap {ns}/old": "skipped",
    }
    failed = next(o for o in result.objects if o.key.name == "a")
    assert "immutable" in failed.message.lower() or "forbidden" in failed.message.lower()
    assert live_env.configmap("old") is not None
    inventory = _inventory(live_env)
    assert {"a", "c", "old"} <= {e["name"] for e in inventory["entries"]}


async def test_namespaces_are_pruned_only_when_the_environment_allows_it(
    live_env: LiveEnv,
) -> None:
    extra = f"{live_env.namespace}-extra"
    namespace = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {extra}\n"
    files = {"a.yaml": configmap("a", x="1"), "ns.yaml": namespace}
    base = live_env.commit(files)
    assert (await live_env.apply(base)).succeeded
    head = live_env.commit({"a.yaml": configmap("a", x="1")})

    kept = await live_env.apply(head)

    assert kept.succeeded
    assert outcomes_by_key(kept)[f"Namespace {extra}"] == "skipped"
    message = next(o.message for o in kept.objects if o.key.kind == "Namespace")
    assert "allow_prune_kinds" in message
    assert live_env.kubectl.get("namespace", extra) is not None

    allowed = live_env.commit({"a.yaml": configmap("a", x="1")}, allow_prune_kinds=["Namespace"])
    pruned = await live_env.apply(allowed)

    assert outcomes_by_key(pruned)[f"Namespace {extra}"] == "pruned"
    gone = live_env.kubectl.get("namespace", extra)  # no controller finishes the deletion
    assert gone is None or gone["metadata"].get("deletionTimestamp")


async def test_prune_off_leaves_removed_objects_and_stops_tracking_them(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    base = live_env.commit(
        {"a.yaml": configmap("a", x="1"), "b.yaml": configmap("b", y="1")}, prune=False
    )
    assert (await live_env.apply(base)).succeeded
    head = live_env.commit({"a.yaml": configmap("a", x="1")}, prune=False)

    result = await live_env.apply(head)

    assert result.succeeded
    assert outcomes_by_key(result)[f"ConfigMap {ns}/b"] == "skipped"
    assert live_env.configmap("b") is not None
    assert {e["name"] for e in _inventory(live_env)["entries"]} == {"a"}


def _inventory(live_env: LiveEnv) -> dict[str, Any]:
    stored = live_env.configmap(inventory_name("prod"))
    assert stored is not None
    data: dict[str, Any] = json.loads(stored["data"][INVENTORY_DATA_KEY])
    return data
