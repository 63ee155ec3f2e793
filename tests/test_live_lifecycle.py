"""Create, update, unchanged and prune: seen in the live preview, then done by the apply."""

from __future__ import annotations

from helpers.livecluster import ENV, LiveEnv, changes_by_key, configmap, outcomes_by_key

from bot.core.comments import render_plan
from bot.core.rollouts import (
    COMMIT_ANNOTATION,
    ENVIRONMENT_ANNOTATION,
    MANAGED_BY_LABEL,
    PULL_REQUEST_ANNOTATION,
)


async def test_preview_then_apply_creates_updates_keeps_and_prunes(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    base = live_env.commit(
        {
            "same.yaml": configmap("same", colour="blue"),
            "changing.yaml": configmap("changing", level="1"),
            "retired.yaml": configmap("retired", note="old"),
        }
    )
    first = await live_env.apply(base)
    assert first.succeeded, first
    assert set(outcomes_by_key(first).values()) == {"applied"}
    head = live_env.commit(
        {
            "same.yaml": configmap("same", colour="blue"),
            "changing.yaml": configmap("changing", level="2"),
            "new.yaml": configmap("new", hello="world"),
        }
    )

    plan = await live_env.env_plan(base, head)

    assert plan.live is not None and plan.live.failure is None
    assert changes_by_key(plan.live.changes) == {
        f"ConfigMap {ns}/same": "unchanged",
        f"ConfigMap {ns}/changing": "update",
        f"ConfigMap {ns}/retired": "prune",
        f"ConfigMap {ns}/new": "create",
    }
    update = next(c for c in plan.live.changes if c.key.name == "changing")
    assert "-  level: '1'" in update.diff and "+  level: '2'" in update.diff
    assert plan.live.drift == ()
    assert not plan.blocking
    comment = "\n".join(render_plan(await live_env.plan(base, head)))
    assert "merging would create 1, update 1, prune 1, leave unchanged 1" in comment
    assert "No drift: the cluster matches the base commit." in comment

    second = await live_env.apply(head, pr=42)

    assert second.succeeded, second
    assert outcomes_by_key(second) == {
        f"ConfigMap {ns}/same": "unchanged",
        f"ConfigMap {ns}/changing": "applied",
        f"ConfigMap {ns}/retired": "pruned",
        f"ConfigMap {ns}/new": "applied",
    }
    assert live_env.configmap("retired") is None
    changed = live_env.configmap("changing")
    assert changed is not None and changed["data"] == {"level": "2"}
    metadata = changed["metadata"]
    assert metadata["labels"][MANAGED_BY_LABEL] == "gitops-bot"
    assert metadata["annotations"][ENVIRONMENT_ANNOTATION] == ENV
    assert metadata["annotations"][COMMIT_ANNOTATION] == head
    assert metadata["annotations"][PULL_REQUEST_ANNOTATION] == "#42"


async def test_unchanged_objects_are_not_written_again(live_env: LiveEnv) -> None:
    base = live_env.commit({"same.yaml": configmap("same", colour="blue")})
    assert (await live_env.apply(base)).succeeded
    before = live_env.configmap("same")
    head = live_env.commit({"same.yaml": configmap("same", colour="blue")}, apply_on_merge=True)

    result = await live_env.apply(head)

    assert outcomes_by_key(result) == {f"ConfigMap {live_env.namespace}/same": "unchanged"}
    after = live_env.configmap("same")
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # The commit annotation names the commit that last changed the object.
    assert after["metadata"]["annotations"][COMMIT_ANNOTATION] == base


async def test_a_second_plan_after_the_apply_shows_nothing_left_to_do(live_env: LiveEnv) -> None:
    head = live_env.commit({"a.yaml": configmap("a", x="1"), "b.yaml": configmap("b", y="2")})
    assert (await live_env.apply(head)).succeeded

    plan = await live_env.env_plan(head, head)

    assert plan.live is not None
    assert plan.live.will_change == ()
    assert plan.live.drift == ()
