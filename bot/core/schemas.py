"""Kubernetes schema validation of objects; where schemas come from is the caller's business."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot.core.customschemas import NO_SCHEMAS, CustomSchema, SchemaLookup
from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import Manifest, group_of
from bot.core.redaction import hides, undecodable_data

if TYPE_CHECKING:  # validators bring their own errors; importing jsonschema costs start-up
    import jsonschema

MAX_ERRORS_PER_OBJECT = 20
MAX_MESSAGE_CHARS = 300
HOW_TO_SUPPLY = (
    "supply its schema: list the CRD's file or folder under `crds:` in .gitops-bot.yaml, "
    "name a folder of JSON schemas ({group}/{kind}_{version}.json) under `schema_folders:` "
    "(or GITOPS_BOT_SCHEMA_FOLDER on the server), or install the CRD in the environment's "
    "cluster; `unknown_kinds: error` makes this block the merge (README: Custom resources)"
)


class ObjectValidator(Protocol):
    """All a schema check needs of a validator: every error in one object."""

    def iter_errors(self, instance: Any) -> Iterable[jsonschema.ValidationError]: ...


class SchemaCatalog(Protocol):
    """Looks up the validator for an apiVersion and kind, or None when it has none."""

    kubernetes_version: str

    def validator_for(self, api_version: str, kind: str) -> ObjectValidator | None: ...

    def custom_validator(self, schema: CustomSchema) -> ObjectValidator:
        """The validator of a custom resource's schema, compiled once per content."""
        ...

    def serves_group(self, group: str) -> bool:
        """Whether Kubernetes itself serves this API group, so no CRD can add a kind to it."""
        ...


@dataclass(frozen=True)
class UnknownKinds:
    """What an object with no schema anywhere gets: a severity, and why no source had one."""

    severity: Severity = Severity.WARNING
    note: str = ""  # e.g. that the environment's cluster could not be read


UNKNOWN_WARNS = UnknownKinds()


def validate_schemas(
    manifests: Iterable[Manifest],
    catalog: SchemaCatalog,
    custom: SchemaLookup = NO_SCHEMAS,
    unknown: UnknownKinds = UNKNOWN_WARNS,
) -> tuple[Finding, ...]:
    """Check each object against its schema; an object with no schema is reported too."""
    findings: list[Finding] = []
    for manifest in manifests:
        lookup = (manifest.api_version, manifest.key.kind)
        findings.extend(_undecodable_findings(manifest))
        schema = custom.get(lookup)
        if schema is not None:
            findings.extend(
                _object_findings(manifest, catalog.custom_validator(schema), schema.source)
            )
        elif (validator := catalog.validator_for(*lookup)) is not None:
            findings.extend(_object_findings(manifest, validator))
        else:
            findings.append(unknown_kind(manifest, catalog, unknown))
    return tuple(findings)


def _undecodable_findings(manifest: Manifest) -> list[Finding]:
    """A core Secret's `data` values must be base64, or the API server refuses the object."""
    return [
        Finding(
            Stage.SCHEMA,
            Severity.ERROR,
            "secret.not-base64",
            f"data.{name} is not valid base64, so the API server refuses this Secret (the "
            "value is not shown): encode it with `base64 -w0`, or move it to stringData",
            manifest.source.path,
            manifest.source.line,
            str(manifest.key),
            ("data", name),
        )
        for name in undecodable_data(manifest.body)
    ]


def unknown_kind(manifest: Manifest, catalog: SchemaCatalog, unknown: UnknownKinds) -> Finding:
    """No schema: in a group Kubernetes serves it is a typo; elsewhere `unknown` decides."""
    group = group_of(manifest.api_version)
    what = f"apiVersion {manifest.api_version!r} kind {manifest.key.kind!r}"
    if "." not in group or catalog.serves_group(group):
        severity = Severity.ERROR
        message = (
            f"Kubernetes {catalog.kubernetes_version} has no {what}, and no CRD can add a "
            "kind to this API group: check the spelling of apiVersion and kind, or use an "
            "apiVersion this Kubernetes version still serves"
        )
    else:
        severity = unknown.severity
        message = f"no schema for {what}, so it is not checked; {HOW_TO_SUPPLY}{unknown.note}"
    return Finding(
        Stage.SCHEMA,
        severity,
        "schema.unknown-kind",
        message,
        manifest.source.path,
        manifest.source.line,
        str(manifest.key),
    )


def _object_findings(
    manifest: Manifest, validator: ObjectValidator, source: str = ""
) -> list[Finding]:
    errors = sorted(validator.iter_errors(manifest.body), key=lambda e: list(e.absolute_path))
    findings = [
        Finding(
            Stage.SCHEMA,
            Severity.ERROR,
            "schema.invalid",
            _message(error, manifest.body, source),
            manifest.source.path,
            manifest.source.line,
            str(manifest.key),
            _pointer(error),
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


def _pointer(error: jsonschema.ValidationError) -> tuple[str | int, ...]:
    """Where the error is, named as the API server names it: the unknown field, the
    missing field, the repeated item (the line shown is the nearest that exists)."""
    path = tuple(error.absolute_path)
    culprits: list[Any] = []
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        declared = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        culprits = [key for key in error.instance if key not in declared]
    elif error.validator == "required" and isinstance(error.instance, Mapping):
        wanted = error.validator_value if isinstance(error.validator_value, list) else []
        culprits = [key for key in wanted if key not in error.instance]
    elif error.validator == "uniqueItems" and isinstance(error.instance, list):
        items = error.instance
        culprits = [next((i for i, v in enumerate(items) if v in items[:i]), None)][:1]
    if len(culprits) == 1 and isinstance(culprits[0], str | int):
        return (*path, culprits[0])
    return path


def _message(error: jsonschema.ValidationError, body: Mapping[str, Any], source: str) -> str:
    quotes_values = error.validator not in {"additionalProperties", "required"}
    if quotes_values and hides(body, tuple(error.absolute_path)):
        # jsonschema quotes the offending value; in a Secret that can be the secret.
        return f"invalid value ({error.validator} check failed; Secret values are never shown)"
    message = str(error.message)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    if error.validator == "additionalProperties":
        reference = "its schema" if source else "the Kubernetes API reference"
        message += f"; check the spelling against {reference}"
    return f"{message} (schema from {source})" if source else message


def kinds_without_schema(
    manifests: Iterable[Manifest], catalog: SchemaCatalog, custom: SchemaLookup
) -> set[tuple[str, str]]:
    """The custom kinds among `manifests` (groups Kubernetes does not serve) with no schema
    in `custom` yet: what the slower sources (cluster, schema folders) are asked for."""
    missing = set()
    for manifest in manifests:
        key, group = (manifest.api_version, manifest.key.kind), group_of(manifest.api_version)
        if "." in group and not catalog.serves_group(group) and custom.get(key) is None:
            missing.add(key)
    return missing
