"""The published formats the CI outputs are checked against: SARIF 2.1.0 and Code Quality."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = (
    ROOT / "build/npm-schemas/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json"
)

# GitLab publishes no JSON schema for Code Quality reports; this one states what its
# documentation (ci/testing/code_quality, "Code Quality report format") requires of each
# issue: description, check_name, fingerprint, severity (info, minor, major, critical,
# blocker), location.path, and location.lines.begin (or location.positions.begin.line).
CODE_QUALITY_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "minLength": 1},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "lines": {
                        "type": "object",
                        "required": ["begin"],
                        "properties": {"begin": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
    },
}


def install_schemas() -> None:
    """tests/schemas/install.sh, once, when `make test` has not run it yet."""
    if SARIF_SCHEMA.exists():
        return
    if shutil.which("npm") is None:
        unavailable("npm is not installed: it fetches the SARIF 2.1.0 schema the tests check")
    done = subprocess.run(
        ["bash", str(ROOT / "tests/schemas/install.sh")], capture_output=True, text=True
    )
    if done.returncode != 0 or not SARIF_SCHEMA.exists():
        pytest.fail(f"tests/schemas/install.sh failed:\n{done.stderr[-3000:]}", pytrace=False)


@pytest.fixture(scope="session")
def sarif_validator() -> jsonschema.protocols.Validator:
    install_schemas()
    schema = json.loads(SARIF_SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def assert_valid_sarif(validator: jsonschema.protocols.Validator, text: str) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(text)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]
    assert errors == [], errors
    return log


def assert_valid_code_quality(text: str) -> list[dict[str, Any]]:
    report: list[dict[str, Any]] = json.loads(text)
    jsonschema.validate(report, CODE_QUALITY_SCHEMA)
    fingerprints = [issue["fingerprint"] for issue in report]
    assert len(set(fingerprints)) == len(fingerprints), "GitLab shows one issue per fingerprint"
    return report
