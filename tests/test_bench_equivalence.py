"""The fast paths the benchmarks led to give exactly what the reference code gives.

Two shortcuts keep `validate` and `plan` fast: a compiled JSON-Schema validator that
answers "valid" for the Kubernetes schemas, and a quick YAML builder for plain
documents. Each is held here to its reference on the same inputs: a generated corpus
of real-shaped manifests, the same corpus broken in many ways, and tricky YAML.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.manifests import ManifestFile, generate
from bot.core.documents import DocumentError, parse_documents
from bot.core.findings import Finding
from bot.core.manifests import Manifest, SourceFile, load_manifests
from bot.core.schemas import validate_schemas
from bot.schemacatalog import FastPathValidator, KubernetesSchemaCatalog

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = KubernetesSchemaCatalog("1.33", fast=True)
REFERENCE = KubernetesSchemaCatalog("1.33", fast=False)


# --- strict comparison ------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1, 1.0 and True differ); NaN is NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


# --- the schema fast path ---------------------------------------------------------


def broken(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy of `body` with one mistake of the kinds people make, or JSON cannot hold."""
    copy: dict[str, Any] = yaml.safe_load(yaml.safe_dump(body))
    spec = copy.get("spec") if isinstance(copy.get("spec"), dict) else copy
    pods = _pod_spec(copy)
    mistakes = [
        lambda: spec.__setitem__("replicass", 3),  # a typo: unknown field
        lambda: copy["metadata"].__setitem__("labels", ["not", "a", "map"]),
        lambda: copy["metadata"].__setitem__("name", 42),
        lambda: copy.__setitem__("status", {"phase": {"nested": True}}),
        lambda: copy["metadata"].__setitem__("annotations", {1: "integer key"}),
        lambda: copy["metadata"].__setitem__("annotations", {"nan": math.nan}),
        lambda: copy["metadata"].__setitem__("generation", 2**70),
        lambda: copy["metadata"].__setitem__("ownerReferences", [{"kind": "X"}]),
    ]
    if pods is not None:
        mistakes += [
            lambda: pods["containers"][0].pop("name"),
            lambda: pods["containers"][0].__setitem__("ports", [{"containerPort": "http"}]),
            lambda: pods["containers"][0]["resources"]["limits"].__setitem__("cpu", None),
            lambda: pods.__setitem__("restartPolicy", True),
            lambda: pods["containers"][0].__setitem__("imagePullPolicy", 1.5),
            lambda: pods["containers"][0]["securityContext"].__setitem__("runAsUser", 1.0),
        ]
    rng.choice(mistakes)()
    return copy


def _pod_spec(body: dict[str, Any]) -> dict[str, Any] | None:
    spec = body.get("spec") or {}
    template = spec.get("template") or (spec.get("jobTemplate") or {}).get("spec", {}).get(
        "template"
    )
    return template["spec"] if template else None


def corpus_manifests(count: int, seed: int) -> list[Manifest]:
    files = [SourceFile(f.path, f.text().encode()) for f in generate(count, seed)]
    loaded = load_manifests(files)
    assert not loaded.findings
    return list(loaded.manifests)


def with_bodies(manifests: list[Manifest], rng: random.Random) -> list[Manifest]:
    return [Manifest(m.key, m.api_version, broken(dict(m.body), rng), m.source) for m in manifests]


def findings_of(manifests: list[Manifest], catalog: KubernetesSchemaCatalog) -> list[Finding]:
    return list(validate_schemas(manifests, catalog))


def test_the_compiled_validator_is_in_use() -> None:
    assert isinstance(FAST.validator_for("apps/v1", "Deployment"), FastPathValidator)


def test_valid_corpus_gives_no_findings_either_way() -> None:
    manifests = corpus_manifests(600, seed=11)
    assert findings_of(manifests, FAST) == findings_of(manifests, REFERENCE) == []


def test_broken_objects_give_the_same_findings_and_messages() -> None:
    manifests = with_bodies(corpus_manifests(600, seed=12), random.Random(12))
    fast, reference = findings_of(manifests, FAST), findings_of(manifests, REFERENCE)
    assert len(reference) >= len(manifests) // 2  # the mistakes are really mistakes
    assert [f.describe() for f in fast] == [f.describe() for f in reference]
    assert fast == reference


def test_verdicts_agree_object_by_object() -> None:
    """The one way the fast path could differ: calling an object valid that is not."""
    rng = random.Random(13)
    manifests = corpus_manifests(400, seed=13)
    compared = 0
    for manifest in manifests + with_bodies(manifests, rng):
        fast = FAST.validator_for(manifest.api_version, manifest.key.kind)
        reference = REFERENCE.validator_for(manifest.api_version, manifest.key.kind)
        assert isinstance(fast, FastPathValidator) and reference is not None
        try:
            compiled_says_valid = fast.compiled.is_valid(manifest.body)
        except ValueError:  # not JSON (an integer key): the reference alone decides
            continue
        reference_says_valid = not list(reference.iter_errors(manifest.body))
        assert compiled_says_valid == reference_says_valid, manifest.key
        compared += 1
    assert compared > len(manifests) * 1.8  # nearly every object got both verdicts


def test_example_repository_checks_the_same() -> None:
    files = [
        SourceFile(str(p), p.read_bytes())
        for p in sorted(EXAMPLES.rglob("*"))
        if p.suffix in (".yaml", ".yml", ".json")
    ]
    manifests = list(load_manifests(files).manifests)
    assert manifests
    assert findings_of(manifests, FAST) == findings_of(manifests, REFERENCE)


# --- the YAML fast path -----------------------------------------------------------


class ReferenceLoader(yaml.CSafeLoader):
    """PyYAML's own safe loader, keeping timestamps as strings like the bot's."""


ReferenceLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    yaml.CSafeLoader.construct_yaml_str,  # type: ignore[type-var]
)


def reference_documents(text: str) -> list[Any]:
    return [d for d in yaml.load_all(text, Loader=ReferenceLoader) if d is not None]


def our_documents(text: str) -> list[Any]:
    return [d.data for d in parse_documents(text)]


TRICKY = [
    "a: 0x1F\nb: 0o17\nc: 1_000\nd: 1:30\ne: -0b101\nf: +12\n",
    "a: .inf\nb: -.Inf\nc: .nan\nd: 1e3\ne: 6.8523015e+5\nf: 1_0.5\n",
    "a: yes\nb: No\nc: on\nd: OFF\ne: ~\nf: null\ng: ''\nh: 'yes'\n",
    "created: 2001-12-14t21:59:43.10-05:00\nday: 2002-12-14\n",
    "base: &base {a: 1, b: [x, y]}\nderived:\n  <<: *base\n  b: z\n",
    "list: &l [1, 2]\nagain: *l\n",
    "? [complex, key]\n: value\n",
    "1: one\n0x1: also one\ntrue: t\n~: n\n",
    "s: !!str 12\ni: !!int '7'\nf: !!float '1'\n",
    "m: !!str {a: b}\n",
    "x: <<\n",
    '{"json": [1, 2.5, true, null, "s"], "nested": {"k": {}}}',
    "---\n---\na: 1\n--- ~\n---\n- b\n- c: [d, {e: f}]\n",
    "multi: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
    "amp: 'a & b'\nstar: '*/5 * * * *'\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_yaml_parses_as_pyyaml_parses_it(text: str) -> None:
    try:
        expected = reference_documents(text)
    except yaml.YAMLError:
        with pytest.raises(DocumentError):
            our_documents(text)
        return
    assert same(our_documents(text), expected)


def test_generated_corpus_parses_as_pyyaml_parses_it() -> None:
    for manifest_file in generate(500, seed=14) + _with_anchors(generate(50, seed=15)):
        text = manifest_file.text()
        assert same(our_documents(text), reference_documents(text)), manifest_file.path


def _with_anchors(files: list[ManifestFile]) -> list[ManifestFile]:
    """The same objects dumped with anchors wherever a value is shared."""
    for manifest_file in files:
        for obj in manifest_file.objects:
            obj.setdefault("metadata", {})["annotations"] = obj["metadata"].get("labels")
    return [_AnchoredFile(f.path, f.objects) for f in files]


class _AnchoredFile(ManifestFile):
    def text(self) -> str:
        return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in self.objects)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["yes", "off", "0x1f", "1:20", "2002-12-14", "<<", "=", "~", "1_000"]),
)
data = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(data, st.booleans())
def test_any_data_parses_as_pyyaml_parses_it(value: Any, flow: bool) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
    assert same(our_documents(text), reference_documents(text))
