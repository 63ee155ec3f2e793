"""Schema and policy checks over loaded manifests, with findings pinned to a field's line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from bot.core.documents import locate
from bot.core.findings import Finding, Severity
from bot.core.manifests import LoadResult
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
    checked = validate_schemas(loaded.manifests, catalog, crds, unknown_kinds)
    checked += check_policies(loaded.manifests, policies)
    return loaded.findings + pinpoint(checked, texts)


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
