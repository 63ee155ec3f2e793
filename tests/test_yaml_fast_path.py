"""The line reader for plain block YAML reads exactly what libyaml's path reads, or gives up.

`parse_documents` tries bot/core/blockyaml first and falls back to libyaml's nodes
(`libyaml_documents`, the reference). Every test here reads each text both ways and
wants the same outcome: the same values (types and key order too), first lines and
indexes, or the same error (code, message, line) after the same documents. The
texts are generated manifests, written with many block styles, then broken on
purpose; some tests also check that the fast path really takes the common ones.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import blockyaml
from bot.core.blockyaml import Unsupported, read_block_documents
from bot.core.documents import (
    DEFAULT_LIMITS,
    DocumentError,
    Limits,
    libyaml_documents,
    parse_documents,
)

SMALL = Limits(max_documents=3, max_depth=4, max_nodes=25)


def outcome(documents: Any) -> str:
    """Documents read until the end or an error, written so that 1, 1.0 and True differ."""
    read: list[tuple[Any, int, int]] = []
    try:
        for document in documents:
            read.append((document.data, document.line, document.index))
    except DocumentError as exc:
        return repr((read, exc.code, exc.message, exc.line))
    return repr(read)


def assert_same_reading(text: str, limits: Limits = DEFAULT_LIMITS) -> None:
    expected = outcome(libyaml_documents(text, limits))
    assert outcome(parse_documents(text, limits)) == expected, text


def fast_path_takes(text: str, limits: Limits = DEFAULT_LIMITS) -> bool:
    try:
        read_block_documents(text, limits.max_documents, limits.max_depth, limits.max_nodes)
    except Unsupported:
        return False
    return True


# --- a small emitter of block YAML in many styles ------------------------------------

KEYS = [
    "name", "app.kubernetes.io/name", "image", "on", "yes", "y", "1", "0x10", "1e3", "0.5",
    "null", "~", "<<", "0", "-0", "a b", "-x", "k:v", "#k", "$ref", "/p", ".inf", "true",
]  # fmt: skip
SCALARS = [
    "nginx:1.25", "80", "0755", "0o17", "08", "1_000", "1e3", "-.5", ".nan", ".inf", "on",
    "Off", "y", "n", "~", "null", "", "=", "<<", "1:30", "2001-12-14", "a: b", "a #b",
    "a#b", "x:", "-", "- x", "-1", "?x", ":x", "%x", "@x", "`x", "|", ">", "&a", "*a",
    "!x", "{}", "[]", "[a]", "{a: 1}", "'q'", '"d"', "it's", 'say "hi"', "back\\slash",
    "café", "\u00a0pad\u00a0", "x\u2028y", "tab\there", "\ufeffbom", "a,b", "C:\\dir",
    "http://x/y?z=1#f", "   ", "#not-comment",
]  # fmt: skip


COMMON_KEYS = ["name", "image", "ports", "labels", "app", "env", "value", "spec", "kind"]
COMMON = ["web", "nginx:1.25", "8080", "TCP", "true", "500m", "128Mi", "v1", "apps/v1", "x y"]
# Pieces of double-quoted text: escapes libyaml knows and some it has more of.
QUOTED = ["a", "b c", " ", "  ", "\\n", "\\t", "\\ ", "\\\\", '\\"', "\\/", "\\x41", "\\u00e9"]
QUOTED += ["\\e", "\\N", "\\q", "#", ": ", "'", "\\"]


def scalar_text(draw: st.DrawFn, indent: int) -> str:
    pool = draw(st.sampled_from([COMMON, COMMON, SCALARS]))
    value = draw(st.sampled_from(pool) | st.text(min_size=0, max_size=6))
    style = draw(st.sampled_from(["plain"] * 4 + ["single", "double", "folded", "literal"]))
    if style == "single":
        return "'" + value.replace("'", "''") + "'"
    if style == "double":
        return '"' + value + '"'
    if style == "folded":
        return double_quoted_lines(draw, indent)
    if style == "literal":
        return literal_lines(draw, indent)
    if style == "plain" and draw(st.integers(0, 4)) == 0:
        return plain_lines(draw, value, indent)
    return value


def plain_lines(draw: st.DrawFn, first: str, indent: int) -> str:
    """Plain text going on over more lines, as CRD descriptions do."""
    texts = st.sampled_from(["more", "`code`.", "- x", "-y", "#z", "a: b", "c:", "[d]", "e #f"])
    lines = [first]
    for _ in range(draw(st.integers(1, 3))):
        blank = draw(st.sampled_from(["", "", "\n", "\n  \n", "\n# c\n"]))
        margin = " " * (indent + draw(st.sampled_from([2, 2, 1, 4, 0])))
        lines.append(blank + margin + draw(texts) + draw(st.sampled_from(["", " "])))
    return "\n".join(lines)


def literal_lines(draw: st.DrawFn, indent: int) -> str:
    """A `|` block: its header, then lines of text, blank lines and deeper lines."""
    header = draw(st.sampled_from(["|", "|", "|-", "|+", "| # c", "|1", "|2-", "|-2", ">"]))
    margin = indent + draw(st.sampled_from([2, 2, 1, 4, 0]))
    texts = st.sampled_from(["text", "# not a comment", "key: value", "- item", "", " "])
    lines = [
        " " * (margin + draw(st.sampled_from([0, 0, 0, 2, -1]))) + draw(texts)
        for _ in range(draw(st.integers(1, 4)))
    ]
    return header + "\n" + "\n".join(lines)


def double_quoted_lines(draw: st.DrawFn, indent: int) -> str:
    """A double-quoted scalar over several lines, with escapes and blank lines."""
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        pieces = draw(st.lists(st.sampled_from(QUOTED), max_size=5))
        lines.append("".join(pieces))
    margin = " " * (indent + draw(st.sampled_from([2, 2, 1, 4, 0])))
    blank = draw(st.sampled_from(["", "", " ", "\n"]))
    quote = draw(st.sampled_from(['"', '"', "'"]))
    if quote == "'":
        lines = [line.replace("'", "''") if draw(st.booleans()) else line for line in lines]
    return quote + ("\n" + blank).join(lines[:1] + [margin + line for line in lines[1:]]) + quote


def key_text(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(draw(st.sampled_from([COMMON_KEYS, COMMON_KEYS, KEYS]))))
    style = draw(st.sampled_from(["plain"] * 6 + ["single", "double"]))
    return {"plain": key, "single": f"'{key}'", "double": f'"{key}"'}[style]


@st.composite
def block(draw: st.DrawFn, indent: int = 0, depth: int = 0) -> list[str]:
    """Lines of a block map or list at `indent`, nested at most a few levels."""
    step = draw(st.sampled_from([2, 2, 4, 1, 3]))
    as_list = draw(st.booleans())
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        head = " " * indent + ("- " if as_list else key_text(draw) + ":")
        nested = depth < 3 and draw(st.integers(0, 2)) == 0
        if nested:
            compact = not as_list and draw(st.booleans())
            inner = draw(block(indent if compact else indent + step, depth + 1))
            if compact and not inner[0].lstrip().startswith("-"):
                inner = draw(block(indent + step, depth + 1))
            lines += [head.rstrip(), *inner]
        else:
            gap = draw(st.sampled_from([" ", " ", "  ", ""]))
            lines.append(head + gap + scalar_text(draw, indent))
        lines += draw(st.sampled_from([[], [], ["", "# note"], [" " * indent + "# c"]]))
    if as_list and draw(st.booleans()):  # an entry that is a map
        key = key_text(draw)
        lines.append(" " * indent + f"- {key}: {scalar_text(draw, indent + 2)}")
        lines.append(" " * (indent + 2) + f"{key_text(draw)}: {scalar_text(draw, indent + 2)}")
    return lines


@st.composite
def stream(draw: st.DrawFn) -> str:
    documents = ["\n".join(draw(block())) for _ in range(draw(st.integers(1, 3)))]
    separator = draw(st.sampled_from(["\n---\n", "\n---\n\n# c\n", "\n--- # c\n", "\n---\n---\n"]))
    lead = draw(st.sampled_from(["", "---\n", "# head\n", "\n\n"]))
    tail = draw(st.sampled_from(["\n", "", "\n---\n", "\n...\n", "  \n"]))
    return lead + separator.join(documents) + tail


def mutate(text: str, seed: int) -> str:
    """Break the text a little: a character added, dropped or changed, a line moved."""
    rng = random.Random(seed)
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        spot = rng.randrange(len(lines))
        line = lines[spot]
        at = rng.randint(0, len(line))
        choice = rng.randrange(5)
        if choice == 0:
            lines[spot] = line[:at] + rng.choice(" :-#'\"\\{}[]&*!|>\t\r~") + line[at:]
        elif choice == 1 and line:
            lines[spot] = line[:at] + line[at + 1 :]
        elif choice == 2:
            lines.insert(rng.randrange(len(lines) + 1), line)
        elif choice == 3:
            lines[spot] = " " * rng.randint(0, 3) + line
        else:
            lines[spot] = line.lstrip(" ")
    return "\n".join(lines)


@settings(max_examples=400, deadline=None)
@given(stream())
def test_generated_block_yaml_reads_the_same_both_ways(text: str) -> None:
    assert_same_reading(text)
    assert_same_reading(text, SMALL)


@settings(max_examples=400, deadline=None)
@given(stream(), st.integers(0, 2**32))
def test_broken_block_yaml_reads_or_fails_the_same_both_ways(text: str, seed: int) -> None:
    broken = mutate(text, seed)
    assert_same_reading(broken)
    assert_same_reading(broken, SMALL)


# --- hand-written cases: what the common manifests look like, and the edges ----------

MANIFEST = """\
# a comment before the first document
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # trailing comment
  labels: {}
  annotations:
    note: 'it''s "fine"'
    quoted: "x: y"
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.25
        args: []
        ports:
          -   containerPort: 8080
              protocol: TCP
        env:
        - name: EMPTY
          value:
        -
          name: LATER
      volumes:
---
---

apiVersion: v1
kind: ConfigMap
data:
  on: yes
  "1": 0x10
  mode: 0755
"""


CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
data:
  app.yaml: "server:\\n  port: 8080\\nupstreams:\\n  - tax.data:8080\\n
    \\ - gateway.data:8080\\n"
  folded: "one
    two

    three\\
    four \\"quoted\\" \\\\ \\/"  # comment
  list:
  - "a
     b"
  - 'it''s

     single'
"""


def test_double_quoted_text_over_lines_takes_the_fast_path_and_reads_the_same() -> None:
    assert fast_path_takes(CONFIG_MAP)
    assert_same_reading(CONFIG_MAP)
    [config] = parse_documents(CONFIG_MAP)
    assert config.data["data"]["app.yaml"].endswith("tax.data:8080\n  - gateway.data:8080\n")
    assert config.data["data"]["folded"] == 'one two\nthreefour "quoted" \\ /'
    assert config.data["data"]["list"] == ["a b", "it's\nsingle"]


SCRIPT = """\
data:
  run.sh: |
    #!/bin/sh

      indented: kept
    echo done
  empty-last: |-
    one

    - not a list
  next: 1
list:
- |
  a
- b
"""


DESCRIBED = """\
spec:
  properties:
    priority:
      description: Determines ordering of `TrafficExtensions` in the same
        `phase`.

        A second paragraph; 'quotes' "too" - and [brackets]
      format: int32
    list:
    - one
      two
    - 80
      more
"""


def test_plain_text_over_lines_takes_the_fast_path_and_reads_the_same() -> None:
    assert fast_path_takes(DESCRIBED)
    assert_same_reading(DESCRIBED)
    [document] = parse_documents(DESCRIBED)
    properties = document.data["spec"]["properties"]
    assert properties["priority"]["description"] == (
        "Determines ordering of `TrafficExtensions` in the same `phase`.\n"
        "A second paragraph; 'quotes' \"too\" - and [brackets]"
    )
    assert properties["list"] == ["one two", "80 more"]


def test_literal_blocks_take_the_fast_path_and_read_the_same() -> None:
    assert fast_path_takes(SCRIPT)
    assert_same_reading(SCRIPT)
    [document] = parse_documents(SCRIPT)
    assert document.data["data"]["run.sh"] == "#!/bin/sh\n\n  indented: kept\necho done\n"
    assert document.data["data"]["empty-last"] == "one\n\n- not a list"
    assert document.data["list"] == ["a\n", "b"]


FAST_PATH = [
    pytest.param("a: |\n\n  text\nb: 1\n", id="literal-blank-line-first"),
    pytest.param("a: |2\n   text\n", id="literal-indentation-indicator"),
    pytest.param("k:\n  a: |2-\n\n      x\n     y\n  b: 1\n", id="literal-indicator-stripped"),
    pytest.param("- |-1\n   x\n  y\n", id="literal-indicator-entry"),
    pytest.param("a: |\n  \n  text\nb: 1\n", id="literal-spaces-line-first"),
    pytest.param("a: |-\n\n\n  text\n\n\nb: 1\n", id="literal-stripped-blank-lines"),
    pytest.param("a: |\n  text\n\n", id="literal-at-the-end"),
    pytest.param("- |\n  text\n-  |-\n   deeper\n", id="literal-entries"),
    pytest.param('a: "x\n\n\n  y"\n', id="double-quoted-blank-lines"),
    pytest.param("a: x\n\n\n  y\n", id="plain-blank-lines"),
]


@pytest.mark.parametrize("text", FAST_PATH)
def test_edges_of_text_over_lines_take_the_fast_path_and_read_the_same(text: str) -> None:
    assert fast_path_takes(text)
    assert_same_reading(text)


def test_a_typical_manifest_takes_the_fast_path_and_reads_the_same() -> None:
    assert fast_path_takes(MANIFEST)
    assert_same_reading(MANIFEST)
    [deployment, config] = parse_documents(MANIFEST)
    assert (deployment.line, deployment.index, config.line, config.index) == (2, 0, 30, 2)
    assert config.data["data"] == {"true": True, "1": 16, "mode": 493}


SLOW_PATH = [
    pytest.param("a: &x 1\nb: *x\n", id="anchor"),
    pytest.param("a: !!str 1\n", id="tag"),
    pytest.param("a: >\n  text\n", id="folded-block-scalar"),
    pytest.param("a: |+\n  text\n\n", id="kept-block-scalar"),
    pytest.param("a: |\n  text", id="block-scalar-without-final-break"),
    pytest.param("a: |\n    \n  text\n", id="block-scalar-long-blank-first"),
    pytest.param("a: |\nb: 1\n", id="empty-block-scalar"),
    pytest.param("a: [1, 2]\n", id="flow-list"),
    pytest.param('a: "x\\x41"\n', id="hex-escape"),
    pytest.param('a: "x\n\n"\n', id="quoted-continued-at-column-0"),
    pytest.param('a: "x" y\n', id="text-after-quote"),
    pytest.param("a: one\ntwo\n", id="plain-continued-at-column-0"),
    pytest.param("a: one\n  # c\n  two\n", id="plain-after-a-comment"),
    pytest.param("a: one # c\n  two\n", id="plain-after-a-trailing-comment"),
    pytest.param("a: 1\r\nb: 2\r\n", id="crlf"),
    pytest.param("a:\t1\n", id="tab"),
    pytest.param("<<: {a: 1}\n", id="merge"),
    pytest.param("a: 1\na: 2\n", id="duplicate"),
    pytest.param("on: 1\nyes: 2\n", id="duplicate-once-resolved"),
    pytest.param("0.0: a\n-0.0: b\n", id="zero-keys"),
    pytest.param("a: .nan\n", id="nan"),
    pytest.param("~: 1\n", id="null-key"),
    pytest.param("  a: 1\n", id="indented-root"),
    pytest.param("%YAML 1.1\n---\na: 1\n", id="directive"),
    pytest.param("a: 1\n...\n", id="document-end"),
    pytest.param("a: 1\nb: 2: 3\n", id="mapping-in-plain"),
    pytest.param("- a\nb: 1\n", id="list-then-key"),
    pytest.param("a:\n  b: 1\n c: 2\n", id="bad-indent"),
    pytest.param("a: 1\n\u2028b: 2\n", id="line-separator"),
    pytest.param("a: 'x\ny'\n", id="single-quoted-continued-at-column-0"),
    pytest.param("text\n", id="scalar-document"),
]


@pytest.mark.parametrize("text", SLOW_PATH)
def test_what_the_fast_path_leaves_to_libyaml_still_reads_the_same(text: str) -> None:
    assert not fast_path_takes(text)
    assert_same_reading(text)
    assert_same_reading(text, SMALL)


def nested_maps(depth: int) -> str:
    return "".join(" " * level + f"k{level}:\n" for level in range(depth)) + " " * depth + "v: 1\n"


@pytest.mark.parametrize("depth", [60, 61, 62, 63, 64, 65, 66])
def test_depth_at_the_limit_reads_the_same(depth: int) -> None:
    assert_same_reading(nested_maps(depth))
    listed = "".join(" " * level + "-\n" for level in range(depth)) + " " * depth + "- 1\n"
    assert_same_reading(listed)


@pytest.mark.parametrize("entries", [10, 11, 12, 13, 24, 25, 26])
def test_node_count_at_the_limit_reads_the_same(entries: int) -> None:
    text = "a:\n" + "".join(f"  k{n}: v\n" for n in range(entries // 2))
    text += "b:\n" + "".join(f"- {n}\n" for n in range(entries - entries // 2))
    assert_same_reading(text, SMALL)
    assert_same_reading(text.replace("b:\n", "b: 1\nc:\n"), SMALL)


@pytest.mark.parametrize("documents", [2, 3, 4])
def test_document_count_at_the_limit_reads_the_same(documents: int) -> None:
    assert_same_reading("\n---\n".join(["a: 1"] * documents), SMALL)
    assert_same_reading("---\n" * documents, SMALL)


# What the fast path leaves to libyaml, as first written: the complement of the characters
# libyaml reads as they look. blockyaml now names the set itself (a cheaper class to build).
REFERENCE_UNUSUAL = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def test_every_code_point_is_unusual_exactly_where_the_reference_says() -> None:
    every = [chr(code) for code in range(0x110000)]
    unusual = [c for c in every if blockyaml._unusual(f"a{c}")]
    assert unusual == [c for c in every if REFERENCE_UNUSUAL.search(c)]
    assert len(unusual) == 2117  # control characters, separators, surrogates, BOM, U+FFFE/F
