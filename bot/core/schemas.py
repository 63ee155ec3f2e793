"""Kubernetes schema validation of objects; where schemas come from is the caller's business."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import jsonschema

from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import Manifest
from bot.core.patterns import LinearDraft7Validator
from bot.core.redaction import is_secret

MAX_ERRORS_PER_OBJECT = 20
MAX_MESSAGE_CHARS = 300


class ObjectValidator(Protocol):
    """All a schema check needs of a validator: every error in one object."""

    def iter_errors(self, instance: Any) -> Iterable[jsonschema.ValidationError]: ...


class SchemaCatalog(Protocol):
    """Looks up the validator for an apiVersion and kind, or None when it has none."""

    kubernetes_version: str

    def validator_for(self, api_version: str, kind: str) -> ObjectValidator | None: ...


def crd_validators(manifests: Iterable[Manifest]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """Schemas the repository supplies through CustomResourceDefinitions, by (apiVersion, kind)."""
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for manifest in manifests:
        if manifest.key.kind != "CustomResourceDefinition":
            continue
        spec = manifest.body.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema")
            if isinstance(schema, dict) and group and kind:
                found[(f"{group}/{version.get('name')}", kind)] = schema
    return found


def validate_schemas(
    manifests: Iterable[Manifest],
    catalog: SchemaCatalog,
    crd_schemas: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    unknown_severity: Severity = Severity.ERROR,
) -> tuple[Finding, ...]:
    """Check each object against its schema; an object with no schema is reported too."""
    crds = {key: LinearDraft7Validator(schema) for key, schema in (crd_schemas or {}).items()}
    findings: list[Finding] = []
    for manifest in manifests:
        lookup = (manifest.api_version, manifest.key.kind)
        validator = crds.get(lookup) or catalog.validator_for(*lookup)
        if validator is None:
            findings.append(_unknown_kind(manifest, catalog.kubernetes_version, unknown_severity))
            continue
        findings.extend(_object_findings(manifest, validator))
    return tuple(findings)


def _unknown_kind(manifest: Manifest, version: str, severity: Severity) -> Finding:
    return Finding(
        Stage.SCHEMA,
        severity,
        "schema.unknown-kind",
        f"no schema for apiVersion {manifest.api_version!r} kind {manifest.key.kind!r} in "
        f"Kubernetes {version}: check the spelling, or add the CustomResourceDefinition "
        "to the environment so the bot can check its objects",
        manifest.source.path,
        manifest.source.line,
        str(manifest.key),
    )


def _object_findings(manifest: Manifest, validator: ObjectValidator) -> list[Finding]:
    secret = is_secret(manifest.body)
    errors = sorted(validator.iter_errors(manifest.body), key=lambda e: list(e.absolute_path))
    findings = [
        Finding(
            Stage.SCHEMA,
            Severity.ERROR,
            "schema.invalid",
            _message(error, secret),
            manifest.source.path,
            manifest.source.line,
            str(manifest.key),
            tuple(error.absolute_path),
        )
        for error in errors[:MAX_ERRORS_PER_OBJECT]
    ]
    if len(errors) > MAX_ERRORS_PER_OBJECT:
        findings.append(
            Finding(
                Stage.SCHEMA,
                Severity.ERROR,
                "schema.invalid",
                f"{len(errors) - MAX_ERRORS_PER_OBJECT} more schema errors not listed; fix the "
                "ones above and check again",
                manifest.source.path,
                manifest.source.line,
                str(manifest.key),
            )
        )
    return findings


def _message(error: jsonschema.ValidationError, secret: bool) -> str:
    path = tuple(error.absolute_path)
    quotes_values = error.validator not in {"additionalProperties", "required"}
    if secret and quotes_values and (not path or path[0] in {"data", "stringData"}):
        # jsonschema quotes the offending value; in a Secret that can be the secret.
        return f"invalid value ({error.validator} check failed; Secret values are never shown)"
    message = str(error.message)
    if error.validator == "additionalProperties":
        message += "; check the spelling against the Kubernetes API reference"
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message
