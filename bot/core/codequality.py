"""Findings as a GitLab Code Quality report, which merge requests show in their widget."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from bot.core.annotations import Annotation

# GitLab's scale is info, minor, major, critical, blocker; an error blocks the merge.
_SEVERITIES = {True: "major", False: "minor"}


def code_quality_report(annotations: Iterable[Annotation]) -> str:
    """The JSON array GitLab reads from an `artifacts:reports:codequality` file."""
    return json.dumps([_issue(a) for a in annotations], indent=2) + "\n"


def _issue(annotation: Annotation) -> dict[str, Any]:
    finding = annotation.finding
    return {
        "description": f"{annotation.title}: {finding.message}",
        "check_name": finding.rule,
        "fingerprint": annotation.fingerprint,
        "severity": _SEVERITIES[annotation.is_error],
        "location": {"path": annotation.path, "lines": {"begin": annotation.line}},
    }
