"""Drift: how the live cluster differs from the default branch, and what may be ignored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from bot.core.applies import ApplyResult
from bot.core.audit import AuditEntry
from bot.core.controls import plain
from bot.core.diffs import Action, Change, change_of, normalise
from bot.core.fieldpaths import ANY, IgnoredField, changed_fields, parse_path, without
from bot.core.livediffs import Observation, explain
from bot.core.manifests import ObjectKey, Source
from bot.core.rollouts import COMMIT_ANNOTATION, PULL_REQUEST_ANNOTATION


class DriftState(StrEnum):
    IN_SYNC = "in-sync"
    DRIFTED = "drifted"
    UNKNOWN = "unknown"  # the check could not compare everything: never a clean bill


@dataclass(frozen=True)
class Origin:
    """The apply that last set an object's fields: its commit and the PR behind it."""

    commit: str
    pull_request: str = ""  # as the object's annotation says: "#12" or a URL
    url: str = ""  # the PR's web address, when known


@dataclass(frozen=True)
class DriftedObject:
    change: Change  # from the live object to what Git applies, secret values masked
    fields: tuple[str, ...] = ()  # the fields that differ (none for a missing object)
    origin: Origin | None = None
    changed_by: tuple[str, ...] = ()  # other field managers that set these fields


@dataclass(frozen=True)
class EnvironmentDrift:
    """One environment's drift check against one commit of the default branch."""

    environment: str
    cluster: str
    commit: str
    objects: tuple[DriftedObject, ...] = ()
    checked: int = 0  # objects compared
    ignored: tuple[str, ...] = ()  # "Deployment.apps shop/web: spec.replicas"
    unknown: tuple[tuple[ObjectKey, str], ...] = ()  # objects that could not be compared
    failure: str | None = None  # the cluster could not be compared at all
    applied_commit: str | None = None  # what the bot last applied here, when that differs
    heal: ApplyResult | None = None  # the self-heal that ran before this check
    heal_held: str = ""  # why no self-heal ran though it is on, e.g. it failed just now
    self_heal: bool = False  # whether the environment heals itself (for the report)

    @property
    def state(self) -> DriftState:
        if self.objects:
            return DriftState.DRIFTED
        return DriftState.UNKNOWN if self.failure or self.unknown else DriftState.IN_SYNC


def drift_of(
    base: EnvironmentDrift,
    observations: Iterable[Observation],
    leftovers: Iterable[Change],
    *,
    rules: Sequence[IgnoredField],
    secret_key: bytes,
    sources: Mapping[ObjectKey, Source],
) -> EnvironmentDrift:
    """Each observed object against its dry-run apply, ignoring the fields `rules` name;
    `leftovers` are what prune would still delete."""
    found: list[DriftedObject] = []
    ignored: list[str] = []
    unknown: list[tuple[ObjectKey, str]] = []
    checked = 0
    for seen in observations:
        if seen.applied is None:
            if seen.problem is not None:
                unknown.append((seen.key, explain(seen.problem, False)[2]))
            continue
        checked += 1
        drifted, skipped = _compare(seen, rules, secret_key, sources.get(seen.key))
        found += drifted
        ignored += skipped
    found += (DriftedObject(c) for c in leftovers if c.action is Action.PRUNE)
    # Sorted: observations come in whatever order the cluster listed them, and the same
    # drift must make the same tracking issue, or it is edited at every check.
    return replace(
        base,
        objects=tuple(sorted(found, key=lambda d: d.change.key)),
        checked=checked,
        ignored=tuple(sorted(ignored)),
        unknown=tuple(sorted(unknown)),
    )


def _compare(
    seen: Observation, rules: Sequence[IgnoredField], secret_key: bytes, source: Source | None
) -> tuple[list[DriftedObject], list[str]]:
    assert seen.applied is not None
    paths = [rule.path for rule in rules if rule.matches(seen.key)]
    live = without(seen.live, paths) if seen.live is not None else None
    change = change_of(
        seen.key, live, without(seen.applied, paths), prune=True, secret_key=secret_key
    )
    change = replace(change, source=source, note=seen.note)
    skipped = _ignored(seen, paths, secret_key)
    if change.action is Action.UNCHANGED:
        return [], skipped
    fields: tuple[str, ...] = ()
    if live is not None:
        wanted = _stripped(seen, paths, secret_key)
        fields = tuple(changed_fields(normalise(live, secret_key), wanted))
    managers = seen.problem.conflicts if seen.problem is not None else ()
    managers = tuple(sorted(m for m in managers if not _on_ignored_field(m, paths)))
    return [DriftedObject(change, fields, origin_in_cluster(seen.live), managers)], skipped


def _on_ignored_field(conflict: str, paths: list[tuple[str, ...]]) -> bool:
    """Whether an API server conflict ('conflict with "hpa" ...: .spec.replicas') is
    about a field the rules ignore."""
    try:
        field = parse_path(conflict.rpartition(": ")[2])
    except ValueError:
        return False
    return any(
        len(path) == len(field) and all(p in (ANY, f) for p, f in zip(path, field, strict=True))
        for path in paths
    )


def _stripped(seen: Observation, paths: list[tuple[str, ...]], secret_key: bytes) -> Any:
    assert seen.applied is not None
    return normalise(without(seen.applied, paths), secret_key)


def _ignored(seen: Observation, paths: list[tuple[str, ...]], secret_key: bytes) -> list[str]:
    """The differences the rules hid, so the report can say what it did not count."""
    if not paths or seen.live is None or seen.applied is None:
        return []
    everything = set(
        changed_fields(normalise(seen.live, secret_key), normalise(seen.applied, secret_key))
    )
    counted = set(
        changed_fields(
            normalise(without(seen.live, paths), secret_key), _stripped(seen, paths, secret_key)
        )
    )
    return [f"{seen.key}: {path}" for path in sorted(everything - counted)]


def origin_in_cluster(live: Mapping[str, Any] | None) -> Origin | None:
    """Where the bot's annotations say a live object was last applied from."""
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    commit = str(annotations.get(COMMIT_ANNOTATION) or "")
    if not commit:
        return None
    pull = str(annotations.get(PULL_REQUEST_ANNOTATION) or "")
    return Origin(commit, pull, pull if pull.startswith(("https://", "http://")) else "")


def with_ledger(drift: EnvironmentDrift, ledger: Sequence[AuditEntry]) -> EnvironmentDrift:
    """Fill in origins from the audit ledger: PR links the annotations lack, and the last
    apply of objects that are gone from the cluster. `ledger` is oldest first."""
    objects = tuple(
        replace(d, origin=origin_in_ledger(d.change.key, d.origin, ledger)) for d in drift.objects
    )
    return replace(drift, objects=objects)


def origin_in_ledger(
    key: ObjectKey, known: Origin | None, ledger: Sequence[AuditEntry]
) -> Origin | None:
    if known is not None and known.url:
        return known
    for entry in reversed(ledger):
        if entry.result != "succeeded":
            continue
        if known is not None and entry.commit == known.commit:
            return replace(known, url=entry.pr_url or "")
        if known is None and _applied_in(entry, key):
            number = f"#{entry.pr_number}" if entry.pr_number is not None else ""
            return Origin(entry.commit, entry.pr_url or number, entry.pr_url or "")
    return known


def _applied_in(entry: AuditEntry, key: ObjectKey) -> bool:
    return any(o.get("object") == str(key) and o.get("outcome") == "applied" for o in entry.objects)


def may_take_over(drift: EnvironmentDrift, force_conflicts: bool) -> bool:
    """Whether a self-heal may take fields back from whoever changed them by hand.

    Healing means Git wins, so it does by default; but a forced apply would also take
    back the ignored fields (an autoscaler's replicas) wherever their values differ.
    """
    return force_conflicts or not drift.ignored


def tracking_key(environment: str) -> str:
    """The marker kind of an environment's tracking issue."""
    return f"drift:{environment}"


def issue_title(drift: EnvironmentDrift) -> str:
    if drift.state is DriftState.DRIFTED:
        return plain(f"Drift detected in {drift.environment}")
    return plain(f"Drift check failing in {drift.environment}")
