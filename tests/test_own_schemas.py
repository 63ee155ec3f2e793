"""The bot's own file schemas give exactly the reference validator's errors.

bot/core/ownschemas.py lets jsonschema-rs pass a policy file or a `.gitops-bot.yaml`
without importing jsonschema; anything it does not pass is checked by the reference.
Held here to the reference alone on valid files, broken ones, and texts the two regex
dialects read differently.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.ownschemas import OwnSchema
from bot.core.policies import POLICY_FILE_SCHEMA
from bot.core.repoconfig import CONFIG_SCHEMA

SCHEMAS = {"policy file": POLICY_FILE_SCHEMA, ".gitops-bot.yaml": CONFIG_SCHEMA}


def errors(validator: Any, data: Any) -> list[tuple[str, list[Any]]]:
    return [(e.message, list(e.absolute_path)) for e in validator.iter_errors(data)]


def same_as_reference(schema: dict[str, Any], data: Any) -> None:
    reference = jsonschema.Draft202012Validator(schema)
    assert errors(OwnSchema(schema), data) == errors(reference, data)


POLICY = {
    "id": "pinned-images",
    "description": "images are pinned",
    "severity": "error",
    "match": {"kinds": ["Deployment"], "labels": {"team": "shop"}},
    "schema": {"type": "object"},
}
CONFIG = {
    "version": 1,
    "kubernetes_version": "1.33",
    "environments": {"prod": {"path": "deploy/prod", "cluster": "prod"}},
}
# Texts Python's `re` and the ECMA dialect read differently: `$` before a final newline,
# control characters that only Python counts as `\s`, digits beyond ASCII.
TRICKY_TEXTS = ["shop\n", "a\x1cb", "a\x1fb", "a\x85b", "a\ufeffb", "1.\u0663\u0663", "", "A"]


@pytest.mark.parametrize("name", SCHEMAS)
def test_a_valid_file_passes_both(name: str) -> None:
    data = POLICY if name == "policy file" else CONFIG
    assert errors(OwnSchema(SCHEMAS[name]), data) == []
    same_as_reference(SCHEMAS[name], data)


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_texts_the_regex_dialects_read_differently(text: str) -> None:
    same_as_reference(POLICY_FILE_SCHEMA, {**POLICY, "id": text})
    same_as_reference(CONFIG_SCHEMA, {**CONFIG, "kubernetes_version": text})
    same_as_reference(
        CONFIG_SCHEMA, {**CONFIG, "environments": {text: CONFIG["environments"]["prod"]}}
    )
    environment = {"path": "deploy", "cluster": text, "namespace": text}
    same_as_reference(CONFIG_SCHEMA, {**CONFIG, "environments": {"prod": environment}})
    helm = {"path": "deploy", "cluster": "prod", "image_values": [f"image.{text}"]}
    same_as_reference(CONFIG_SCHEMA, {**CONFIG, "environments": {"prod": helm}})


@pytest.mark.parametrize(
    "data",
    [
        {**CONFIG, "version": 1.0},
        {**CONFIG, "version": True},
        {**CONFIG, "version": 2},
        {**CONFIG, "environments": {}},
        {**CONFIG, "unknown": 1},
        {1: "not a string key"},
        {**POLICY, "severity": "fatal"},
        {**POLICY, "description": ""},
        {**POLICY, "match": {"kinds": "Deployment"}},
        {**POLICY, "schema": float("nan")},
        [POLICY],
        None,
    ],
)
def test_broken_files_get_the_reference_errors(data: Any) -> None:
    for schema in SCHEMAS.values():
        same_as_reference(schema, data)


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
policy_keys = st.sampled_from([*POLICY, "stray"])
config_keys = st.sampled_from([*CONFIG, "policies", "crds", "unknown_kinds", "stray"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(policy_keys, values, max_size=6), st.dictionaries(config_keys, values))
def test_random_files_get_the_reference_errors(policy: Any, config: Any) -> None:
    same_as_reference(POLICY_FILE_SCHEMA, {**POLICY, **policy})
    same_as_reference(CONFIG_SCHEMA, {**CONFIG, **config})
