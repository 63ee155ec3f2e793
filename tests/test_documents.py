"""The safe YAML loader: every limit and every rejection, with the message it gives."""

from __future__ import annotations

import itertools

import pytest

from bot.core.documents import DocumentError, Limits, locate, parse_documents


def alias_bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in itertools.pairwise("abcdefghijklmnop"[:levels]):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


def nested(depth: int) -> str:
    return "x: " + "[" * depth + "]" * depth + "\n"


REJECTED = [
    pytest.param(alias_bomb(), Limits(), "yaml.alias-limit", "alias bomb", id="alias-bomb"),
    pytest.param(
        "a: 1\nb: 2\na: 3\n",
        Limits(),
        "yaml.duplicate-key",
        "duplicate key 'a' at line 3",
        id="duplicate-key",
    ),
    pytest.param(
        "!!python/object:os.system {}\n",
        Limits(),
        "yaml.tag",
        "python/object",
        id="python-object-tag",
    ),
    pytest.param(
        "x: !!python/name:os.system\n", Limits(), "yaml.tag", "remove the tag", id="python-name-tag"
    ),
    pytest.param("x: !Ref other\n", Limits(), "yaml.tag", "'!Ref'", id="custom-tag"),
    pytest.param("x: !!binary aGVsbG8=\n", Limits(), "yaml.tag", "binary", id="binary-tag"),
    pytest.param(nested(80), Limits(), "yaml.too-deep", "deeper than 64", id="deep-nesting"),
    pytest.param(
        "x: " + "y" * 200,
        Limits(max_file_bytes=100),
        "yaml.file-too-large",
        "over the limit of 100",
        id="oversized-file",
    ),
    pytest.param(
        "a: 1\n---\nb: 2\n---\nc: 3\n",
        Limits(max_documents=2),
        "yaml.too-many-documents",
        "more than 2 documents",
        id="too-many-documents",
    ),
    pytest.param(
        "x: [" + ", ".join(["1"] * 50) + "]\n",
        Limits(max_nodes=20),
        "yaml.too-large",
        "more than 20 nodes",
        id="too-many-nodes",
    ),
    pytest.param(
        "&a [*a]\n", Limits(), "yaml.recursive-alias", "contains it", id="recursive-alias"
    ),
    pytest.param(b"x: \xff\xfe\n", Limits(), "yaml.not-utf8", "UTF-8", id="not-utf8"),
    pytest.param("a: [1, 2\nb: 3\n", Limits(), "yaml.syntax", "line", id="syntax-error"),
]


@pytest.mark.parametrize(("text", "limits", "code", "says"), REJECTED)
def test_rejections_name_the_problem(
    text: str | bytes, limits: Limits, code: str, says: str
) -> None:
    with pytest.raises(DocumentError) as caught:
        list(parse_documents(text, limits))
    assert caught.value.code == code
    assert says in caught.value.message


def test_syntax_errors_never_quote_the_source_line() -> None:
    text = "password: hunter2-very-secret\n  broken: [\n"
    with pytest.raises(DocumentError) as caught:
        list(parse_documents(text))
    assert "hunter2" not in caught.value.message


def test_documents_keep_their_first_line_and_skip_empty_ones() -> None:
    text = "# leading comment\na: 1\n---\n---\n\nb: 2\n"
    docs = list(parse_documents(text))
    assert [(d.data, d.line) for d in docs] == [({"a": 1}, 2), ({"b": 2}, 6)]


def test_timestamps_stay_strings_as_kubernetes_sees_them() -> None:
    [doc] = parse_documents("date: 2024-05-01\nversion: 1.10\n")
    assert doc.data == {"date": "2024-05-01", "version": 1.1}


def test_modest_aliases_and_merge_keys_are_fine() -> None:
    text = "base: &base {a: 1}\nx:\n  <<: *base\n  b: 2\ny: *base\n"
    [doc] = parse_documents(text)
    assert doc.data["x"] == {"a": 1, "b": 2}


def test_json_parses_like_yaml() -> None:
    [doc] = parse_documents('{"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}')
    assert doc.data["kind"] == "ConfigMap"


def test_locate_finds_a_fields_own_line() -> None:
    text = "a: 1\n---\nkind: Pod\nspec:\n  containers:\n    - name: a\n      image: x\n"
    assert locate(text, 3, ("spec", "containers", 0, "image")) == 7
    assert locate(text, 3, ("spec", "containers", 0)) == 6
    assert locate(text, 3, ("spec", "missing")) == 4  # the nearest part that exists


def test_locate_finds_keys_as_kubernetes_names_them() -> None:
    text = "kind: Pod\nmetadata:\n  labels:\n    on: x\n    0x10: y\n"
    assert locate(text, 1, ("metadata", "labels", "true")) == 4
    assert locate(text, 1, ("metadata", "labels", "16")) == 5
