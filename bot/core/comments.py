"""Plans as Markdown comments, split into parts that each fit the forge's size limit."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bot.core.applies import ApplyResult, Outcome
from bot.core.diffs import Action, Change
from bot.core.drifts import DriftedObject, DriftState, EnvironmentDrift, Origin
from bot.core.findings import Finding, Severity
from bot.core.plans import EnvironmentPlan, Plan
from bot.core.previews import LiveLayer

GITHUB_COMMENT_LIMIT = 65_536
GITLAB_NOTE_LIMIT = 1_000_000
MARKER_PREFIX = "<!-- gitops-bot:"
_RESERVED = 400  # marker, continuation notices and their part numbers
_MAX_LINE = 2_000  # longer lines (minified JSON, certificates) are wrapped, visibly
_ICONS = {
    Action.CREATE: "🟢",
    Action.UPDATE: "🟡",
    Action.PRUNE: "🔴",
    Action.ORPHAN: "⚪",
    Action.UNCHANGED: "·",
}


@dataclass(frozen=True)
class Block:
    """A self-contained piece of Markdown: never split across parts unless it is a diff."""

    text: str
    diff: Change | None = None
    title: str = ""


def marker(kind: str, part: int) -> str:
    return f"{MARKER_PREFIX}{kind} part={part} -->"


def parse_marker(body: str, kind: str) -> int | None:
    """The part number of a comment the bot wrote for `kind`, or None for any other comment."""
    found = re.match(re.escape(MARKER_PREFIX + kind) + r" part=(\d+) -->", body)
    return int(found.group(1)) if found else None


def render_plan(
    plan: Plan, limit: int = GITHUB_COMMENT_LIMIT, kind: str = "plan"
) -> tuple[str, ...]:
    return pack(plan_blocks(plan), limit, kind)


def plan_blocks(plan: Plan) -> Iterator[Block]:
    verdict = "❌ blocked" if plan.blocking else "✅ ready to merge"
    yield Block(f"### gitops-bot plan: {verdict}\n\n`{plan.base[:12]}` → `{plan.head[:12]}`")
    if plan.failure:
        yield Block(f"**Could not plan:** {_text(plan.failure)}")
    yield from (Block(f"**Note:** {_text(note)}") for note in plan.notes)
    if plan.environments:
        yield Block(_summary_table(plan.environments))
    findings = plan.all_findings
    if findings:
        yield Block(f"#### Findings ({_count_words(findings)})")
        yield from (Block(_finding_line(f)) for f in _ordered(findings))
    for env in plan.environments:
        yield from _environment_blocks(env)


def render_apply(
    results: Iterable[ApplyResult], limit: int, kind: str = "apply"
) -> tuple[str, ...]:
    return pack(apply_blocks(tuple(results)), limit, kind)


def apply_blocks(results: tuple[ApplyResult, ...]) -> Iterator[Block]:
    ok = all(r.succeeded for r in results)
    commit = results[0].commit[:12] if results else "?"
    yield Block(f"### gitops-bot apply: {'✅ done' if ok else '❌ failed'}\n\nCommit `{commit}`")
    for result in results:
        mode = " (dry apply: no cluster connection is configured)" if result.dry_run else ""
        yield Block(
            f"#### Environment `{_cell(result.environment)}` → cluster "
            f"`{_cell(result.cluster)}`{mode}"
        )
        if result.failure:
            yield Block(f"**Not applied:** {_text(result.failure)}")
        failed = [o for o in result.objects if o.outcome is Outcome.FAILED]
        counts = ", ".join(
            f"{sum(o.outcome is kind for o in result.objects)} {kind}"
            for kind in Outcome
            if any(o.outcome is kind for o in result.objects)
        )
        yield Block(f"Objects: {counts or 'none'}.")
        for item in failed:
            yield Block(f"- ❌ <code>{_text(str(item.key))}</code>: {_text(item.message)}")
        for item in result.objects:  # forced takeovers, objects prune left alone, ...
            if item.message and item.outcome is not Outcome.FAILED:
                yield Block(
                    f"- 📝 {item.outcome} <code>{_text(str(item.key))}</code>: "
                    f"{_text(item.message)}"
                )


def render_drift(drift: EnvironmentDrift, limit: int, kind: str) -> tuple[str, ...]:
    """An environment's drift as its tracking issue: description first, then comments."""
    return pack(drift_blocks(drift), limit, kind)


def drift_blocks(drift: EnvironmentDrift) -> Iterator[Block]:
    env, drifted = _cell(drift.environment), drift.state is DriftState.DRIFTED
    verdict = (
        f"↯ `{env}` differs from Git"
        if drifted
        else f"⚠️ cannot check `{env}`"
        if drift.failure
        else f"⚠️ could not compare every object of `{env}`"
    )
    yield Block(
        f"### gitops-bot drift: {verdict}\n\nCluster `{_cell(drift.cluster)}` compared with "
        f"commit {_sha(drift.commit)} of the default branch: {len(drift.objects)} of "
        f"{_objects(drift.checked)} differ."
    )
    if drift.applied_commit:
        yield Block(
            f"**Note:** the bot last applied {_sha(drift.applied_commit)} here, so some "
            "differences may be a merge that is not applied yet rather than drift."
        )
    if drift.failure:
        yield Block(
            f'⚠️ **Cannot compare:** {_text(drift.failure)}\n\nThis is not a "no drift" '
            "result: until the cause is fixed, drift in this environment goes unseen."
        )
    if drift.heal is not None:
        yield Block(_heal_line(drift))
    if drift.heal_held:
        yield Block(f"🩹 **Self-heal held back:** {_text(drift.heal_held)}")
    yield from (Block(_drifted_line(d)) for d in drift.objects)
    yield from (
        Block(f"- ⚠️ <code>{_text(str(key))}</code> could not be compared: {_text(why)}")
        for key, why in drift.unknown
    )
    if drift.ignored:
        shown = ", ".join(f"<code>{_text(i)}</code>" for i in drift.ignored[:_MAX_LISTED])
        more = len(drift.ignored) - _MAX_LISTED
        yield Block(f"Not counted (`drift.ignore`): {shown}{f' and {more} more' * (more > 0)}.")
    for item in drift.objects:
        title = _drift_title(item.change)
        yield Block(_details(title, item.change.diff), item.change, title)
    yield Block(_drift_advice(drift))


def drift_resolved(drift: EnvironmentDrift) -> str:
    """The comment that closes a tracking issue."""
    text = (
        f"✅ Cluster `{_cell(drift.cluster)}` matches commit {_sha(drift.commit)} of the "
        f"default branch again ({_objects(drift.checked)} compared)."
    )
    return f"{text}\n\n{_heal_line(drift)}" if drift.heal is not None else text


_MAX_LISTED = 30  # fields or ignored differences listed by name; the diffs show them all


def _drifted_line(item: DriftedObject) -> str:
    where = f" ({_text(str(item.change.source))})" if item.change.source else ""
    what = {Action.CREATE: "missing from the cluster", Action.PRUNE: "no longer in Git"}.get(
        item.change.action, "differs"
    )
    origin = _origin(item.origin)
    lines = [f"- ↯ <code>{_text(str(item.change.key))}</code>{where}: {what}; {origin}"]
    lines += [f"  - <code>{_text(f)}</code>: {origin}" for f in item.fields[:_MAX_LISTED]]
    if len(item.fields) > _MAX_LISTED:
        lines.append(f"  - and {len(item.fields) - _MAX_LISTED} more fields (see the diff)")
    if item.changed_by:
        lines.append(f"  - changed in the cluster by: {_text('; '.join(item.changed_by))}")
    return "\n".join(lines)


def _origin(origin: Origin | None) -> str:
    """Who set an object's fields last: its PR (linked when known) and commit."""
    if origin is None:
        return "no apply of it by the bot is on record"
    pull = origin.pull_request if re.fullmatch(r"#\d+", origin.pull_request) else ""
    if re.fullmatch(r"https?://[^\s()<>\[\]]+", origin.url):
        number = re.search(r"/(pull|merge_requests)/(\d+)$", origin.url)
        if number and not pull:  # GitHub says #12, GitLab !12
            pull = ("#" if number.group(1) == "pull" else "!") + number.group(2)
        pull = f"[{pull or 'pull request'}]({origin.url})"
    commit = f"commit {_sha(origin.commit)}"
    return f"set by {pull} in {commit}" if pull else f"set in {commit} (no pull request)"


def _objects(count: int) -> str:
    return f"{count} object{'s' * (count != 1)}"


def _sha(commit: str) -> str:
    """A commit id as text the forge links (not in a code span); anything else, escaped."""
    return commit if re.fullmatch(r"[0-9a-f]{7,64}", commit) else f"<code>{_text(commit)}</code>"


def _heal_line(drift: EnvironmentDrift) -> str:
    heal = drift.heal
    assert heal is not None
    if heal.succeeded:
        count = len(heal.objects)
        return f"🩹 **Self-heal** re-applied commit {_sha(heal.commit)} ({count} objects)."
    failed = [o for o in heal.objects if o.outcome is Outcome.FAILED]
    reasons = "; ".join(f"{o.key}: {o.message}" for o in failed[:_MAX_LISTED])
    if len(failed) > _MAX_LISTED:
        reasons += f"; and {len(failed) - _MAX_LISTED} more objects (see the audit ledger)"
    why = heal.failure or reasons or "see the audit ledger"
    text = f"🩹 **Self-heal of {_sha(heal.commit)} did not complete:** {_text(why)}"
    if drift.ignored:  # why it did not take the hand-edited fields back
        text += (
            "\n\nSelf-heal takes fields back from other managers only while no ignored field "
            "differs, so that it never takes one from its autoscaler or controller. Remove "
            "such fields from Git to let it heal."
        )
    return text


def _drift_advice(drift: EnvironmentDrift) -> str:
    heal = (
        "Self-heal is on: the bot re-applies the default branch when it finds drift."
        if drift.self_heal
        else "Self-heal is off here (`self_heal: true` in `.gitops-bot.yaml` turns it on)."
    )
    return (
        "Each diff goes from the live object to Git. Change the cluster back, or change Git "
        f"in a pull request; this issue is edited as the drift changes and closed once the "
        f"cluster matches the default branch. {heal}"
    )


def pack(blocks: Iterable[Block], limit: int, kind: str) -> tuple[str, ...]:
    """Greedily fill parts with whole blocks; a diff too big for one part is cut in pieces."""
    budget = limit - _RESERVED
    if budget < 1_000:
        raise ValueError(f"a comment limit of {limit} characters is too small to be useful")
    bodies: list[list[str]] = [[]]
    used = 0
    for block in blocks:
        for piece in _fitted(block, budget):
            if used + len(piece) + 2 > budget and bodies[-1]:
                bodies.append([])
                used = 0
            bodies[-1].append(piece)
            used += len(piece) + 2
    return tuple(_frame(body, index, len(bodies), kind) for index, body in enumerate(bodies, 1))


def _frame(blocks: list[str], part: int, parts: int, kind: str) -> str:
    head = [marker(kind, part)]
    if part > 1:
        head.append(f"_Continued from part {part - 1} of {parts}._")
    tail = [f"_Continued in part {part + 1} of {parts}._"] if part < parts else []
    return "\n\n".join(head + blocks + tail) + "\n"


def _fitted(block: Block, budget: int) -> Iterator[str]:
    if block.diff is None or len(block.text) <= budget:
        yield block.text
        return
    lines = _wrapped(block.diff.diff.splitlines())
    chunks: list[list[str]] = [[]]
    size = 0
    room = budget - len(block.title) - 200
    for line in lines:
        if size + len(line) + 1 > room and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    for index, chunk in enumerate(chunks, 1):
        title = f"{block.title} (diff piece {index} of {len(chunks)})"
        yield _details(title, "\n".join(chunk))


def _wrapped(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        while len(line) > _MAX_LINE:
            out.append(line[:_MAX_LINE] + " ↩")
            line = line[0] + line[_MAX_LINE:] if line[:1] in "+- " else line[_MAX_LINE:]
        out.append(line)
    return out


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
            f"| `{_cell(env.environment.name)}` | `{_cell(env.environment.cluster)}` "
            f"| {counts} | {errors} | {warnings} | {_live_cell(env.live)} |"
        )
    return "\n".join(rows)


def _environment_blocks(env: EnvironmentPlan) -> Iterator[Block]:
    name = env.environment
    yield Block(f"#### Environment `{_cell(name.name)}` → cluster `{_cell(name.cluster)}`")
    if env.failure:
        yield Block(
            f"⚠️ **Cannot preview this environment:** {_text(env.failure)}\n\n"
            'This is not a "no changes" result. Fix the cause and comment '
            "`/gitops plan` to try again."
        )
        return
    if env.incomplete:
        yield Block(
            "⚠️ Some files could not be read (see the findings), so this list of "
            "changes may be incomplete."
        )
    changed = [c for c in env.changes if c.action is not Action.UNCHANGED]
    if not changed:
        yield Block(f"No changes: {env.count(Action.UNCHANGED)} objects stay as they are.")
    for change in changed:
        title = _change_title(change)
        yield Block(_details(title, change.diff), change, title)
    if changed and env.count(Action.UNCHANGED):
        yield Block(f"{env.count(Action.UNCHANGED)} other objects are unchanged.")
    yield from _live_blocks(env.live, name.cluster)


def _live_cell(live: LiveLayer | None) -> str:
    if live is None:
        return "not compared"
    if live.failure:
        return "⚠️ cannot preview"
    words = [f"{len(live.drift)} drifted" if live.drift else "no drift"]
    if live.unknown:
        words.append(f"{len(live.unknown)} not previewed")
    return ", ".join(words)


def _live_blocks(live: LiveLayer | None, cluster: str) -> Iterator[Block]:
    if live is None:
        yield Block(
            f"Live cluster: not compared (the bot has no connection to cluster "
            f"`{_cell(cluster)}` configured)."
        )
        return
    if live.failure:
        yield Block(
            f"⚠️ **Cannot compare with the live cluster:** {_text(live.failure)}\n\n"
            'This is not a "no drift" result. Fix the cause and comment `/gitops plan` '
            "to try again."
        )
        return
    yield Block(_live_summary(live))
    for change in live.changes:
        if change.note and change.action is not Action.UNCHANGED:
            yield Block(f"- {_change_title(change)}")
    if not live.drift:
        yield Block("No drift: the cluster matches the base commit.")
        return
    yield Block(
        f"**Drift already in the cluster, not from this change** ({len(live.drift)} "
        "objects differ from what the base commit declares; each diff goes from the live "
        "object to Git):"
    )
    for change in live.drift:
        title = _drift_title(change)
        yield Block(_details(title, change.diff), change, title)


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


def _drift_title(change: Change) -> str:
    what = {
        Action.CREATE: "missing from the cluster",
        Action.PRUNE: "in the cluster, no longer in Git",
        Action.ORPHAN: "in the cluster, no longer in Git",
    }.get(change.action, "differs from Git")
    where = f" — {_text(str(change.source))}" if change.source else ""
    return f"↯ drift <code>{_text(str(change.key))}</code>: {what}{where}"


def _change_title(change: Change) -> str:
    where = f" — {_text(str(change.source))}" if change.source else ""
    note = (
        " (removed from Git, left in the cluster: prune is off)"
        if change.action is Action.ORPHAN
        else ""
    )
    if change.note:
        note = f" ({_text(change.note)})"
    key = _text(str(change.key))
    return f"{_ICONS[change.action]} {change.action} <code>{key}</code>{where}{note}"


def _details(title: str, diff: str) -> str:
    fence = "`" * max(3, _longest_backtick_run(diff) + 1)
    return f"<details><summary>{title}</summary>\n\n{fence}diff\n{diff}\n{fence}\n\n</details>"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def _finding_line(finding: Finding) -> str:
    icon = "❌" if finding.severity is Severity.ERROR else "⚠️"
    subject = f" {_text(finding.subject)}" if finding.subject else ""
    field = f" <code>{_text(finding.field)}</code>" if finding.pointer else ""
    message = (
        finding.message
        if len(finding.message) <= 1_000
        else finding.message[:1_000] + " … (shortened)"
    )
    return (
        f"- {icon} **{finding.severity}** <code>{_text(finding.location)}</code> "
        f"[{_text(finding.rule)}]{subject}{field}: {_text(message)}"
    )


def _ordered(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(
        findings, key=lambda f: (f.severity is not Severity.ERROR, f.path or "", f.line or 0)
    )


def _count_words(findings: tuple[Finding, ...]) -> str:
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = len(findings) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def _text(value: str) -> str:
    """Inline text that cannot open HTML, a table cell or a code span."""
    return html.escape(value, quote=False).replace("|", "&#124;").replace("`", "&#96;")


def _cell(value: str) -> str:
    return value.replace("|", "").replace("`", "")
