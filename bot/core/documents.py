"""Parse YAML (and JSON) text safely, as Kubernetes reads it: libyaml, hard limits, lines kept."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from bot.core.blockyaml import Unsupported, read_block_documents
from bot.core.yamlnodes import MAP_TAG, PLAIN, SEQ_TAG, STR_TAG, Builder, NodeError, key_name

try:  # libyaml is several times faster; the pure-Python loader behaves the same
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a hostile file from exhausting memory or time."""

    max_file_bytes: int = 2 * 1024 * 1024
    max_total_bytes: int = 256 * 1024 * 1024
    max_documents: int = 1_000  # per file
    max_depth: int = 64
    max_nodes: int = 200_000  # per document, counting every alias expansion


DEFAULT_LIMITS = Limits()


class DocumentError(ValueError):
    """The text cannot be accepted; `code` is stable, `message` says what to fix."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Document:
    data: Any
    line: int  # 1-based line where the document's content starts
    index: int  # position in its file, from 0


class _Loader(_BaseLoader):
    """libyaml's safe parser and composer; yamlnodes gives the nodes Kubernetes' meaning."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        # Called for every node. PyYAML's YAML 1.1 resolver differs from go-yaml's (`=`,
        # `y`, `1:30`, `0o17`, `1e3`): plain scalars are left to yamlscalars instead.
        if kind is yaml.ScalarNode:
            return PLAIN if implicit[0] else STR_TAG
        return MAP_TAG if kind is yaml.MappingNode else SEQ_TAG


def parse_documents(text: bytes | str, limits: Limits = DEFAULT_LIMITS) -> Iterator[Document]:
    """Yield each non-empty document of a YAML or JSON stream, or raise DocumentError."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > limits.max_file_bytes:
        raise DocumentError(
            "yaml.file-too-large",
            f"file is {size} bytes, over the limit of {limits.max_file_bytes}; "
            "split it into smaller files",
        )
    source = _decode(text)
    try:
        found = read_block_documents(
            source, limits.max_documents, limits.max_depth, limits.max_nodes
        )
    except Unsupported:
        yield from libyaml_documents(source, limits)
        return
    for data, line, index in found:
        yield Document(data=data, line=line, index=index)


def libyaml_documents(source: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[Document]:
    """parse_documents for any YAML, through libyaml's nodes: the reference of blockyaml."""
    may_alias = "&" in source  # an alias needs an anchor, and every anchor starts with "&"
    loader = _Loader(source)
    try:
        index = 0
        while _next_node_exists(loader, source):
            if index >= limits.max_documents:
                raise DocumentError(
                    "yaml.too-many-documents",
                    f"more than {limits.max_documents} documents in one file; split the file",
                )
            node = _get_node(loader, source)
            data = _build(node, limits, may_alias, source if "!" in source else None)
            if data is not None:  # an empty document, e.g. between two '---'
                yield Document(data=data, line=node.start_mark.line + 1, index=index)
            index += 1
    finally:
        loader.dispose()


def _build(node: yaml.Node, limits: Limits, may_alias: bool, tagged: str | None) -> Any:
    try:
        return Builder(limits.max_depth, limits.max_nodes, may_alias, tagged).build(node, 1)
    except NodeError as exc:
        raise DocumentError(exc.code, exc.message, exc.line) from None


def _decode(text: bytes | str) -> str:
    if isinstance(text, str):
        # libyaml skips a byte-order mark without counting it in its marks' positions.
        return text.removeprefix("\ufeff")
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            "yaml.not-utf8", f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8"
        ) from None


def _next_node_exists(loader: _Loader, source: str) -> bool:
    try:
        return bool(loader.check_node())
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    except yaml.reader.ReaderError as exc:
        raise _unreadable(exc, source) from None


def _get_node(loader: _Loader, source: str) -> yaml.Node:
    try:
        node: yaml.Node | None = loader.get_node()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    except yaml.reader.ReaderError as exc:
        raise _unreadable(exc, source) from None
    assert node is not None  # check_node said there is one
    return node


def _unreadable(exc: yaml.reader.ReaderError, source: str) -> DocumentError:
    """A character YAML does not allow (a control character, say): where, and what to do."""
    # libyaml counts the position in bytes of the UTF-8 text it was given.
    line = source.encode()[: exc.position].count(b"\n") + 1
    return DocumentError(
        "yaml.syntax",
        f"YAML syntax error at line {line}: {exc.reason} (character {exc.character:#x}); "
        "remove the character or write it as an escape in a double-quoted string",
        line,
    )


def _syntax_error(exc: yaml.MarkedYAMLError) -> DocumentError:
    # Built from the problem and position only: PyYAML's own text quotes the source
    # line, which could carry a secret value into a comment or a log.
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    where = f" at line {line}, column {mark.column + 1}" if mark is not None and line else ""
    problem = exc.problem or exc.context or "invalid YAML"
    return DocumentError("yaml.syntax", f"YAML syntax error{where}: {problem}", line)


def locate(text: bytes | str, line: int, path: tuple[str | int, ...]) -> int | None:
    """The 1-based line of `path` inside the document starting at `line`, if it is there.

    Used only for the few objects that have findings, so objects need not carry a
    line for every field.
    """
    loader = _Loader(_decode(text))
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None and node.start_mark.line + 1 == line:
                return _walk_to(node, path)
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return None


def _walk_to(node: yaml.Node, path: tuple[str | int, ...]) -> int:
    """The line of the deepest part of `path` that exists: a key's own line for maps."""
    line = int(node.start_mark.line) + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            entry = next((kv for kv in node.value if _names(kv[0], part)), None)
            if entry is None:
                break
            line, node = int(entry[0].start_mark.line) + 1, entry[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = int(node.start_mark.line) + 1
        else:
            break
    return line


def _names(key_node: yaml.Node, part: str | int) -> bool:
    """Whether the key node is the key `part`, as Kubernetes reads it (`on:` is "true")."""
    try:
        return key_name(key_node) == part
    except NodeError:
        return False
