"""Plans and findings as plain text and as JSON-ready data, for the CLI and for machines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.core.diffs import Action, Change
from bot.core.findings import Finding
from bot.core.relaxations import Relaxation

if TYPE_CHECKING:  # `validate` reports findings only: the plans cost it start-up time
    from bot.core.applies import ApplyResult
    from bot.core.livediffs import LiveLayer
    from bot.core.plans import Plan


def plan_as_text(plan: Plan) -> str:
    lines = [f"plan {plan.base[:12]} -> {plan.head[:12]}: {_text_verdict(plan)}"]
    if plan.failure:
        lines.append(f"could not plan: {plan.failure}")
    lines.extend(f"affected, not previewed: {unit.describe()}" for unit in plan.unpreviewed)
    lines.extend(f"note: {note}" for note in plan.notes)
    lines.extend(f.describe() for f in plan.all_findings)
    lines.extend(f"relaxed: {r.describe()}" for r in plan.relaxations)
    for env in plan.environments:
        name = env.environment
        lines.append(f"\n== environment {name.name} (cluster {name.cluster})")
        if env.failure:
            lines.append(f"cannot preview: {env.failure}")
            continue
        counts = ", ".join(f"{env.count(a)} {a}" for a in Action)
        lines.append(counts)
        lines += [f"not read: {s.path}: {s.reason}" for s in env.skipped]
        lines.extend(f"relaxed: {r.describe()}" for r in env.relaxations)
        for change in env.changes:
            if change.action is Action.UNCHANGED:
                continue
            where = f"  ({change.source})" if change.source else ""
            lines.append(f"\n{change.action} {change.key}{where}")
            lines.append(change.diff)
        lines.extend(_live_lines(env.live))
    return "\n".join(lines) + "\n"


def _live_lines(live: LiveLayer | None) -> list[str]:
    if live is None:
        return ["\n-- live cluster: not compared (no connection configured)"]
    if live.failure:
        return [f"\n-- live cluster {live.cluster}: cannot preview: {live.failure}"]
    counts = ", ".join(f"{live.count(a)} {a}" for a in Action)
    lines = [f"\n-- live cluster {live.cluster}: merging now would: {counts}"]
    lines += [f"{c.action} {c.key}" + (f" ({c.note})" if c.note else "") for c in live.changes]
    lines += [f"not previewed {key} (see the findings)" for key in live.unknown]
    lines.append(f"-- drift not from this change: {len(live.drift) or 'none'}")
    for change in live.drift:
        lines.append(f"\ndrift {change.action} {change.key}")
        lines.append(change.diff)
    return lines


def apply_as_text(result: ApplyResult) -> str:
    mode = " (dry apply: nothing was sent)" if result.dry_run else ""
    verdict = "ok" if result.succeeded else "FAILED"
    lines = [
        f"apply {result.commit[:12]} to environment {result.environment} "
        f"(cluster {result.cluster}){mode}: {verdict}"
    ]
    if result.failure:
        lines.append(f"not applied: {result.failure}")
    for item in result.objects:
        message = f": {item.message}" if item.message else ""
        lines.append(f"{item.outcome} {item.action} {item.key}{message}")
    return "\n".join(lines) + "\n"


def apply_as_data(result: ApplyResult) -> dict[str, Any]:
    return {
        "environment": result.environment,
        "cluster": result.cluster,
        "commit": result.commit,
        "dry_run": result.dry_run,
        "succeeded": result.succeeded,
        "failure": result.failure,
        "objects": [
            {
                "object": str(o.key),
                "action": str(o.action),
                "outcome": str(o.outcome),
                "digest": o.digest,
                "message": o.message,
            }
            for o in result.objects
        ],
    }


def _text_verdict(plan: Plan) -> str:
    if plan.blocking:
        return "BLOCKED"
    return "INCOMPLETE" if plan.unpreviewed else "ok"


def plan_as_data(plan: Plan) -> dict[str, Any]:
    return {
        "base": plan.base,
        "head": plan.head,
        "blocking": plan.blocking,
        "failure": plan.failure,
        "notes": list(plan.notes),
        "unpreviewed": [
            {"name": u.name, "origin": u.origin, "reason": u.reason} for u in plan.unpreviewed
        ],
        "findings": [finding_as_data(f) for f in plan.findings],
        "relaxations": [relaxation_as_data(r) for r in plan.relaxations],
        "environments": [
            {
                "name": env.environment.name,
                "cluster": env.environment.cluster,
                "blocking": env.blocking,
                "failure": env.failure,
                "counts": {str(a): env.count(a) for a in Action},
                "findings": [finding_as_data(f) for f in env.findings],
                "skipped": [{"path": s.path, "reason": s.reason} for s in env.skipped],
                "relaxations": [relaxation_as_data(r) for r in env.relaxations],
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
                "live": _live_data(env.live),
            }
            for env in plan.environments
        ],
    }


def _live_data(live: LiveLayer | None) -> dict[str, Any] | None:
    if live is None:
        return None
    return {
        "cluster": live.cluster,
        "failure": live.failure,
        "counts": {str(a): live.count(a) for a in Action},
        "changes": [_change_data(c) for c in live.changes],
        "drift": [_change_data(c) for c in live.drift],
        "not_previewed": [str(key) for key in live.unknown],
    }


def _change_data(change: Change) -> dict[str, Any]:
    return {
        "object": str(change.key),
        "action": str(change.action),
        "note": change.note or None,
        "source": str(change.source) if change.source else None,
        "diff": change.diff,
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


def relaxation_as_data(relaxation: Relaxation) -> dict[str, Any]:
    return {
        "policy": relaxation.policy,
        "effect": str(relaxation.effect),
        "scope": str(relaxation.scope),
        "environment": relaxation.environment,
        "object": relaxation.subject,
        "path": relaxation.path,
        "line": relaxation.line,
        "reason": relaxation.reason or None,
        "waived_findings": relaxation.waived if relaxation.subject else None,
    }
