"""JSON-Schema policies: which objects they match, and what each violation says."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.core.documents import DocumentError, parse_documents
from bot.core.findings import Finding, Severity, Stage, field_path
from bot.core.manifests import Manifest, SourceFile
from bot.core.ownschemas import OwnSchema
from bot.core.patterns import DeferredReference, regex_refusal, schema_problem
from bot.core.redaction import holds_secrets
from bot.core.schemas import ObjectValidator

if TYPE_CHECKING:  # the reference is imported only to word a refusal (start-up time)
    import jsonschema

POLICY_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "description", "severity", "schema"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][-a-z0-9]*$"},
        "description": {"type": "string", "minLength": 1},
        "severity": {"enum": ["error", "warning"]},
        "message": {"type": "string", "description": "what to do; shown with each violation"},
        "match": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "kinds": {"type": "array", "items": {"type": "string"}},
                "namespaces": {"type": "array", "items": {"type": "string"}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "schema": {"type": "object"},
    },
}

_POLICY_FILE_VALIDATOR = OwnSchema(POLICY_FILE_SCHEMA)


@dataclass(frozen=True)
class Match:
    kinds: frozenset[str] = frozenset()  # empty: every kind
    namespaces: tuple[str, ...] = ()  # shell-style patterns; empty: every namespace
    labels: Mapping[str, str] = field(default_factory=dict)

    def selects(self, manifest: Manifest) -> bool:
        if self.kinds and manifest.key.kind not in self.kinds:
            return False
        if self.namespaces and not any(
            fnmatch.fnmatchcase(manifest.key.namespace, p) for p in self.namespaces
        ):
            return False
        labels = (manifest.body.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels.items())


@dataclass(frozen=True)
class Policy:
    id: str
    description: str
    severity: Severity
    validator: ObjectValidator = field(repr=False, compare=False)
    match: Match = Match()
    message: str = ""
    origin: str = ""  # the file it was read from


class PolicyFileError(ValueError):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.describe())
        self.finding = finding

    @classmethod
    def duplicate(cls, policy: Policy, first: Policy) -> PolicyFileError:
        return cls(
            _file_finding(
                policy.origin,
                f"policy id {policy.id!r} is already used by {first.origin}; "
                "give each policy its own id",
            )
        )


def parse_policy(source: SourceFile) -> Policy:
    """A policy from one YAML or JSON file; PolicyFileError says what is wrong with it."""
    try:
        docs = list(parse_documents(source.data))
    except DocumentError as exc:
        raise PolicyFileError(_file_finding(source.path, exc.message, exc.line)) from None
    if len(docs) != 1:
        raise PolicyFileError(_file_finding(source.path, "a policy file holds exactly one policy"))
    data = docs[0].data
    problem = next(_POLICY_FILE_VALIDATOR.iter_errors(data), None)
    if problem is not None:
        where = field_path(problem.absolute_path) or "(top level)"
        raise PolicyFileError(_file_finding(source.path, f"{where}: {problem.message}"))
    _check_schema(source.path, data["schema"])
    match = data.get("match", {})
    return Policy(
        id=data["id"],
        description=data["description"],
        severity=Severity(data["severity"]),
        validator=DeferredReference(data["schema"]),
        match=Match(
            frozenset(match.get("kinds", ())),
            tuple(match.get("namespaces", ())),
            dict(match.get("labels", {})),
        ),
        message=data.get("message", ""),
        origin=source.path,
    )


def _check_schema(path: str, schema: Any) -> None:
    """Valid JSON Schema, with regexes the linear-time engine can match (core/patterns)."""
    refusal = regex_refusal(schema)
    if refusal is not None:
        raise PolicyFileError(_file_finding(path, refusal))
    problem = schema_problem(schema)
    if problem is not None:
        raise PolicyFileError(_file_finding(path, f"schema is not valid JSON Schema: {problem}"))


def check_policies(
    manifests: Iterable[Manifest], policies: Iterable[Policy]
) -> tuple[Finding, ...]:
    """Every violation of every policy by every object it matches."""
    selected = list(policies)
    findings: list[Finding] = []
    for manifest in manifests:
        for policy in selected:
            if policy.match.selects(manifest):
                findings.extend(_violations(manifest, policy))
    return tuple(findings)


def _violations(manifest: Manifest, policy: Policy) -> Iterable[Finding]:
    secret = holds_secrets(manifest.body)
    for error in policy.validator.iter_errors(manifest.body):
        yield Finding(
            Stage.POLICY,
            policy.severity,
            policy.id,
            _message(policy, error, secret),
            manifest.source.path,
            manifest.source.line,
            str(manifest.key),
            tuple(error.absolute_path),
        )


def _message(policy: Policy, error: jsonschema.ValidationError, secret: bool) -> str:
    text = policy.message or policy.description
    if secret or isinstance(error.instance, (dict, list)):
        return text  # never quote a Secret, and whole objects say nothing useful
    return f"{text} (found {error.instance!r})"


def _file_finding(path: str, message: str, line: int | None = None) -> Finding:
    return Finding(
        Stage.POLICY,
        Severity.ERROR,
        "policy.invalid-file",
        f"policy file cannot be used: {message}",
        path,
        line,
    )
