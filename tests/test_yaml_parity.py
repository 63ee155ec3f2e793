"""YAML means what it means to Kubernetes: the bot's reading held to sigs.k8s.io/yaml's.

Each row of the table says what Kubernetes makes of a document: the JSON value the API
server reads (YAMLToJSON), or a refusal (YAMLToJSONStrict fails: the API server under
strict field validation, kubectl's default, refuses the object). One test holds the bot
to the table; another holds the real library (testenv/yamljson, built from the module
the API server is built with) to the same table, so the table cannot drift from
Kubernetes. A few documents Kubernetes reads by chance or against its own advice are
refused by the bot on purpose; they have their own table.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.documents import DocumentError, parse_documents


@dataclass(frozen=True)
class Refused:
    code: str  # the bot's finding; Kubernetes' own message differs


# (id, one YAML document, what Kubernetes reads)
TABLE: list[tuple[str, str, Any]] = [
    # `=` is YAML 1.1's "value" key; PyYAML's resolver tags it, go-yaml reads text
    ("equals-value", "v: =\n", {"v": "="}),
    ("equals-key", "=: 1\n", {"=": 1}),
    ("equals-twice", "v: ==\n", {"v": "=="}),
    # YAML 1.1 booleans, as values and as keys (a key becomes "true"/"false")
    ("on-value", "v: on\n", {"v": True}),
    ("yes-value", "v: yes\n", {"v": True}),
    ("y-value", "v: y\n", {"v": True}),
    ("n-value", "v: n\n", {"v": False}),
    ("off-value", "v: Off\n", {"v": False}),
    ("NO-value", "v: NO\n", {"v": False}),
    ("mixed-case-is-text", "v: tRue\n", {"v": "tRue"}),
    ("quoted-yes", "v: 'yes'\n", {"v": "yes"}),
    ("block-on-is-text", "v: |\n  on\n", {"v": "on\n"}),
    ("on-key", "on: x\n", {"true": "x"}),
    ("y-key", "y: x\n", {"true": "x"}),
    ("no-key", "no: x\n", {"false": "x"}),
    ("on-label", "labels: {on: x}\n", {"labels": {"true": "x"}}),
    # keys that repeat only once resolved, and plain repeats
    ("on-and-yes", "{on: a, yes: b}\n", Refused("yaml.duplicate-key")),
    ("on-and-true", "{on: a, true: b}\n", Refused("yaml.duplicate-key")),
    ("one-and-01", "{1: a, 01: b}\n", Refused("yaml.duplicate-key")),
    ("repeated-key", "a: 1\na: 2\n", Refused("yaml.duplicate-key")),
    ("repeated-quoted", "{a: 1, 'a': 2}\n", Refused("yaml.duplicate-key")),
    ("repeated-after-null", "{a: ~, a: 1}\n", Refused("yaml.duplicate-key")),
    ("float-zeros", "0.0: a\n-0.0: b\n", Refused("yaml.duplicate-key")),  # one Go key
    ("int-and-float-zero", "0: a\n-0.0: b\n", {"0": "a", "-0": "b"}),
    # integers: Go's syntax after every "_" is dropped
    ("octal-0755", "v: 0755\n", {"v": 493}),
    ("octal-0o755", "v: 0o755\n", {"v": 493}),
    ("octal-0O755", "v: 0O755\n", {"v": 493}),
    ("not-octal-08", "v: 08\n", {"v": 8}),
    ("not-octal-09.5", "v: 09.5\n", {"v": 9.5}),
    ("hex", "v: 0x1F\n", {"v": 31}),
    ("signed-hex", "v: -0x10\n", {"v": -16}),
    ("binary", "v: 0b101\n", {"v": 5}),
    ("negative-binary", "v: -0b101\n", {"v": -5}),
    ("binary-signed-digits", "v: 0b-101\n", {"v": -5}),
    ("bare-0x", "v: 0x\n", {"v": "0x"}),
    ("underscores", "v: 1_000\n", {"v": 1000}),
    ("double-underscore", "v: 1__0\n", {"v": 10}),
    ("trailing-underscore", "v: 1_\n", {"v": 1}),
    ("leading-underscore", "v: _1\n", {"v": "_1"}),
    ("plus-sign", "v: +1\n", {"v": 1}),
    ("minus-zero", "v: -0\n", {"v": 0}),
    ("sexagesimal-is-text", "v: 1:30\n", {"v": "1:30"}),
    ("int64-max", "v: 9223372036854775807\n", {"v": 9223372036854775807}),
    ("uint64", "v: 9223372036854775808\n", {"v": 9223372036854775808}),
    ("uint64-max", "v: 18446744073709551615\n", {"v": 18446744073709551615}),
    ("past-uint64", "v: 18446744073709551616\n", {"v": 18446744073709552000}),
    ("signed-past-int64", "v: +9223372036854775808\n", {"v": 9223372036854776000}),
    ("below-int64", "v: -9223372036854775809\n", {"v": -9223372036854776000}),
    # floats: written back by encoding/json, so a whole float is an integer
    ("exponent", "v: 1e3\n", {"v": 1000}),
    ("exponent-upper", "v: 1E+3\n", {"v": 1000}),
    ("point-exponent", "v: 1.e3\n", {"v": 1000}),
    ("whole-float", "v: 3.0\n", {"v": 3}),
    ("minus-zero-float", "v: -0.0\n", {"v": 0}),
    ("half", "v: .5\n", {"v": 0.5}),
    ("signed-half", "v: -.5\n", {"v": -0.5}),
    ("trailing-point", "v: 5.\n", {"v": 5}),
    ("float-underscore", "v: 1_000.5\n", {"v": 1000.5}),
    ("dot-underscore", "v: .5_0\n", {"v": 0.5}),
    ("dot-leading-underscore", "v: ._5\n", {"v": "._5"}),
    ("tiny", "v: 1.5e-7\n", {"v": 1.5e-7}),
    ("below-1e21", "v: 1e20\n", {"v": 100000000000000000000}),
    ("from-1e21", "v: 1e21\n", {"v": 1e21}),
    ("overflow-is-text", "v: 1e400\n", {"v": "1e400"}),
    ("underflow-is-zero", "v: 1e-400\n", {"v": 0}),
    ("huge-integer", "v: 123456789012345678901234567890\n", {"v": 1.2345678901234568e29}),
    ("nan-word-is-text", "v: nan\n", {"v": "nan"}),
    ("inf-word-is-text", "v: inf\n", {"v": "inf"}),
    ("nan", "v: .nan\n", Refused("yaml.not-json")),
    ("infinity", "v: .inf\n", Refused("yaml.not-json")),
    ("negative-infinity", "v: -.Inf\n", Refused("yaml.not-json")),
    # timestamps stay the text as written
    ("date", "v: 2001-12-14\n", {"v": "2001-12-14"}),
    ("datetime", "v: 2001-12-14t21:59:43.10-05:00\n", {"v": "2001-12-14t21:59:43.10-05:00"}),
    ("spaced-datetime", "v: 2001-12-14 21:59:43.10 -5\n", {"v": "2001-12-14 21:59:43.10 -5"}),
    ("date-key", "2001-12-14: x\n", {"2001-12-14": "x"}),
    ("timestamp-tag", "v: !!timestamp 2001-12-14\n", {"v": "2001-12-14"}),
    ("timestamp-tag-on-text", "v: !!timestamp yesterday\n", Refused("yaml.tag")),
    # null
    ("tilde", "v: ~\n", {"v": None}),
    ("empty", "v:\n", {"v": None}),
    ("Null", "v: Null\n", {"v": None}),
    ("nUll-is-text", "v: nUll\n", {"v": "nUll"}),
    ("null-key", "~: x\n", Refused("yaml.key")),
    ("null-word-key", "null: x\n", Refused("yaml.key")),
    ("empty-quoted-key", "'': x\n", {"": "x"}),
    # keys that are not strings
    ("int-key", "1: x\n", {"1": "x"}),
    ("negative-key", "-1: x\n", {"-1": "x"}),
    ("octal-key", "0755: x\n", {"493": "x"}),
    ("hex-key", "0x10: x\n", {"16": "x"}),
    ("float-key", "1.5: x\n", {"1.5": "x"}),
    ("float32-key", "0.123456789: x\n", {"0.12345679": "x"}),
    ("exponent-key", "1e3: x\n", {"1000": "x"}),
    ("big-float-key", "1e20: x\n", {"1e+20": "x"}),
    ("million-key", "1234567.0: x\n", {"1.234567e+06": "x"}),
    ("small-key", "0.00001: x\n", {"1e-05": "x"}),
    ("minus-zero-key", "-0.0: x\n", {"-0": "x"}),
    ("float32-overflow-key", "3.4e39: x\n", {".inf": "x"}),
    ("infinity-key", ".inf: x\n", {".inf": "x"}),
    ("uint64-key", "9223372036854775808: x\n", Refused("yaml.key")),
    ("list-key", "? [1, 2]\n: x\n", Refused("yaml.key")),
    ("map-key", "? {a: 1}\n: x\n", Refused("yaml.key")),
    # standard tags: checked against the text, ignored on maps and lists
    ("str-tag", "v: !!str 123\n", {"v": "123"}),
    ("int-tag-quoted", "v: !!int '12'\n", {"v": 12}),
    ("int-tag-on-text", "v: !!int abc\n", Refused("yaml.tag")),
    ("int-tag-on-float", "v: !!int 1.5\n", Refused("yaml.tag")),
    ("float-tag-on-int", "v: !!float 1\n", {"v": 1}),
    ("bool-tag", "v: !!bool 'yes'\n", {"v": True}),
    ("null-tag-on-text", "v: !!null foo\n", Refused("yaml.tag")),
    ("null-tag", "v: !!null ~\n", {"v": None}),
    ("map-tag-on-list", "v: !!map [1, 2]\n", {"v": [1, 2]}),
    ("str-tag-on-map", "v: !!str {a: 1}\n", {"v": {"a": 1}}),
    ("str-tag-key", "!!str 1: x\n", {"1": "x"}),
    ("nonspecific-tag", "v: ! 12\n", {"v": "12"}),
    ("nonspecific-tag-bool", "v: ! on\n", {"v": "on"}),
    ("nonspecific-tag-key", "! on: x\n", {"on": "x"}),
    ("nonspecific-tag-after-bom", "\ufeffv: ! 12\n", {"v": "12"}),
    ("nonspecific-tag-anchored", "v: &a ! 12\nw: *a\n", {"v": "12", "w": "12"}),
    # merge keys: fine while no key is set twice
    ("merge", "b: &b {a: 1}\nv: {<<: *b, c: 3}\n", {"b": {"a": 1}, "v": {"a": 1, "c": 3}}),
    ("merge-override", "b: &b {a: 1, b: 2}\nv: {<<: *b, a: 3}\n", Refused("yaml.duplicate-key")),
    ("override-merge", "b: &b {a: 1}\nv: {a: 3, <<: *b}\n", Refused("yaml.duplicate-key")),
    ("merge-list", "v: {<<: [{a: 1}, {b: 2}]}\n", {"v": {"a": 1, "b": 2}}),
    ("merge-list-overlap", "v: {<<: [{a: 1}, {a: 2}]}\n", Refused("yaml.duplicate-key")),
    (
        "merge-aliases",
        "a: &a {x: 1}\nb: &b {z: 2}\nv: {<<: [*a, *b]}\n",
        {"a": {"x": 1}, "b": {"z": 2}, "v": {"x": 1, "z": 2}},
    ),
    ("merge-alias-to-list", "s: &s [{a: 1}]\nv: {<<: *s}\n", Refused("yaml.merge")),
    ("merge-scalar", "v: {<<: 1}\n", Refused("yaml.merge")),
    ("merge-null", "v: {<<: ~}\n", Refused("yaml.merge")),
    ("merge-list-of-scalars", "v: {<<: [1]}\n", Refused("yaml.merge")),
    ("quoted-merge-is-a-key", "v: {'<<': {a: 1}}\n", {"v": {"<<": {"a": 1}}}),
    ("tagged-merge", "v: {!!merge <<: {a: 1}}\n", {"v": {"a": 1}}),
    ("nested-merge", "v: {<<: {<<: {a: 1}, b: 2}}\n", {"v": {"a": 1, "b": 2}}),
    ("two-merges", "{<<: {a: 1}, <<: {b: 2}}\n", {"a": 1, "b": 2}),
    ("merge-word-value", "v: <<\n", {"v": "<<"}),
    # aliases
    ("alias", "a: &x 1\nb: *x\n", {"a": 1, "b": 1}),
    ("recursive-alias", "a: &x [*x]\n", Refused("yaml.recursive-alias")),
    ("unknown-alias", "a: *nope\n", Refused("yaml.syntax")),
    # strings and documents
    ("escapes", 'v: "\\x00\\t\\U0001F600"\n', {"v": "\x00\t\U0001f600"}),
    ("surrogate-escape", 'v: "\\ud800"\n', Refused("yaml.syntax")),
    ("unicode", "v: café\n", {"v": "café"}),
    ("top-level-text", "hello\n", "hello"),
    ("list", "- 1\n- on\n- 0o17\n", [1, True, 15]),
    ("syntax-error", "a: b: c\n", Refused("yaml.syntax")),
    ("json", '{"a": [1, 2.5, true, null], "b": {}}', {"a": [1, 2.5, True, None], "b": {}}),
]

# Kubernetes reads these, but the bot refuses them on purpose: a tag the bot does not
# know (a security limit of its own), or keys whose JSON value is left to Go's map order.
STRICTER: list[tuple[str, str, str]] = [
    ("custom-tag", "v: !foo bar\n", "yaml.tag"),
    ("binary-tag", "v: !!binary aGVsbG8=\n", "yaml.tag"),
    ("map-tag-on-text", "v: !!map foo\n", "yaml.tag"),
    ("merge-tag-on-text", "v: !!merge foo\n", "yaml.tag"),
    ("on-and-quoted-true", "{on: a, 'true': b}\n", "yaml.ambiguous-key"),
    ("true-and-quoted-true", "{true: a, 'true': b}\n", "yaml.ambiguous-key"),
    ("int-and-quoted-int", "{1: a, '1': b}\n", "yaml.ambiguous-key"),
    ("float-and-int", "{1.0: a, 1: b}\n", "yaml.ambiguous-key"),
]


def bot_reads(text: str) -> Any:
    try:
        documents = [d.data for d in parse_documents(text)]
    except DocumentError as exc:
        return Refused(exc.code)
    assert len(documents) <= 1, text
    return documents[0] if documents else None


def kubernetes_reads(yamljson: Path, texts: list[str]) -> list[Any]:
    """What sigs.k8s.io/yaml makes of each text: its JSON read back, or Refused("k8s")."""
    done = subprocess.run(
        [str(yamljson), "-batch"],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(done.stdout)
    return [Refused("k8s") if r.get("strict_error") else r["json"] for r in results]


def same(a: Any, b: Any) -> bool:
    """Equal with the same JSON types all the way down (1 and 1.0 and True differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, want, id=name) for name, text, want in TABLE],
)
def test_the_bot_reads_yaml_as_the_table_says(text: str, expected: Any) -> None:
    got = bot_reads(text)
    assert same(got, expected) or got == expected, f"{text!r}: bot read {got!r}"


def test_kubernetes_reads_yaml_as_the_table_says(yamljson: Path) -> None:
    readings = kubernetes_reads(yamljson, [text for _, text, _ in TABLE])
    wrong = [
        (name, text, reading)
        for (name, text, want), reading in zip(TABLE, readings, strict=True)
        if not _agrees(reading, want)
    ]
    assert not wrong, "sigs.k8s.io/yaml disagrees with the table:\n" + "\n".join(map(repr, wrong))


def _agrees(reading: Any, expected: Any) -> bool:
    if isinstance(expected, Refused):
        return isinstance(reading, Refused)
    return same(reading, expected)


@pytest.mark.parametrize(
    ("text", "code"), [pytest.param(text, code, id=name) for name, text, code in STRICTER]
)
def test_the_bot_refuses_what_kubernetes_reads_by_chance(
    text: str, code: str, yamljson: Path
) -> None:
    [reading] = kubernetes_reads(yamljson, [text])
    assert not isinstance(reading, Refused), "Kubernetes refuses it now: move the row to TABLE"
    assert bot_reads(text) == Refused(code)


def test_refusals_say_where_and_what_to_do() -> None:
    with pytest.raises(DocumentError) as caught:
        list(parse_documents("kind: ConfigMap\ndata:\n  on: a\n  yes: b\n"))
    assert caught.value.line == 4
    assert "'yes'" in caught.value.message and "'on'" in caught.value.message
    assert "line 3" in caught.value.message and "quote" in caught.value.message


def assert_read_as_kubernetes_reads(yamljson: Path, texts: list[str]) -> None:
    """The bot reads each text as Kubernetes does, or refuses what Kubernetes refuses.

    The one allowance: keys Kubernetes keeps one of by chance (STRICTER), which the bot
    refuses.
    """
    for text, reading in zip(texts, kubernetes_reads(yamljson, texts), strict=True):
        ours = bot_reads(text)
        if isinstance(reading, Refused):
            assert isinstance(ours, Refused), f"{text!r}: Kubernetes refuses, bot read {ours!r}"
        elif ours != Refused("yaml.ambiguous-key"):
            assert same(ours, reading), f"{text!r}: Kubernetes read {reading!r}, bot {ours!r}"


# --- generated scalars and keys ---------------------------------------------------

# Characters that make YAML 1.1 and Go's number syntax disagree with the eye.
_TRICKY = "0123456789_.+-eExXoObB:aAfFlLnNsSuUyY~="
_WORDS = ["on", "yes", "y", "n", "NO", "Off", "true", "null", "~", "<<", "=", ".inf", ".nan"]


def _number_texts() -> st.SearchStrategy[str]:
    whole = st.integers(min_value=-(2**65), max_value=2**65)
    return st.one_of(
        whole.map(str),
        whole.map(lambda n: f"{'-' if n < 0 else ''}0x{abs(n):x}"),
        whole.map(lambda n: f"{'-' if n < 0 else ''}0{abs(n):o}"),
        whole.map(lambda n: f"0o{abs(n):o}"),
        whole.map(lambda n: f"{n:_}"),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: f"{f:e}"),
        st.tuples(st.integers(0, 999), st.integers(-400, 400)).map(lambda p: f"{p[0]}e{p[1]}"),
    )


scalar_texts = st.one_of(
    st.text(alphabet=_TRICKY, min_size=1, max_size=10),
    st.sampled_from(_WORDS),
    _number_texts(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(scalar_texts, scalar_texts), min_size=1, max_size=40))
def test_generated_scalars_and_keys_read_as_kubernetes_reads_them(
    yamljson: Path, pairs: list[tuple[str, str]]
) -> None:
    texts = [f"v: {value}\n" for _, value in pairs] + [f"{key}: v\n" for key, _ in pairs]
    assert_read_as_kubernetes_reads(yamljson, texts)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(scalar_texts, min_size=2, max_size=3), min_size=1, max_size=30))
def test_generated_maps_repeat_keys_as_kubernetes_reads_them(
    yamljson: Path, maps: list[list[str]]
) -> None:
    texts = ["".join(f"{key}: {n}\n" for n, key in enumerate(keys)) for keys in maps]
    assert_read_as_kubernetes_reads(yamljson, texts)


_dumpable = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        st.sampled_from([*_WORDS, "y", "n", "08", "0o17", "1e3", "1:20", "2002-12-14", "="]),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=25,
)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(_dumpable, st.booleans()), min_size=1, max_size=20))
def test_data_written_by_pyyaml_reads_as_kubernetes_reads_it(
    yamljson: Path, values: list[tuple[Any, bool]]
) -> None:
    # PyYAML quotes only what YAML 1.1 would misread as PyYAML resolves it: `y` and `08`
    # go out bare, and Kubernetes reads them as true and 8. The bot must read the same.
    texts = [yaml.safe_dump(v, default_flow_style=flow, allow_unicode=True) for v, flow in values]
    assert_read_as_kubernetes_reads(yamljson, texts)
