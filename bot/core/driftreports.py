"""Drift as the body of a tracking issue: what differs from Git, and where Git set it."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.core.applies import Outcome
from bot.core.comments import drift_title
from bot.core.diffs import Action
from bot.core.drifts import DriftedObject, DriftState, EnvironmentDrift, Origin
from bot.core.markdown import Block, code, details, escape, html_code, pack

_MAX_LISTED = 30  # fields or ignored differences listed by name; the diffs show them all


def render_drift(drift: EnvironmentDrift, limit: int, kind: str) -> tuple[str, ...]:
    """An environment's drift as its tracking issue: description first, then comments."""
    return pack(drift_blocks(drift), limit, kind)


def drift_blocks(drift: EnvironmentDrift) -> Iterator[Block]:
    env, drifted = code(drift.environment), drift.state is DriftState.DRIFTED
    verdict = (
        f"↯ {env} differs from Git"
        if drifted
        else f"⚠️ cannot check {env}"
        if drift.failure
        else f"⚠️ could not compare every object of {env}"
    )
    yield Block(
        f"### gitops-bot drift: {verdict}\n\nCluster {code(drift.cluster)} compared with "
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
            f'⚠️ **Cannot compare:** {escape(drift.failure)}\n\nThis is not a "no drift" '
            "result: until the cause is fixed, drift in this environment goes unseen."
        )
    if drift.heal is not None:
        yield Block(_heal_line(drift))
    if drift.heal_held:
        yield Block(f"🩹 **Self-heal held back:** {escape(drift.heal_held)}")
    yield from (Block(_drifted_line(d)) for d in drift.objects)
    yield from (
        Block(f"- ⚠️ {html_code(str(key))} could not be compared: {escape(why)}")
        for key, why in drift.unknown
    )
    if drift.ignored:
        shown = ", ".join(html_code(i) for i in drift.ignored[:_MAX_LISTED])
        more = len(drift.ignored) - _MAX_LISTED
        yield Block(f"Not counted (`drift.ignore`): {shown}{f' and {more} more' * (more > 0)}.")
    for item in drift.objects:
        title = drift_title(item.change)
        yield Block(details(title, item.change.diff), item.change, title)
    yield Block(_drift_advice(drift))


def drift_resolved(drift: EnvironmentDrift) -> str:
    """The comment that closes a tracking issue."""
    text = (
        f"✅ Cluster {code(drift.cluster)} matches commit {_sha(drift.commit)} of the "
        f"default branch again ({_objects(drift.checked)} compared)."
    )
    return f"{text}\n\n{_heal_line(drift)}" if drift.heal is not None else text


def _drifted_line(item: DriftedObject) -> str:
    where = f" ({escape(str(item.change.source))})" if item.change.source else ""
    what = {Action.CREATE: "missing from the cluster", Action.PRUNE: "no longer in Git"}.get(
        item.change.action, "differs"
    )
    origin = _origin(item.origin)
    lines = [f"- ↯ {html_code(str(item.change.key))}{where}: {what}; {origin}"]
    lines += [f"  - {html_code(f)}: {origin}" for f in item.fields[:_MAX_LISTED]]
    if len(item.fields) > _MAX_LISTED:
        lines.append(f"  - and {len(item.fields) - _MAX_LISTED} more fields (see the diff)")
    if item.changed_by:
        lines.append(f"  - changed in the cluster by: {escape('; '.join(item.changed_by))}")
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
    return commit if re.fullmatch(r"[0-9a-f]{7,64}", commit) else html_code(commit)


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
    text = f"🩹 **Self-heal of {_sha(heal.commit)} did not complete:** {escape(why)}"
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
