"""The live layer in comments and reports: both layers shown, failures never read as no drift."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from test_comments import balanced, changes, plan_of

from bot.core.applies import ApplyResult, ObjectResult, Outcome
from bot.core.applycomments import render_apply
from bot.core.comments import render_plan
from bot.core.diffs import Action, Change
from bot.core.livediffs import WITH_CRD, LiveLayer
from bot.core.manifests import ObjectKey
from bot.core.markdown import GITHUB_COMMENT_LIMIT, parse_marker
from bot.core.plans import EnvironmentPlan
from bot.core.repoconfig import Environment
from bot.core.reports import plan_as_data, plan_as_text

ENV = Environment("prod", "deploy", "main")
WEB = ObjectKey("", "ConfigMap", "shop", "web")


def drifted(diff: str = "-  level: '9'\n+  level: '1'") -> LiveLayer:
    return LiveLayer(
        "main",
        changes=(Change(WEB, Action.UNCHANGED, ""),),
        drift=(Change(WEB, Action.UPDATE, diff),),
    )


def test_both_layers_appear_per_environment() -> None:
    pr_change = Change(ObjectKey("", "ConfigMap", "shop", "db"), Action.UPDATE, "+  size: 2")
    env = EnvironmentPlan(ENV, (pr_change,), live=drifted())

    [part] = render_plan(plan_of(env))

    assert "🟡 update <code>ConfigMap shop/db</code>" in part  # the change this PR makes
    assert "**Drift already in the cluster, not from this change** (1 objects" in part
    assert "↯ drift <code>ConfigMap shop/web</code>: differs from Git" in part
    assert "merging would create 0, update 0, prune 0, leave unchanged 1" in part
    assert "| 1 drifted |" in part


def test_a_cluster_that_cannot_be_asked_blocks_and_says_so() -> None:
    live = LiveLayer("main", failure="cluster 'main' is unreachable at https://x: refused")
    env = EnvironmentPlan(ENV, live=live)

    [part] = render_plan(plan_of(env))

    assert plan_of(env).blocking
    assert "Cannot compare with the live cluster:** cluster 'main' is unreachable" in part
    assert 'This is not a "no drift" result' in part
    assert "No drift" not in part and "⚠️ cannot preview |" in part
    assert "cannot preview: cluster 'main' is unreachable" in plan_as_text(plan_of(env))


def test_no_connection_configured_is_said_plainly() -> None:
    [part] = render_plan(plan_of(EnvironmentPlan(ENV)))

    assert "Live cluster: not compared (the bot has no connection to cluster `main`" in part
    assert "| not compared |" in part


def test_notes_explain_objects_that_cannot_be_dry_run_yet() -> None:
    widget = ObjectKey("example.com", "Widget", "shop", "w")
    live = LiveLayer("main", changes=(Change(widget, Action.CREATE, "+x", note=WITH_CRD),))

    [part] = render_plan(plan_of(EnvironmentPlan(ENV, live=live)))

    assert "🟢 create <code>Widget.example.com shop/w</code> (will be created with its CRD" in part


def test_json_report_carries_the_live_layer() -> None:
    data = plan_as_data(plan_of(EnvironmentPlan(ENV, live=drifted())))

    live = data["environments"][0]["live"]
    assert live["drift"][0]["object"] == "ConfigMap shop/web"
    assert live["counts"]["unchanged"] == 1
    json.dumps(data)  # serialisable as is


@settings(max_examples=40, deadline=None)
@given(changes(), changes(), st.sampled_from([2_000, 5_000, GITHUB_COMMENT_LIMIT]))
def test_parts_with_drift_still_fit_and_lose_nothing(
    planned: tuple[Change, ...], drift: tuple[Change, ...], limit: int
) -> None:
    live = LiveLayer("main", drift=drift)
    parts = render_plan(plan_of(EnvironmentPlan(ENV, planned, live=live)), limit)

    assert all(len(part) <= limit for part in parts)
    assert all(balanced(part) for part in parts)
    text = "".join(parts)
    for change in drift:
        assert f"↯ drift <code>{change.key}</code>" in text
    assert [parse_marker(p, "plan") for p in parts] == list(range(1, len(parts) + 1))


def test_the_apply_comment_reports_takeovers_and_objects_left_alone() -> None:
    result = ApplyResult(
        "prod",
        "main",
        "c" * 40,
        dry_run=False,
        objects=(
            ObjectResult(WEB, Action.UPDATE, Outcome.APPLIED, message="took over fields: x"),
            ObjectResult(
                ObjectKey("", "Namespace", "", "old"),
                Action.ORPHAN,
                Outcome.SKIPPED,
                message="a Namespace is only pruned when the environment lists it",
            ),
        ),
    )

    [part] = render_apply([result], GITHUB_COMMENT_LIMIT)

    assert "📝 applied <code>ConfigMap shop/web</code>: took over fields: x" in part
    assert "📝 skipped <code>Namespace old</code>: a Namespace is only pruned" in part
    assert "(dry apply" not in part
