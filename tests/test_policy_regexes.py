"""Policy and CRD regexes: the JSON Schema dialect, matched in linear time, or refused.

`^(a+)+$` against forty `a`s and a `!` takes Python's `re` minutes (it doubles with each
`a`); these tests finish only because the engine no longer backtracks.
"""

from __future__ import annotations

import re
import textwrap

import pytest
from manifests import configmap, widget_crd

from bot.core.findings import Stage
from bot.core.manifests import SourceFile, load_manifests
from bot.core.patterns import PatternError, compile_pattern, search
from bot.core.policies import PolicyFileError, check_policies, parse_policy
from bot.core.schemas import crd_validators, validate_schemas
from bot.schemacatalog import catalog_for

HOSTILE = "^(a+)+$"
VICTIM = "a" * 40 + "!"


def policy_file(schema: str, path: str = "policies/labels.yaml") -> SourceFile:
    text = "id: labels\ndescription: labels are tidy\nseverity: error\nschema:\n"
    return SourceFile(path, (text + textwrap.indent(textwrap.dedent(schema), "  ")).encode())


def test_a_pattern_exponential_in_python_is_checked_at_once() -> None:
    policy = parse_policy(
        policy_file(f"""\
            properties:
              metadata:
                properties:
                  labels: {{additionalProperties: {{pattern: '{HOSTILE}'}}}}
        """)
    )
    labelled = configmap().replace(
        "name: settings", f"name: settings\n  labels: {{team: {VICTIM}}}"
    )
    manifests = load_manifests([SourceFile("deploy/c.yaml", labelled.encode())], "shop").manifests
    [finding] = check_policies(manifests, [policy])
    assert finding.stage is Stage.POLICY and finding.rule == "labels"
    assert finding.pointer == ("metadata", "labels", "team")


def test_patterns_use_the_json_schema_dialect_not_pythons() -> None:
    assert re.search("^a$", "a\n") and not search("^a$", "a\n")  # $ is the very end
    assert re.search(r"^\d$", "\u0663") and not search(r"^\d$", "\u0663")  # \d is ASCII
    assert search(r"^\p{Lu}", "Élan")  # Unicode classes, which Python's re lacks


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"^(a)\1$", "backtracking"),
        (r"^(?!latest$)", "backtracking"),
        (r"(?<=v)1", "backtracking"),
        (r"[a-", "not a valid regular expression"),
    ],
)
def test_what_the_engine_cannot_match_is_refused(pattern: str, why: str) -> None:
    with pytest.raises(PatternError, match=re.escape(why)):
        compile_pattern(pattern)


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        (
            "properties: {metadata: {properties: {name: {pattern: '^(a)\\1$'}}}}",
            "schema.properties.metadata.properties.name.pattern",
        ),
        ("anyOf: [{pattern: x}, {not: {pattern: '(?=a)'}}]", "schema.anyOf[1].not.pattern"),
        ("patternProperties: {'(?<!x)y': {}}", "schema.patternProperties"),
        ("$defs: {d: {items: {pattern: '(a)\\1'}}}", "schema.$defs.d.items.pattern"),
    ],
)
def test_a_policy_with_such_a_pattern_is_refused_at_load(schema: str, where: str) -> None:
    with pytest.raises(PolicyFileError) as refused:
        parse_policy(policy_file(schema))
    finding = refused.value.finding
    assert finding.path == "policies/labels.yaml"
    assert finding.rule == "policy.invalid-file"
    assert f"{where}: " in finding.message
    assert "backreferences" in finding.message and "linear time" in finding.message


def test_python_re_never_decides_which_keys_pattern_properties_covered() -> None:
    schema = "patternProperties: {'^a': true}\nunevaluatedProperties: false\n"
    with pytest.raises(PolicyFileError, match="use additionalProperties"):
        parse_policy(policy_file(schema))


def test_a_pattern_only_pythons_re_refuses_is_accepted() -> None:
    policy = parse_policy(policy_file("properties: {kind: {pattern: '^\\p{Lu}'}}"))
    assert list(policy.validator.iter_errors({"kind": "ConfigMap"})) == []
    assert list(policy.validator.iter_errors({"kind": "configMap"})) != []


def crd_with_pattern(pattern: str) -> str:
    fields = f"{{name: {{type: string, pattern: '{pattern}'}}}}"
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
    return f"{widget_crd(fields=fields)}---\n{widget}spec: {{name: '{VICTIM}'}}\n"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [(HOSTILE, "does not match"), (r"^(a)\1", "needs a backtracking engine")],
)
def test_a_crd_pattern_is_matched_in_linear_time_too(pattern: str, message: str) -> None:
    loaded = load_manifests([SourceFile("w.yaml", crd_with_pattern(pattern).encode())], "shop")
    findings = validate_schemas(
        loaded.manifests, catalog_for("1.33"), crd_validators(loaded.manifests)
    )
    [finding] = [f for f in findings if f.subject and "Widget" in f.subject]
    assert message in finding.message
