"""One object exempted from policies by its `gitops-bot.io/exempt` annotation, with a reason."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, replace

from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import Manifest
from bot.core.policies import Policy, check_policies
from bot.core.relaxations import Effect, ExemptionRules, Relaxation, Scope, known_ids

EXEMPT_ANNOTATION = "gitops-bot.io/exempt"
_POINTER = ("metadata", "annotations", EXEMPT_ANNOTATION)
_POLICY_ID = re.compile(r"[a-z0-9][-a-z0-9]*")
_FORM = f"each line of {EXEMPT_ANNOTATION} reads 'POLICY-ID: REASON'"


@dataclass(frozen=True)
class CheckedPolicies:
    findings: tuple[Finding, ...] = ()
    relaxations: tuple[Relaxation, ...] = ()  # the exemptions in force, per object


def check_with_exemptions(
    manifests: Iterable[Manifest], policies: Iterable[Policy], exemptions: ExemptionRules | None
) -> CheckedPolicies:
    """check_policies, then each object's own exemptions applied to its findings."""
    selected = tuple(policies)
    if exemptions is None:
        return CheckedPolicies(check_policies(manifests, selected))
    findings: list[Finding] = []
    relaxations: list[Relaxation] = []
    for manifest in manifests:
        found = check_policies((manifest,), selected)
        claimed = _annotation(manifest)
        if claimed is None:
            findings.extend(found)
            continue
        granted, problems = _granted(manifest, claimed, exemptions)
        findings += problems + _waive(found, granted)
        relaxations += [_listed(manifest, p, effect, why, found) for p, (effect, why) in granted]
    return CheckedPolicies(tuple(findings), tuple(relaxations))


def _annotation(manifest: Manifest) -> str | None:
    metadata = manifest.body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    value = annotations.get(EXEMPT_ANNOTATION) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None  # not a string: a schema finding


Granted = list[tuple[str, tuple[Effect, str]]]  # policy id, (effect, reason), in line order


def _granted(
    manifest: Manifest, text: str, exemptions: ExemptionRules
) -> tuple[Granted, list[Finding]]:
    """The exemptions the server allows, and a finding for each line it cannot use."""
    granted: dict[str, tuple[Effect, str]] = {}
    problems = []
    for number, policy_id, reason in _lines(text):
        problem = _line_problem(policy_id, reason, granted, exemptions)
        effect = exemptions.effect(policy_id) if problem is None else None
        if isinstance(effect, Effect):
            granted[policy_id] = (effect, reason)
            continue
        rule, message = problem or ("policy.exemption-refused", f"{effect}; remove the line")
        problems.append(_finding(manifest, rule, f"line {number}: {message}"))
    return list(granted.items()), problems


def _lines(text: str) -> Iterator[tuple[int, str, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            policy_id, _, reason = line.partition(":")
            yield number, policy_id.strip(), reason.strip()


def _line_problem(
    policy_id: str, reason: str, granted: Collection[str], exemptions: ExemptionRules
) -> tuple[str, str] | None:
    """The rule and message of what is wrong with one line, or None."""
    if not _POLICY_ID.fullmatch(policy_id):
        return "policy.exemption-invalid", f"{policy_id!r} is not a policy id; {_FORM}"
    if policy_id not in exemptions.known:
        known = known_ids(policy_id, exemptions.known)
        return "policy.exemption-unknown", f"{policy_id!r} is not a policy in force here; {known}"
    if not reason:
        return "policy.exemption-invalid", f"{policy_id!r} is given no reason; {_FORM}"
    if policy_id in granted:
        return "policy.exemption-invalid", f"{policy_id!r} is exempted twice; keep one line"
    return None


def _waive(found: Iterable[Finding], granted: Granted) -> list[Finding]:
    """Findings of an exempted policy dropped, or lowered where the server says severity."""
    effects = {policy_id: effect for policy_id, (effect, _) in granted}
    kept = [f for f in found if effects.get(f.rule) is not Effect.OFF]
    lowered = Severity.WARNING
    return [replace(f, severity=lowered) if f.rule in effects else f for f in kept]


def _listed(
    manifest: Manifest, policy_id: str, effect: Effect, reason: str, found: Iterable[Finding]
) -> Relaxation:
    return Relaxation(
        policy_id,
        effect,
        Scope.OBJECT,
        manifest.source.path,
        manifest.source.line,
        subject=str(manifest.key),
        reason=reason,
        waived=sum(f.rule == policy_id for f in found),
        pointer=_POINTER,
    )


def _finding(manifest: Manifest, rule: str, message: str) -> Finding:
    source = manifest.source
    return Finding(
        Stage.POLICY,
        Severity.ERROR,
        rule,
        f"{EXEMPT_ANNOTATION} cannot be used: {message}",
        source.path,
        source.line,
        str(manifest.key),
        _POINTER,
    )
