"""Schema and policy checks over loaded manifests, with findings pinned to a field's line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from bot.core.customschemas import NO_SCHEMAS, FirstFound, SchemaLookup, crd_schemas
from bot.core.documents import locate
from bot.core.exemptions import check_with_exemptions
from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import LoadResult, Manifest
from bot.core.policies import Policy
from bot.core.relaxations import ExemptionRules, Relaxation
from bot.core.schemas import UNKNOWN_WARNS, SchemaCatalog, UnknownKinds, validate_schemas

MAX_PINPOINTED = 500  # each pinpoint re-reads one document; past this, object lines do


def check_manifests(
    loaded: LoadResult,
    catalog: SchemaCatalog,
    policies: Iterable[Policy],
    texts: Mapping[str, bytes],
    unknown: UnknownKinds = UNKNOWN_WARNS,
    schemas: SchemaLookup = NO_SCHEMAS,
) -> tuple[Finding, ...]:
    """Loader findings, then schema and policy findings, each at the best line known."""
    return checked_manifests(loaded, catalog, policies, texts, unknown, schemas).findings


@dataclass(frozen=True)
class Checked:
    findings: tuple[Finding, ...]
    relaxations: tuple[Relaxation, ...] = ()  # the objects' exemptions in force


def checked_manifests(
    loaded: LoadResult,
    catalog: SchemaCatalog,
    policies: Iterable[Policy],
    texts: Mapping[str, bytes],
    unknown: UnknownKinds = UNKNOWN_WARNS,
    schemas: SchemaLookup = NO_SCHEMAS,
    exemptions: ExemptionRules | None = None,
) -> Checked:
    """check_manifests, with the objects' exemptions applied and listed.

    The CRDs among the objects come first; `schemas` are the other sources, in order.
    """
    custom = FirstFound((crd_schemas(loaded.manifests), schemas))
    checked = check_objects(loaded.manifests, catalog, policies, custom, unknown, exemptions)
    findings = report_findings(loaded.findings, [checked], texts)
    return Checked(findings, report_relaxations([checked], texts))


# check_manifests in two steps, so that a caller can check parts of the objects apart
# (bot/stages/validate.py does, in worker processes) and still report them as one.


@dataclass(frozen=True)
class ObjectFindings:
    """The schema findings and the policy findings of some objects, in object order."""

    schema: tuple[Finding, ...] = ()
    policy: tuple[Finding, ...] = ()
    relaxations: tuple[Relaxation, ...] = ()


def check_objects(
    manifests: Iterable[Manifest],
    catalog: SchemaCatalog,
    policies: Iterable[Policy],
    custom: SchemaLookup,
    unknown: UnknownKinds = UNKNOWN_WARNS,
    exemptions: ExemptionRules | None = None,
) -> ObjectFindings:
    """Each object against its schema and every policy that matches it."""
    listed = list(manifests)
    policy = check_with_exemptions(listed, policies, exemptions)
    return ObjectFindings(
        validate_schemas(listed, catalog, custom, unknown),
        policy.findings,
        policy.relaxations,
    )


def report_findings(
    loaded: Iterable[Finding], parts: Iterable[ObjectFindings], texts: Mapping[str, bytes]
) -> tuple[Finding, ...]:
    """Loader findings, then the schema findings of all parts, then their policy findings."""
    listed = list(parts)
    schema = [finding for part in listed for finding in part.schema]
    policy = [finding for part in listed for finding in part.policy]
    return tuple(loaded) + pinpoint(schema + policy, texts)


def report_relaxations(
    parts: Iterable[ObjectFindings], texts: Mapping[str, bytes]
) -> tuple[Relaxation, ...]:
    """The exemptions of all parts, each at the line of its annotation."""
    listed = [relaxation for part in parts for relaxation in part.relaxations]
    return tuple(_at_field(r, texts) if i < MAX_PINPOINTED else r for i, r in enumerate(listed))


def _at_field(relaxation: Relaxation, texts: Mapping[str, bytes]) -> Relaxation:
    text = texts.get(relaxation.path or "")
    if text is None or not relaxation.line or not relaxation.pointer:
        return relaxation
    return replace(
        relaxation, line=locate(text, relaxation.line, relaxation.pointer) or relaxation.line
    )


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
