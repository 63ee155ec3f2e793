"""A custom resource whose CRD arrives in the same change: previewed as such, then applied."""

from __future__ import annotations

from helpers.livecluster import LiveEnv, changes_by_key, configmap, outcomes_by_key
from helpers.manifests import widget_crd

from bot.core.comments import render_plan
from bot.core.livediffs import WITH_CRD


def _widget(group: str, size: int) -> str:
    return f"""\
        apiVersion: {group}/v1
        kind: Widget
        metadata:
          name: gadget
        spec:
          size: {size}
        """


async def test_a_resource_whose_crd_is_only_in_the_change_is_created_with_it(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    group = f"{ns}.example.com"
    base = live_env.commit({"a.yaml": configmap("a", x="1")})
    assert (await live_env.apply(base)).succeeded
    head = live_env.commit(
        {
            "a.yaml": configmap("a", x="1"),
            "crd.yaml": widget_crd(group),
            "w.yaml": _widget(group, 3),
        }
    )

    plan = await live_env.plan(base, head)

    (env,) = plan.environments
    assert not plan.blocking, [f.describe() for f in plan.all_findings]
    assert env.live is not None
    assert changes_by_key(env.live.changes) == {
        f"ConfigMap {ns}/a": "unchanged",
        f"CustomResourceDefinition.apiextensions.k8s.io widgets.{group}": "create",
        f"Widget.{group} {ns}/gadget": "create",
    }
    widget = next(c for c in env.live.changes if c.key.kind == "Widget")
    assert widget.note == WITH_CRD
    assert "will be created with its CRD" in "\n".join(render_plan(plan))

    result = await live_env.apply(head)

    assert result.succeeded, result
    assert outcomes_by_key(result)[f"Widget.{group} {ns}/gadget"] == "applied"
    stored = live_env.kubectl.get(f"widgets.{group}", "gadget", ns)
    assert stored is not None and stored["spec"] == {"size": 3}

    later = live_env.commit(
        {
            "a.yaml": configmap("a", x="1"),
            "crd.yaml": widget_crd(group),
            "w.yaml": _widget(group, 4),
        }
    )
    env_plan = await live_env.env_plan(head, later)
    assert env_plan.live is not None
    assert changes_by_key(env_plan.live.changes)[f"Widget.{group} {ns}/gadget"] == "update"


async def test_a_kind_the_cluster_does_not_serve_is_an_error_not_no_changes(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    head = live_env.commit({"w.yaml": _widget(f"{ns}.example.com", 1), "crd.yaml": ""})

    plan = await live_env.env_plan(head, head)

    rules = {f.rule for f in plan.findings}
    assert "cluster.unknown-kind" in rules
    assert plan.blocking
    assert plan.live is not None and len(plan.live.unknown) == 1


async def test_objects_in_a_namespace_the_change_creates_are_previewed_as_created(
    live_env: LiveEnv,
) -> None:
    extra = f"{live_env.namespace}-new"
    namespace = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {extra}\n"
    inside = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: {extra}\n"
    head = live_env.commit({"ns.yaml": namespace, "c.yaml": inside})

    plan = await live_env.env_plan(head, head)

    assert plan.live is not None
    assert changes_by_key(plan.live.changes) == {
        f"Namespace {extra}": "create",
        f"ConfigMap {extra}/c": "create",
    }
    assert not [f for f in plan.findings if f.stage == "cluster"]
    result = await live_env.apply(head)
    assert result.succeeded, result
    assert live_env.kubectl.get("configmap", "c", extra) is not None
