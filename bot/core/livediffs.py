"""Live preview: what the cluster holds vs what the bot would apply, as changes and findings."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.core.diffs import Action, Change, change_of
from bot.core.findings import Finding, Severity, Stage
from bot.core.inventories import PruneDecision
from bot.core.manifests import ObjectKey, Source
from bot.core.redaction import hidden_values, holds_secrets

WITH_CRD = "will be created with its CRD: the cluster cannot preview it before the CRD exists"
WITH_NAMESPACE = "will be created with its Namespace, which this change also creates"


class ProblemKind(StrEnum):
    """Why the cluster could not preview one object; each says what to do in its finding."""

    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"
    ADMISSION_DENIED = "admission-denied"
    ADMISSION_UNAVAILABLE = "admission-unavailable"  # a webhook could not be called
    NO_DRY_RUN = "no-dry-run"  # a webhook with side effects refuses dry runs
    INVALID = "invalid"
    UNKNOWN_KIND = "unknown-kind"
    MISSING_NAMESPACE = "missing-namespace"
    SERVER_ERROR = "server-error"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    message: str  # the API server's words, secret values already removed
    conflicts: tuple[str, ...] = ()  # e.g. 'manager "kubectl-edit": .data.level'


@dataclass(frozen=True)
class Observation:
    """One object as the cluster sees it: live now, and after the bot's (dry-run) apply."""

    key: ObjectKey
    live: Mapping[str, Any] | None  # None: absent
    applied: Mapping[str, Any] | None  # None: not known (see problem), or to be deleted
    note: str = ""
    problem: Problem | None = None  # a conflict still has `applied`: the forced dry run


@dataclass(frozen=True)
class LiveLayer:
    """The cluster's side of a plan."""

    cluster: str
    changes: tuple[Change, ...] = ()  # live -> head: what merging would do to the cluster now
    drift: tuple[Change, ...] = ()  # live vs base: differences that are not from this change
    unknown: tuple[ObjectKey, ...] = ()  # objects the cluster could not preview
    failure: str | None = None  # the cluster could not be asked at all

    def count(self, action: Action) -> int:
        return sum(change.action is action for change in self.changes)

    @property
    def will_change(self) -> tuple[ObjectKey, ...]:
        return tuple(c.key for c in self.changes if c.action is not Action.UNCHANGED)


def live_changes(
    observations: Iterable[Observation],
    decision: PruneDecision,
    lives: Mapping[ObjectKey, Mapping[str, Any] | None],
    *,
    secret_key: bytes,
    sources: Mapping[ObjectKey, Source],
) -> tuple[Change, ...]:
    """Live -> head for every object that could be previewed, then what prune does."""
    changes = observed_changes(observations, secret_key, sources)
    changes += prune_changes(decision, lives, secret_key)
    return tuple(sorted(changes, key=lambda c: c.key))


def prune_changes(
    decision: PruneDecision,
    lives: Mapping[ObjectKey, Mapping[str, Any] | None],
    secret_key: bytes,
) -> list[Change]:
    """What prune would delete or leave, for the inventory objects still in the cluster."""
    changes = []
    for entry in decision.delete:
        if lives.get(entry.key) is not None:
            live = lives[entry.key]
            changes.append(change_of(entry.key, live, None, prune=True, secret_key=secret_key))
    for kept in decision.kept:
        if lives.get(kept.entry.key) is not None:
            live = lives[kept.entry.key]
            change = change_of(kept.entry.key, live, None, prune=False, secret_key=secret_key)
            changes.append(Change(change.key, change.action, change.diff, note=kept.reason))
    return changes


def drift_changes(
    observations: Iterable[Observation], *, secret_key: bytes, sources: Mapping[ObjectKey, Source]
) -> tuple[Change, ...]:
    """Base objects whose live state differs from what the base commit applies."""
    changes = observed_changes(observations, secret_key, sources)
    return tuple(sorted((c for c in changes if c.action is not Action.UNCHANGED), key=_by_key))


def observed_changes(
    observations: Iterable[Observation], secret_key: bytes, sources: Mapping[ObjectKey, Source]
) -> list[Change]:
    """Live -> what the dry run says the apply leaves, for each object that was observed."""
    return [
        change_of(
            o.key,
            o.live,
            o.applied,
            prune=True,
            secret_key=secret_key,
            source=sources.get(o.key),
            note=o.note,
        )
        for o in observations
        if o.applied is not None
    ]


def _by_key(change: Change) -> ObjectKey:
    return change.key


def cluster_findings(
    observations: Iterable[Observation],
    *,
    force_conflicts: bool,
    sources: Mapping[ObjectKey, Source],
) -> tuple[Finding, ...]:
    """One finding per object the cluster refused or could not preview, saying what to do."""
    findings = []
    for o in observations:
        if o.problem is None:
            continue
        severity, rule, message = explain(o.problem, force_conflicts)
        source = sources.get(o.key)
        findings.append(
            Finding(
                Stage.CLUSTER,
                severity,
                rule,
                message,
                source.path if source else None,
                source.line if source else None,
                str(o.key),
            )
        )
    return tuple(findings)


def explain(problem: Problem, force_conflicts: bool) -> tuple[Severity, str, str]:
    said = problem.message
    if problem.kind is ProblemKind.CONFLICT:
        owners = "; ".join(problem.conflicts) or said
        if force_conflicts:
            return (
                Severity.WARNING,
                "cluster.conflict-takeover",
                f"fields owned by another field manager will be taken over on apply "
                f"(force_conflicts is on): {owners}",
            )
        return (
            Severity.ERROR,
            "cluster.conflict",
            f"conflict with another field manager: {owners}. The apply would fail. Agree "
            "on one owner: remove the field from Git, change it back in the cluster with "
            "the other manager, or set force_conflicts: true for this environment",
        )
    severity, rule, advice = _ADVICE[problem.kind]
    return severity, rule, f"{said}. {advice}" if advice else said


_ADVICE: dict[ProblemKind, tuple[Severity, str, str]] = {
    ProblemKind.FORBIDDEN: (
        Severity.ERROR,
        "cluster.forbidden",
        "The bot's identity may not change this object: grant it get, create and patch "
        "(RBAC) here, or move the object to a namespace the bot manages",
    ),
    ProblemKind.ADMISSION_DENIED: (
        Severity.ERROR,
        "cluster.admission-denied",
        "Admission control in the cluster refuses the object; change it to satisfy the policy",
    ),
    ProblemKind.ADMISSION_UNAVAILABLE: (
        Severity.WARNING,
        "cluster.admission-unavailable",
        "Cannot preview this object: an admission webhook could not be called during the "
        "dry run; the apply will fail the same way unless the webhook is back",
    ),
    ProblemKind.NO_DRY_RUN: (
        Severity.WARNING,
        "cluster.no-dry-run",
        "Cannot preview this object: an admission webhook does not support dry runs, so "
        "the cluster did not check it",
    ),
    ProblemKind.INVALID: (
        Severity.ERROR,
        "cluster.invalid",
        "The API server rejects the object; fix it",
    ),
    ProblemKind.UNKNOWN_KIND: (
        Severity.ERROR,
        "cluster.unknown-kind",
        "Install the kind's CRD (or add it to this environment), or fix the apiVersion",
    ),
    ProblemKind.MISSING_NAMESPACE: (
        Severity.ERROR,
        "cluster.missing-namespace",
        "Add a Namespace object to this environment, or create the namespace first",
    ),
    ProblemKind.SERVER_ERROR: (
        Severity.WARNING,
        "cluster.server-error",
        "Cannot preview this object: the API server failed; retry with /gitops plan",
    ),
}


def scrub(message: str, body: Mapping[str, Any]) -> str:
    """An API server message with every value of a Secret in `body` replaced, in any encoding."""
    if not holds_secrets(body):
        return message
    for value in sorted(_secret_values(body), key=len, reverse=True):
        if len(value) >= _SHORT:
            message = message.replace(value, "(hidden)")
        else:  # short values only as whole words, or ordinary words would be mangled
            message = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "(hidden)", message)
    return message


_SHORT = 4


def _secret_values(body: Mapping[str, Any]) -> set[str]:
    values: set[str] = set()
    for text in hidden_values(body):
        values.add(text)
        values.update(_decodings(text))  # a data value may appear decoded
    values.discard("")
    return values


def _decodings(text: str) -> set[str]:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return set()
    return {raw.decode("utf-8", "replace"), raw.decode("latin-1")}
