"""Schema and policy checks over loaded manifests, with findings pinned to a field's line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.core.documents import locate
from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import LoadResult, Manifest
from bot.core.policies import Policy, check_policies
from bot.core.schemas import SchemaCatalog, crd_validators, validate_schemas

MAX_PINPOINTED = 500  # each pinpoint re-reads one document; past this, object lines do


def check_manifests(
    loaded: LoadResult,
    catalog: SchemaCatalog,
    policies: Iterable[Policy],
    texts: Mapping[str, bytes],
    unknown_kinds: Severity = Severity.ERROR,
) -> tuple[Finding, ...]:
    """Loader findings, then schema and policy findings, each at the best line known."""
    crds = crd_validators(loaded.manifests)
    checked = check_objects(loaded.manifests, catalog, policies, crds, unknown_kinds)
    return report_findings(loaded.findings, [checked], texts)


# check_manifests in two steps, so that a caller can check parts of the objects apart
# (bot/validation.py does, in worker processes) and still report them as one.


@dataclass(frozen=True)
class ObjectFindings:
    """The schema findings and the policy findings of some objects, in object order."""

    schema: tuple[Finding, ...] = ()
    policy: tuple[Finding, ...] = ()


def check_objects(
    manifests: Iterable[Manifest],
    catalog: SchemaCatalog,
    policies: Iterable[Policy],
    crd_schemas: Mapping[tuple[str, str], Mapping[str, Any]],
    unknown_kinds: Severity = Severity.ERROR,
) -> ObjectFindings:
    """Each object against its schema and every policy that matches it."""
    listed = list(manifests)
    return ObjectFindings(
        validate_schemas(listed, catalog, crd_schemas, unknown_kinds),
        check_policies(listed, policies),
    )


def report_findings(
    loaded: Iterable[Finding], parts: Iterable[ObjectFindings], texts: Mapping[str, bytes]
) -> tuple[Finding, ...]:
    """Loader findings, then the schema findings of all parts, then their policy findings."""
    listed = list(parts)
    schema = [finding for part in listed for finding in part.schema]
    policy = [finding for part in listed for finding in part.policy]
    return tuple(loaded) + pinpoint(schema + policy, texts)


def pinpoint(findings: Iterable[Finding], texts: Mapping[str, bytes]) -> tuple[Finding, ...]:
    """Move each finding from its object's first line to the line of its field."""
    result = []
    for index, finding in enumerate(findings):
        text = texts.get(finding.path or "")
        if index < MAX_PINPOINTED and finding.pointer and finding.line and text is not None:
            line = locate(text, finding.line, finding.pointer)
            finding = replace(finding, line=line or finding.line)
        result.append(finding)
    return tuple(result)


def checks_timed_out(seconds: float) -> Finding:
    """Parsing and checks ran out of time: the objects are unknown, so this blocks."""
    return Finding(
        Stage.RENDER,  # like a failed render: nothing is known about the objects
        Severity.ERROR,
        "render.checks-timeout",
        f"checks did not finish within {seconds:g} s: a policy or manifest is too expensive "
        "to check (a policy schema with very many keywords, or very many or very large "
        "objects); simplify the policy or split the environment, or ask the operator to "
        "raise GITOPS_BOT_CHECK_TIMEOUT_SECONDS",
    )
