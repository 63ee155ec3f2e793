"""Plans as Markdown comments, in parts that fit the forge's limit (apply results:
`applycomments`, so a plan loads none of the ledger's modules)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from bot.core.controllerapply import not_compared_hint
from bot.core.diffs import Action, Change
from bot.core.findings import Finding, Severity
from bot.core.folding import fold
from bot.core.livediffs import LiveLayer
from bot.core.manifests import Skipped
from bot.core.markdown import (
    GITHUB_COMMENT_LIMIT,
    Block,
    code,
    details,
    escape,
    html_code,
    pack,
)
from bot.core.plans import EnvironmentPlan, Plan
from bot.core.relaxations import Relaxation

_ICONS = {
    Action.CREATE: "🟢",
    Action.UPDATE: "🟡",
    Action.PRUNE: "🔴",
    Action.ORPHAN: "⚪",
    Action.UNCHANGED: "·",
}


def render_plan(
    plan: Plan, limit: int = GITHUB_COMMENT_LIMIT, kind: str = "plan"
) -> tuple[str, ...]:
    return pack(plan_blocks(plan), limit, kind)


def plan_blocks(plan: Plan) -> Iterator[Block]:
    yield Block(
        f"### gitops-bot plan: {plan_verdict(plan)}\n\n"
        f"{code(plan.base[:12])} → {code(plan.head[:12])}"
    )
    if plan.failure:
        yield Block(f"**Could not plan:** {escape(plan.failure)}")
    yield from _unpreviewed_blocks(plan)
    yield from (Block(f"**Note:** {escape(note)}") for note in plan.notes)
    if plan.environments:
        yield Block(_summary_table(plan.environments))
    findings = plan.all_findings
    if findings:
        yield Block(f"#### Findings ({_count_words(findings)})")
        yield from (Block(_finding_line(f)) for f in _ordered(findings))
    yield from _relaxation_blocks(plan)
    for section in fold(plan.environments):
        yield from _environment_blocks(section.shown, section.same)


def plan_verdict(plan: Plan) -> str:
    """Blocked, incomplete (affected applications could not be previewed), or ready."""
    if plan.blocking:
        return "❌ blocked"
    if plan.unpreviewed:
        return f"⚠️ {unpreviewed_count(plan)} could not be previewed"
    return "✅ ready to merge"


def unpreviewed_count(plan: Plan) -> str:
    count = len(plan.unpreviewed)
    return f"{count} affected application{'s' if count != 1 else ''}"


def _unpreviewed_blocks(plan: Plan) -> Iterator[Block]:
    if not plan.unpreviewed:
        return
    them, their = ("them", "their") if len(plan.unpreviewed) > 1 else ("it", "its")
    yield Block(
        f"**{unpreviewed_count(plan)} could not be previewed**: this change touches {them}, "
        f"but what {their} controller will deploy after the merge is not shown here. Review "
        f"{them} by other means before merging."
    )
    yield from (Block(f"- {escape(unit.describe())}") for unit in plan.unpreviewed)


def _summary_table(environments: Iterable[EnvironmentPlan]) -> str:
    rows = [
        "| Environment | Cluster | Create | Update | Prune | Unchanged | Errors | Warnings "
        "| Live cluster |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for env in environments:
        errors = sum(f.severity is Severity.ERROR for f in env.findings)
        warnings = len(env.findings) - errors
        if env.failure:
            counts = "cannot preview | — | — | —"
        else:
            counts = " | ".join(
                str(env.count(a))
                for a in (Action.CREATE, Action.UPDATE, Action.PRUNE, Action.UNCHANGED)
            )
        rows.append(
            f"| {code(env.environment.name, True)} | {code(env.environment.cluster, True)} "
            f"| {counts} | {errors} | {warnings} | {_live_cell(env.live)} |"
        )
    return "\n".join(rows)


def _environment_blocks(
    env: EnvironmentPlan, same: tuple[EnvironmentPlan, ...] = ()
) -> Iterator[Block]:
    name = env.environment
    if len(same) > 1:
        yield from _folded_blocks(same)
    else:
        yield Block(f"#### Environment {code(name.name)} → cluster {code(name.cluster)}")
    if env.failure:
        yield Block(
            f"⚠️ **Cannot preview this environment:** {escape(env.failure)}\n\n"
            'This is not a "no changes" result. Fix the cause and comment '
            "`/gitops plan` to try again."
        )
        return
    if env.incomplete:
        yield Block(
            "⚠️ Some files could not be read (see the findings), so this list of "
            "changes may be incomplete."
        )
    if env.skipped:
        yield Block(_skipped_list(env.skipped))
    changed = [c for c in env.changes if c.action is not Action.UNCHANGED]
    if not changed:
        yield Block(f"No changes: {env.count(Action.UNCHANGED)} objects stay as they are.")
    for change in changed:
        title = change_title(change)
        yield Block(details(title, change.diff), change, title)
    if changed and env.count(Action.UNCHANGED):
        yield Block(f"{env.count(Action.UNCHANGED)} other objects are unchanged.")
    yield from _live_blocks(env.live, name.cluster, not_compared_hint(name))


def _folded_blocks(same: tuple[EnvironmentPlan, ...]) -> Iterator[Block]:
    """The title of a folded section, then its names in blocks that fit any comment part."""
    controlled = not any(e.environment.apply_on_merge for e in same)
    word = "applications" if controlled else "environments"
    yield Block(
        f"#### The same change in {len(same)} {word}\n\n"
        f"Shown once, as {code(same[0].environment.name)} renders it; it is also the change of:"
    )
    names = [f"{code(e.environment.name)} → {code(e.environment.cluster)}" for e in same]
    for start in range(0, len(names), _NAMES_PER_BLOCK):
        yield Block(", ".join(names[start : start + _NAMES_PER_BLOCK]))


_NAMES_PER_BLOCK = 40


def _skipped_list(skipped: tuple[Skipped, ...]) -> str:
    lines = [f"Not read as manifests ({len(skipped)}; tool files, not Kubernetes objects):"]
    lines += [f"- <code>{escape(s.path)}</code>: {escape(s.reason)}" for s in skipped]
    return "\n".join(lines)


def _live_cell(live: LiveLayer | None) -> str:
    if live is None:
        return "not compared"
    if live.failure:
        return "⚠️ cannot preview"
    words = [f"{len(live.drift)} drifted" if live.drift else "no drift"]
    if live.unknown:
        words.append(f"{len(live.unknown)} not previewed")
    return ", ".join(words)


def _live_blocks(live: LiveLayer | None, cluster: str, unit_hint: str = "") -> Iterator[Block]:
    if live is None:
        why = unit_hint or f"the bot has no connection to cluster {code(cluster)} configured"
        yield Block(f"Live cluster: not compared ({why}).")
        return
    if live.failure:
        yield Block(
            f"⚠️ **Cannot compare with the live cluster:** {escape(live.failure)}\n\n"
            'This is not a "no drift" result. Fix the cause and comment `/gitops plan` '
            "to try again."
        )
        return
    yield Block(_live_summary(live))
    for change in live.changes:
        if change.note and change.action is not Action.UNCHANGED:
            yield Block(f"- {change_title(change)}")
    if not live.drift:
        yield Block("No drift: the cluster matches the base commit.")
        return
    yield Block(
        f"**Drift already in the cluster, not from this change** ({len(live.drift)} "
        "objects differ from what the base commit declares; each diff goes from the live "
        "object to Git):"
    )
    for change in live.drift:
        title = drift_title(change)
        yield Block(details(title, change.diff), change, title)


def _live_summary(live: LiveLayer) -> str:
    counts = ", ".join(
        f"{word} {live.count(action)}"
        for word, action in (
            ("create", Action.CREATE),
            ("update", Action.UPDATE),
            ("prune", Action.PRUNE),
            ("leave unchanged", Action.UNCHANGED),
        )
    )
    text = f"**Live cluster:** against what it holds now, merging would {counts}."
    if live.unknown:
        text += (
            f" {len(live.unknown)} objects could not be previewed (see the findings): "
            "their changes are unknown, not absent."
        )
    return text


def drift_title(change: Change) -> str:
    what = {
        Action.CREATE: "missing from the cluster",
        Action.PRUNE: "in the cluster, no longer in Git",
        Action.ORPHAN: "in the cluster, no longer in Git",
    }.get(change.action, "differs from Git")
    where = f" — {escape(str(change.source))}" if change.source else ""
    return f"↯ drift {html_code(str(change.key))}: {what}{where}"


def change_title(change: Change) -> str:
    where = f" — {escape(str(change.source))}" if change.source else ""
    note = (
        " (removed from Git, left in the cluster: prune is off)"
        if change.action is Action.ORPHAN
        else ""
    )
    if change.note:
        note = f" ({escape(change.note)})"
    key = html_code(str(change.key))
    return f"{_ICONS[change.action]} {change.action} {key}{where}{note}"


def _finding_line(finding: Finding) -> str:
    icon = "❌" if finding.severity is Severity.ERROR else "⚠️"
    subject = f" {escape(finding.subject)}" if finding.subject else ""
    field = f" {html_code(finding.field)}" if finding.pointer else ""
    message = (
        finding.message
        if len(finding.message) <= 1_000
        else finding.message[:1_000] + " … (shortened)"
    )
    return (
        f"- {icon} **{finding.severity}** {html_code(finding.location)} "
        f"[{escape(finding.rule)}]{subject}{field}: {escape(message)}"
    )


def _relaxation_blocks(plan: Plan) -> Iterator[Block]:
    """Every policy relaxation in force, so that a reviewer sees and judges each."""
    listed = [(r, None) for r in plan.relaxations] + [
        (r, env.environment.name) for env in plan.environments for r in env.relaxations
    ]
    if not listed:
        return
    yield Block(
        f"#### Policy relaxations ({len(listed)})\n\nPolicies this repository relaxes, and "
        "objects exempted from them (see the README, *Relaxing policies*):"
    )
    yield from (Block(_relaxation_line(r, env)) for r, env in listed)


def _relaxation_line(relaxation: Relaxation, environment: str | None) -> str:
    where = f" in environment {code(environment)}" if environment else ""
    reason = f": {escape(relaxation.reason)}" if relaxation.reason else ""
    return (
        f"- 🔓 {code(relaxation.policy)} {escape(relaxation.summary)}{where} "
        f"{html_code(relaxation.location)}{reason}"
    )


def _ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Errors first, then by place; a total order, so findings that arrive in another
    order (a cluster's conflict causes, say) still make the same comment."""
    return sorted(findings, key=_finding_order)


def _finding_order(f: Finding) -> tuple[bool, str, int, str, str, str, str]:
    place = (f.path or "", f.line or 0)
    return (f.severity is not Severity.ERROR, *place, f.rule, f.subject or "", f.field, f.message)


def _count_words(findings: tuple[Finding, ...]) -> str:
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = len(findings) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
