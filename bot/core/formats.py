"""The output formats of `validate` and `plan`, each a pure rendering of their results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.core.annotations import annotate, plan_findings
from bot.core.codequality import code_quality_report
from bot.core.findings import Finding
from bot.core.relaxations import Relaxation
from bot.core.repoconfig import CONFIG_PATH
from bot.core.reports import finding_as_data, plan_as_data, plan_as_text, relaxation_as_data
from bot.core.sarif import sarif_log
from bot.core.workflowcommands import workflow_commands

if TYPE_CHECKING:
    from bot.core.plans import Plan

CI_FORMATS = ("sarif", "github", "codequality")
VALIDATE_FORMATS = ("text", "json", *CI_FORMATS)
PLAN_FORMATS = ("markdown", "text", "json", *CI_FORMATS)


def findings_output(
    format_: str,
    findings: Sequence[Finding],
    default_path: str,
    version: str,
    relaxations: Sequence[Relaxation] = (),
) -> str:
    """What `validate` prints; a finding that names no file is placed at `default_path`.
    The policy relaxations in force are listed in text and JSON, beside the findings."""
    if format_ == "text":
        lines = [f.describe() for f in findings] + [f"relaxed: {r.describe()}" for r in relaxations]
        return "".join(line + "\n" for line in lines)
    if format_ == "json":
        report = {
            "findings": [finding_as_data(f) for f in findings],
            "relaxations": [relaxation_as_data(r) for r in relaxations],
        }
        return json.dumps(report, indent=2) + "\n"
    return _ci_output(format_, findings, default_path, version)


def plan_output(format_: str, plan: Plan, version: str) -> str:
    if format_ == "markdown":
        # Imported here: the comment's modules (the live layer's among them) are start-up
        # time that `validate`, which never writes a comment, would pay.
        from bot.core.comments import render_plan
        from bot.core.markdown import GITHUB_COMMENT_LIMIT

        return "\n".join(render_plan(plan, GITHUB_COMMENT_LIMIT))
    if format_ == "text":
        return plan_as_text(plan)
    if format_ == "json":
        return json.dumps(plan_as_data(plan), indent=2) + "\n"
    return _ci_output(format_, plan_findings(plan), CONFIG_PATH, version)


def _ci_output(format_: str, findings: Sequence[Finding], default_path: str, version: str) -> str:
    annotations = annotate(findings, default_path)
    if format_ == "sarif":
        return sarif_log(annotations, version)
    if format_ == "github":
        return workflow_commands(annotations)
    if format_ == "codequality":
        return code_quality_report(annotations)
    raise ValueError(f"unknown output format {format_!r}; choose one of {PLAN_FORMATS}")
