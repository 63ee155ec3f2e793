"""Plans and findings as plain text and as JSON-ready data, for the CLI and for machines."""

from __future__ import annotations

from typing import Any

from bot.core.diffs import Action
from bot.core.findings import Finding
from bot.core.plans import Plan


def plan_as_text(plan: Plan) -> str:
    lines = [f"plan {plan.base[:12]} -> {plan.head[:12]}: {'BLOCKED' if plan.blocking else 'ok'}"]
    if plan.failure:
        lines.append(f"could not plan: {plan.failure}")
    lines.extend(f.describe() for f in plan.all_findings)
    for env in plan.environments:
        name = env.environment
        lines.append(f"\n== environment {name.name} (cluster {name.cluster})")
        if env.failure:
            lines.append(f"cannot preview: {env.failure}")
            continue
        counts = ", ".join(f"{env.count(a)} {a}" for a in Action)
        lines.append(counts)
        for change in env.changes:
            if change.action is Action.UNCHANGED:
                continue
            where = f"  ({change.source})" if change.source else ""
            lines.append(f"\n{change.action} {change.key}{where}")
            lines.append(change.diff)
    return "\n".join(lines) + "\n"


def plan_as_data(plan: Plan) -> dict[str, Any]:
    return {
        "base": plan.base,
        "head": plan.head,
        "blocking": plan.blocking,
        "failure": plan.failure,
        "findings": [finding_as_data(f) for f in plan.findings],
        "environments": [
            {
                "name": env.environment.name,
                "cluster": env.environment.cluster,
                "blocking": env.blocking,
                "failure": env.failure,
                "counts": {str(a): env.count(a) for a in Action},
                "findings": [finding_as_data(f) for f in env.findings],
                "changes": [
                    {
                        "object": str(c.key),
                        "group": c.key.group,
                        "kind": c.key.kind,
                        "namespace": c.key.namespace,
                        "name": c.key.name,
                        "action": str(c.action),
                        "source": str(c.source) if c.source else None,
                        "diff": c.diff,
                    }
                    for c in env.changes
                ],
            }
            for env in plan.environments
        ],
    }


def finding_as_data(finding: Finding) -> dict[str, Any]:
    return {
        "stage": str(finding.stage),
        "severity": str(finding.severity),
        "rule": finding.rule,
        "message": finding.message,
        "path": finding.path,
        "line": finding.line,
        "object": finding.subject,
        "field": finding.field or None,
    }
