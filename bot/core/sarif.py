"""Findings as a SARIF 2.1.0 log, the format GitHub code scanning uploads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.core.annotations import Annotation

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# Characters a relative URI reference keeps as they are (RFC 3986 unreserved, and "/").
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/")


def sarif_log(annotations: Sequence[Annotation], version: str) -> str:
    """One run of the tool `gitops-bot`, with a rule per rule id and a result per finding."""
    rules = sorted({a.finding.rule for a in annotations})
    driver = {
        "name": "gitops-bot",
        "version": version,
        "rules": [{"id": rule} for rule in rules],
    }
    results = [_result(a, rules.index(a.finding.rule)) for a in annotations]
    run = {"tool": {"driver": driver}, "results": results, "columnKind": "unicodeCodePoints"}
    log = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2) + "\n"


def _result(annotation: Annotation, rule_index: int) -> dict[str, Any]:
    finding = annotation.finding
    return {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": "error" if annotation.is_error else "warning",
        "message": {"text": f"{annotation.title}: {finding.message}"},
        "locations": [_location(annotation)],
        "partialFingerprints": {"gitopsBotFinding/v1": annotation.fingerprint},
        "properties": {"stage": str(finding.stage)},
    }


def _location(annotation: Annotation) -> dict[str, Any]:
    location: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": _artifact(annotation.path),
            "region": {"startLine": annotation.line},
        }
    }
    if annotation.finding.subject:
        object_ = {"fullyQualifiedName": annotation.finding.subject, "kind": "object"}
        location["logicalLocations"] = [object_]
    return location


def _artifact(path: str) -> dict[str, str]:
    """Relative paths resolve against %SRCROOT% (the checkout); absolute ones are file URIs."""
    if path.startswith("/"):
        return {"uri": "file://" + uri_path(path)}
    return {"uri": uri_path(path.removeprefix("./")), "uriBaseId": "%SRCROOT%"}


def uri_path(path: str) -> str:
    """Percent-encode a file path for a URI (UTF-8 bytes), keeping its slashes."""
    return "".join(ch if ch in _PLAIN else _percent(ch) for ch in path)


def _percent(ch: str) -> str:
    return "".join(f"%{byte:02X}" for byte in ch.encode())
