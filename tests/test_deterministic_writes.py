"""What the bot writes depends on its inputs only, never on the order they arrived in."""

from __future__ import annotations

import itertools

from bot.core.comments import render_plan
from bot.core.driftreports import render_drift
from bot.core.drifts import EnvironmentDrift, drift_of
from bot.core.findings import Finding, Severity, Stage
from bot.core.livediffs import Observation, Problem, ProblemKind
from bot.core.manifests import ObjectKey
from bot.core.markdown import GITHUB_COMMENT_LIMIT
from bot.core.plans import Plan
from bot.workflows.plan_pull_request import plan_check

SECRET_KEY = b"k" * 32
BASE = EnvironmentDrift("prod", "prod-cluster", "a" * 40)
CAUSES = ('conflict with "kubectl-edit": .data.level', 'conflict with "helm": .data.mode')


def _config(name: str, live: str, causes: tuple[str, ...]) -> Observation:
    key = ObjectKey("", "ConfigMap", "shop", name)
    meta = {"name": name, "namespace": "shop"}
    live_body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": live}}
    applied = {**live_body, "data": {"a": "git"}}
    problem = Problem(ProblemKind.CONFLICT, "Apply failed with 2 conflicts", causes)
    return Observation(key, live_body, applied, problem=problem)


def _drift_text(observations: list[Observation]) -> tuple[str, ...]:
    drift = drift_of(BASE, observations, [], rules=(), secret_key=SECRET_KEY, sources={})
    return render_drift(drift, GITHUB_COMMENT_LIMIT, "drift:prod")


def test_a_drift_issue_reads_the_same_whatever_order_the_cluster_answered_in() -> None:
    texts = {
        _drift_text([_config(name, "hand", order) for name in names])
        for names in itertools.permutations(("web", "api", "db"))
        for order in itertools.permutations(CAUSES)
    }

    [text] = texts
    assert 'changed in the cluster by: conflict with "helm"' in "".join(text)


def _finding(rule: str, message: str, line: int = 3) -> Finding:
    return Finding(Stage.POLICY, Severity.WARNING, rule, message, "deploy/web.yaml", line)


def test_a_plan_writes_the_same_comment_and_check_whatever_order_its_findings_came_in() -> None:
    findings = (
        _finding("cluster.conflict", CAUSES[0]),
        _finding("cluster.conflict", CAUSES[1]),
        _finding("pinned-images", "pin the image"),
        _finding("pinned-images", "pin the image", line=9),
    )
    written = {
        (
            render_plan(Plan("b" * 40, "c" * 40, findings=order)),
            plan_check(Plan("b" * 40, "c" * 40, findings=order)),
        )
        for order in itertools.permutations(findings)
    }

    [(comment, check)] = written
    assert [a.line for a in check.annotations] == [3, 3, 3, 9]
    assert comment[0].index(CAUSES[1]) < comment[0].index(CAUSES[0])
