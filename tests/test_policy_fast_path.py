"""Policies checked through jsonschema-rs give exactly what jsonschema alone gives.

bot/schemas/compiledpolicies.py lets jsonschema-rs say "valid" for a policy when the policy
uses only keywords whose meaning the two share, and has jsonschema's own code decide
the value assertions where they differ (regex dialects, NaN, 1 vs 1.0). Held here to
the reference validator on real-shaped objects, random data and edge cases.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import jsonschema_rs
import pytest
from helpers.brokenmanifests import corpus_manifests, policy_breaking
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.findings import Severity
from bot.core.manifests import Manifest, SourceFile
from bot.core.patterns import (
    linear_draft202012,
    reference_schema_problem,
    schema_problem,
)
from bot.core.policies import Policy, check_policies, parse_policy
from bot.schemas.compiledpolicies import FastPathPolicyValidator, with_fast_path
from bot.schemas.policysets import default_policy_dir, parse_policies, read_policy_dir

DEFAULT_FILES = read_policy_dir(default_policy_dir())
FAST, _ = parse_policies(DEFAULT_FILES)
REFERENCE = tuple(parse_policy(source) for source in DEFAULT_FILES)


def policy(schema: dict[str, Any]) -> Policy:
    return Policy("p", "test policy", Severity.ERROR, linear_draft202012()(schema))


def outcome(validator: Any, instance: Any) -> list[tuple[str, list[Any]]] | str:
    """Every error (message and path), or the exception the validator raised."""
    try:
        errors = validator.iter_errors(instance)
        return [(e.message, list(e.absolute_path)) for e in errors]
    except Exception as exc:  # the kind of failure is the outcome
        return type(exc).__name__


def test_every_default_policy_takes_the_fast_path() -> None:
    assert [type(p.validator) for p in FAST] == [FastPathPolicyValidator] * len(FAST)


def test_objects_that_break_policies_give_the_same_findings() -> None:
    rng = random.Random(31)
    manifests = corpus_manifests(600, seed=31)
    manifests += [
        Manifest(m.key, m.api_version, policy_breaking(dict(m.body), rng), m.source)
        for m in manifests
    ]
    fast, reference = check_policies(manifests, FAST), check_policies(manifests, REFERENCE)
    assert len(reference) > 50  # the breaks really break policies
    assert {f.rule for f in reference} == {p.id for p in REFERENCE}
    assert [f.describe() for f in fast] == [f.describe() for f in reference]
    assert fast == reference


# Every keyword the fast path covers, natively or by calling jsonschema back, and the
# places where the two implementations would part: under `not`, regexes that Python's
# `re` reads otherwise (`$` before a final newline, Unicode digits for \d), NaN as a
# number, 1 == 1.0 == True in some equality checks.
SCHEMAS: list[dict[str, Any]] = [
    {"not": {"pattern": "^a$"}},
    {"properties": {"x": {"pattern": "^[0-9]+$"}}, "propertyNames": {"pattern": r"^\w+$"}},
    {"patternProperties": {"^a": {"type": "string"}, "b$": False}, "additionalProperties": False},
    {"patternProperties": {r"^\d": {"minimum": 1}}, "additionalProperties": {"type": "null"}},
    {"items": {"pattern": r"^\p{Lu}\s\S$|^(a+)+$"}},
    {"not": {"type": "number"}},
    {"items": {"type": ["integer", "null"]}, "prefixItems": [{"type": "boolean"}]},
    {"not": {"const": 1}},
    {"enum": [1, "1", True, None, [1.0], {"a": 0}]},
    {"not": {"enum": [False, None, "x", ["x"], {"k": "v"}]}},
    {"const": "a"},
    {"properties": {"n": {"minimum": 2**70, "exclusiveMaximum": 1.5}}},
    {"properties": {"n": {"maximum": 3, "exclusiveMinimum": -1}}},
    {"not": {"multipleOf": 0.5}},
    {"additionalProperties": {"multipleOf": 3}},
    {"items": {"minLength": 2, "maxLength": 4}, "uniqueItems": True},
    {"minItems": 1, "maxItems": 3, "minProperties": 1, "maxProperties": 2},
    {"dependentRequired": {"a": ["b"]}, "required": ["c"]},
    {"additionalProperties": False, "properties": {"a": True, "b": False}},
    {"oneOf": [{"type": "string"}, {"minLength": 1}], "anyOf": [{"required": ["a"]}, True]},
    {"if": {"required": ["a"]}, "then": {"required": ["b"]}, "else": {"not": {}}},
    {
        "$defs": {"d": {"type": "array", "items": {"$ref": "#"}}},
        "additionalProperties": {"$ref": "#/$defs/d"},
    },
    {"title": "t", "description": "d", "$comment": "c", "default": 1, "format": "email"},
]

# Values where the two implementations part, drawn often, among any other values.
EDGES: list[Any] = [0, 1, 1.0, 0.5, 3, 2**70, 2**70 + 1, 10**400, -1, 1.5, True, False, None]
EDGES += [math.nan, math.inf, "a", "a\n", "1", "12\n", "\u0663", "ab", "abcde", "x", "latest"]
EDGES += ["É a", "a" * 30 + "!", {"a1": "x", "b": 1, "ab": None, "1": 0}]
keys = st.one_of(st.sampled_from(["a", "b", "c", "n", "x", "k"]), st.text(max_size=3))
scalars = st.one_of(
    st.sampled_from(EDGES),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
instances = st.one_of(
    st.sampled_from(EDGES),
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    ),
)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s)[:40])
def test_each_covered_schema_takes_the_fast_path(schema: dict[str, Any]) -> None:
    assert isinstance(with_fast_path(policy(schema)).validator, FastPathPolicyValidator)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s)[:40])
@settings(max_examples=200, deadline=None)
@given(instance=instances)
def test_random_data_gets_the_reference_verdict(schema: dict[str, Any], instance: Any) -> None:
    reference = linear_draft202012()(schema)
    fast = with_fast_path(policy(schema)).validator
    assert outcome(fast, instance) == outcome(reference, instance)


@settings(max_examples=300, deadline=None)
@given(instances)
def test_random_data_gets_the_default_policies_verdicts(instance: Any) -> None:
    for fast, reference in zip(FAST, REFERENCE, strict=True):
        assert outcome(fast.validator, instance) == outcome(reference.validator, instance)


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"not": {"type": "number"}}, math.nan),  # NaN is no number to jsonschema-rs
    ],
)
def test_where_native_keywords_would_have_passed_wrongly(
    schema: dict[str, Any], instance: Any
) -> None:
    """Why these keywords are jsonschema's to decide: natively the verdict differs."""
    reference = linear_draft202012()(schema)
    assert jsonschema_rs.Draft202012Validator(schema).is_valid(instance)
    assert outcome(reference, instance) != []
    assert outcome(with_fast_path(policy(schema)).validator, instance) == outcome(
        reference, instance
    )


def test_a_delegated_keyword_that_raises_lets_the_reference_raise() -> None:
    """jsonschema-rs counts an exception as a failed keyword; under `not`, a pass."""
    fast = with_fast_path(policy({"not": {"multipleOf": 0.5}})).validator
    assert isinstance(fast, FastPathPolicyValidator)
    assert fast.compiled.is_valid(10**400)
    with pytest.raises(OverflowError):
        list(fast.iter_errors(10**400))


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"a": {"$ref": "https://example.com/schema.json"}}},
        {"definitions": {"d": {}}, "$ref": "#/definitions/d"},
        {"$defs": {"d": {}}, "$ref": "#/$defs/missing"},
        {"$id": "https://example.com/p", "type": "object"},
        {"$schema": "https://json-schema.org/draft/2020-12/schema"},
        {"contains": {"type": "string"}},
        {"unevaluatedProperties": False},
        {"x-custom": {"$ref": "https://example.com"}},
        {"items": {"dependencies": {"a": ["b"]}}},
    ],
    ids=lambda s: json.dumps(s)[:40],
)
def test_other_keywords_keep_the_reference_validator(schema: dict[str, Any]) -> None:
    reference = policy(schema)
    assert with_fast_path(reference) is reference


def test_policy_files_get_the_fast_path_once_parsed() -> None:
    source = SourceFile(
        "p.yaml", b"id: p\ndescription: d\nseverity: error\nschema: {not: {pattern: '^a$'}}\n"
    )
    [parsed], findings = parse_policies([source])
    assert not findings
    assert isinstance(parsed.validator, FastPathPolicyValidator)
    reference = parse_policy(source).validator
    assert outcome(parsed.validator, "a") == outcome(reference, "a") != []


# Schema-shaped data: known keywords (and a stray one) over values of every JSON type,
# patterns the engine matches and patterns it refuses, nested subschemas.
KEYWORDS = "type properties items pattern patternProperties required enum minimum maxLength"
schema_keywords = st.sampled_from(
    (*KEYWORDS.split(), "allOf", "anyOf", "not", "$ref", "$defs", "format", "x-note")
)
patterns = st.sampled_from(["^a+$", "(a)\\1", "[", "(?=x)", "^[a-z0-9-]{1,63}$", ""])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4) | patterns,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
schemas = st.recursive(
    st.dictionaries(schema_keywords, json_values, max_size=3),
    lambda inner: st.dictionaries(
        schema_keywords, inner | st.lists(inner, max_size=2) | json_values, max_size=3
    ),
    max_leaves=8,
)


@settings(max_examples=500, deadline=None)
@given(schemas)
def test_the_compiled_meta_schema_check_agrees_with_the_reference(schema: Any) -> None:
    assert schema_problem(schema) == reference_schema_problem(schema)


@pytest.mark.parametrize("source", DEFAULT_FILES, ids=lambda f: f.path)
def test_default_policy_schemas_pass_both_meta_schema_checks(source: SourceFile) -> None:
    schema = parse_policy(source).validator.schema
    assert schema_problem(schema) is None and reference_schema_problem(schema) is None
