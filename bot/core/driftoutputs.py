"""`gitops-bot drift` output: a drift check as text for people or JSON for programs."""

from __future__ import annotations

from typing import Any

from bot.core.drifts import DriftedObject, EnvironmentDrift, Origin


def drift_as_data(drift: EnvironmentDrift) -> dict[str, Any]:
    return {
        "environment": drift.environment,
        "cluster": drift.cluster,
        "commit": drift.commit,
        "state": str(drift.state),
        "failure": drift.failure,
        "checked": drift.checked,
        "objects": [_object_data(d) for d in drift.objects],
        "ignored": list(drift.ignored),
        "unknown": [{"object": str(key), "reason": why} for key, why in drift.unknown],
    }


def _object_data(item: DriftedObject) -> dict[str, Any]:
    change = item.change
    return {
        "object": str(change.key),
        "action": str(change.action),
        "source": str(change.source) if change.source else None,
        "fields": list(item.fields),
        "origin": _origin_data(item.origin),
        "changed_by": list(item.changed_by),
        "diff": change.diff,
    }


def _origin_data(origin: Origin | None) -> dict[str, str] | None:
    if origin is None:
        return None
    return {"commit": origin.commit, "pull_request": origin.pull_request, "url": origin.url}


def drift_as_text(drift: EnvironmentDrift) -> str:
    """A headline, then each drifted object with its fields, origin and diff."""
    lines = [
        f"{drift.environment} (cluster {drift.cluster}) against {drift.commit[:12]}: "
        f"{drift.state}; {len(drift.objects)} of {drift.checked} compared objects differ"
    ]
    if drift.failure:
        lines.append(f"  cannot compare: {drift.failure}")
    for item in drift.objects:
        lines.append(f"  {item.change.action} {item.change.key}: {_origin_text(item.origin)}")
        lines += [f"    field {field}" for field in item.fields]
        lines += [f"    changed by {who}" for who in item.changed_by]
        lines += [f"    {line}" for line in item.change.diff.splitlines()]
    lines += [f"  not compared: {key}: {why}" for key, why in drift.unknown]
    lines += [f"  ignored: {what}" for what in drift.ignored]
    return "\n".join(lines) + "\n"


def _origin_text(origin: Origin | None) -> str:
    if origin is None:
        return "no apply by the bot on record"
    pull = f" ({origin.url or origin.pull_request})" if origin.url or origin.pull_request else ""
    return f"last applied from {origin.commit[:12]}{pull}"
