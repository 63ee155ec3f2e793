"""Parse YAML (and JSON) text safely: safe loader only, hard limits, lines kept."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

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

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SCALAR_TAGS = frozenset(
    "tag:yaml.org,2002:" + name for name in ("str", "int", "float", "bool", "null", "timestamp")
)
_PLAIN_TAGS = frozenset(
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "merge", "timestamp")
)


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
    """Safe loader that keeps timestamps as the strings Kubernetes sees."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> Any:
        # Called for every scalar; manifests repeat the same short ones (keys above all).
        if kind is yaml.ScalarNode and len(value) <= _MEMO_SCALARS_UP_TO:
            return _scalar_tag(value, implicit)
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def construct_plain(self, node: yaml.Node) -> Any:
        """What construct_document builds, for a document _check_node found plain."""
        if isinstance(node, yaml.MappingNode):
            return {self.construct_plain(k): self.construct_plain(v) for k, v in node.value}
        if isinstance(node, yaml.SequenceNode):
            return [self.construct_plain(item) for item in node.value]
        if node.tag == _STR or node.tag == _TIMESTAMP:
            value: str = node.value
            # Keys and labels repeat in every object: one copy each halves the memory.
            return sys.intern(value) if len(value) <= _MEMO_SCALARS_UP_TO else value
        return self.yaml_constructors[node.tag](self, node)


_Loader.add_constructor(_TIMESTAMP, _BaseLoader.construct_yaml_str)  # type: ignore[type-var]
_MEMO_SCALARS_UP_TO = 64  # characters; longer values rarely repeat


@lru_cache(maxsize=8192)
def _scalar_tag(value: str, implicit: tuple[bool, bool]) -> Any:
    # The safe resolver has no path resolvers, so a scalar's tag depends on these alone.
    return _TAGS.resolve(yaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call]


_TAGS = yaml.resolver.Resolver()


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
    may_alias = "&" in source  # an alias needs an anchor, and every anchor starts with "&"
    loader = _Loader(source)
    try:
        index = 0
        while _next_node_exists(loader):
            if index >= limits.max_documents:
                raise DocumentError(
                    "yaml.too-many-documents",
                    f"more than {limits.max_documents} documents in one file; split the file",
                )
            node = _get_node(loader)
            plain = _check_node(node, limits, may_alias)
            data = _construct(loader, node, plain)
            if data is not None:  # an empty document, e.g. between two '---'
                yield Document(data=data, line=node.start_mark.line + 1, index=index)
            index += 1
    finally:
        loader.dispose()


def _decode(text: bytes | str) -> str:
    if isinstance(text, str):
        return text
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            "yaml.not-utf8", f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8"
        ) from None


def _next_node_exists(loader: _Loader) -> bool:
    try:
        return bool(loader.check_node())
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None


def _get_node(loader: _Loader) -> yaml.Node:
    try:
        node: yaml.Node | None = loader.get_node()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    assert node is not None  # check_node said there is one
    return node


def _construct(loader: _Loader, node: yaml.Node, plain: bool) -> Any:
    try:
        return loader.construct_plain(node) if plain else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None


def _syntax_error(exc: yaml.MarkedYAMLError) -> DocumentError:
    # Built from the problem and position only: PyYAML's own text quotes the source
    # line, which could carry a secret value into a comment or a log.
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    where = f" at line {line}, column {mark.column + 1}" if mark is not None and line else ""
    problem = exc.problem or exc.context or "invalid YAML"
    return DocumentError("yaml.syntax", f"YAML syntax error{where}: {problem}", line)


def _check_node(root: yaml.Node, limits: Limits, may_alias: bool = True) -> bool:
    """Walk the node graph as construction would: tags, duplicate keys, depth, size.

    Returns whether the document is plain data that `construct_plain` builds exactly
    as PyYAML would: no aliases, no merge keys, only scalar keys, and each node of the
    kind its tag names. Anything else takes PyYAML's own constructor. Without
    `may_alias` no node can be shared, so the walk need not remember what it visited.
    """
    nodes = 0
    expanded = False  # whether an alias made the walk visit a node twice
    plain = True
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    max_nodes, max_depth = limits.max_nodes, limits.max_depth
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if may_alias:
            marker = id(node)
            if marker in seen:  # the composer shares aliased nodes
                expanded = True
            seen.add(marker)
        if nodes > max_nodes:
            _too_many_nodes(node, max_nodes, expanded)
        if depth > max_depth:
            line = node.start_mark.line + 1
            raise DocumentError(
                "yaml.too-deep",
                f"nesting deeper than {max_depth} levels at line {line}; flatten the data",
                line,
            )
        tag = node.tag
        if tag not in _PLAIN_TAGS:
            line = node.start_mark.line + 1
            raise DocumentError(
                "yaml.tag",
                f"unsupported YAML tag {tag!r} at line {line}: only plain data "
                "(maps, lists, strings, numbers, booleans, null) is accepted; remove the tag",
                line,
            )
        if isinstance(node, yaml.MappingNode):
            plain = _check_duplicate_keys(node) and plain and tag == _MAP
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            plain = plain and tag == _SEQ
            stack.extend((item, depth + 1) for item in node.value)
        elif plain and tag not in _SCALAR_TAGS:
            plain = False
    return plain and not expanded


def _too_many_nodes(node: yaml.Node, max_nodes: int, expanded: bool) -> None:
    line = node.start_mark.line + 1
    if expanded:
        raise DocumentError(
            "yaml.alias-limit",
            f"aliases expand the document past {max_nodes} nodes (an alias "
            "bomb?); write the data out or remove the anchors and aliases",
            line,
        )
    raise DocumentError(
        "yaml.too-large", f"document has more than {max_nodes} nodes; split it", line
    )


def _check_duplicate_keys(node: yaml.MappingNode) -> bool:
    """Raise on a repeated key; return whether every key is a plain scalar (no merge)."""
    keys: set[tuple[str, str]] = set()
    plain = True
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
            plain = False
            continue
        marker = (key.tag, key.value)
        if marker in keys:
            line = key.start_mark.line + 1
            raise DocumentError(
                "yaml.duplicate-key",
                f"duplicate key {key.value!r} at line {line}; a later value would silently "
                "replace the earlier one, so keep exactly one",
                line,
            )
        keys.add(marker)
    return plain


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
            entry = next((kv for kv in node.value if getattr(kv[0], "value", None) == part), None)
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
