"""Build data from composed YAML nodes as sigs.k8s.io/yaml does: keys, merges, repeats, limits.

The loader composes nodes with libyaml; this module gives them the meaning the API
server gives them (see yamlscalars for scalars) and refuses, with the line, what it
refuses: a key that repeats once resolved (`on` and `yes` are both "true"), a merge
(`<<`) that sets a key already set, a null or list key, NaN. Where Kubernetes' own
result depends on Go's map order (`1` and `"1"` in one map), the bot refuses too.
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache
from typing import Any, NoReturn

from yaml import MappingNode, Node, ScalarNode, SequenceNode

from bot.core import yamlscalars
from bot.core.yamlscalars import NULL, STR

# The tag the loader gives an untagged plain scalar (PyYAML's resolver is not used).
PLAIN = "tag:gitops-bot.io,2026:plain"
STR_TAG = "tag:yaml.org,2002:str"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"
# Standard tags Kubernetes honours on a scalar; on a map or a list it ignores them.
_SCALAR_TAGS = {
    "tag:yaml.org,2002:" + kind: kind for kind in ("int", "float", "bool", "null", "timestamp")
}
_COLLECTION_TAGS = frozenset({STR_TAG, MAP_TAG, SEQ_TAG, *_SCALAR_TAGS})
_SHORT = 64  # characters: short scalars (keys above all) repeat, so they are cached


class NodeError(ValueError):
    """Kubernetes would refuse this node (or could read it two ways); says what to do."""

    def __init__(self, code: str, message: str, line: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


class Builder:
    """One document's build, counting nodes (alias expansions included) and depth."""

    def __init__(
        self, max_depth: int, max_nodes: int, may_alias: bool, tagged_source: str | None
    ) -> None:
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.may_alias = may_alias  # without an anchor no node is shared: no bookkeeping
        self.nodes = 0
        self.expanded = False  # an alias made the build visit a node twice
        self.seen: set[int] = set()
        self.active: set[int] = set()  # collections being built: an alias to one is a loop
        # The source text, when it has a "!" at all: libyaml reports `! 12` (the
        # non-specific tag, a string to Kubernetes) exactly as a plain `12`.
        self.tagged_source = tagged_source

    def build(self, node: Node, depth: int) -> Any:
        self.count(node, depth)
        if node.__class__ is ScalarNode:
            if self.tagged_source is not None and self._nonspecific(node):
                return _short(node.value)
            return scalar_value(node)
        if self.may_alias:
            return self._shared(node, depth)
        return self._collection(node, depth)

    def count(self, node: Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            self._too_many(node)
        if depth > self.max_depth:
            _refuse(
                "yaml.too-deep",
                node,
                f"nesting deeper than {self.max_depth} levels at line {{line}}; flatten the data",
            )

    def _nonspecific(self, node: Node) -> bool:
        """Whether a plain scalar carries the tag `!`, which makes it a string."""
        if node.__class__ is not ScalarNode or node.tag != PLAIN:
            return False
        assert self.tagged_source is not None
        written = self.tagged_source[node.start_mark.index : node.end_mark.index]
        if written.startswith("&"):  # an anchor comes before the tag
            written = written.split(maxsplit=1)[-1]
        return written.startswith("!")

    def _too_many(self, node: Node) -> NoReturn:
        if self.expanded:
            _refuse(
                "yaml.alias-limit",
                node,
                f"aliases expand the document past {self.max_nodes} nodes (an alias "
                "bomb?); write the data out or remove the anchors and aliases",
            )
        _refuse("yaml.too-large", node, f"document has more than {self.max_nodes} nodes; split it")

    def _shared(self, node: Node, depth: int) -> Any:
        marker = id(node)
        if marker in self.active:
            _refuse(
                "yaml.recursive-alias",
                node,
                "an alias at or below line {line} refers to the anchor that contains it, "
                "so the data would never end; write the data out",
            )
        self.expanded = self.expanded or marker in self.seen
        self.seen.add(marker)
        self.active.add(marker)
        try:
            return self._collection(node, depth)
        finally:
            self.active.discard(marker)

    def _collection(self, node: Node, depth: int) -> Any:
        if node.tag not in _COLLECTION_TAGS:
            _refuse_tag(node)
        if node.__class__ is MappingNode:
            return self._mapping(node, depth)
        return [self.build(item, depth + 1) for item in node.value]

    def _mapping(self, node: Node, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if _is_merge(key_node):
                self._merge(node, key_node, value_node, out, depth + 1)
                continue
            self.count(key_node, depth + 1)
            if self.tagged_source is not None and self._nonspecific(key_node):
                key = _short(key_node.value)
            else:
                key = key_name(key_node)
            value = self.build(value_node, depth + 1)
            if key in out or (key in _ZEROS and _zero_repeats(node, key_node)):
                _repeated(node, key_node, key)
            out[key] = value
        return out

    def _merge(
        self, node: Node, key_node: Node, value_node: Node, out: dict[str, Any], depth: int
    ) -> None:
        """`<<: *base` or `<<: [*a, *b]`: under Kubernetes' strict reading no key may repeat."""
        self.count(key_node, depth)
        sources = [value_node]
        # A list of maps must be written out: go-yaml refuses an alias to a list here.
        if value_node.__class__ is SequenceNode and not _is_alias(key_node, value_node):
            self.count(value_node, depth)
            sources, depth = value_node.value, depth + 1
        for source in sources:
            if source.__class__ is not MappingNode:
                _bad_merge(key_node)
            for key, value in self.build(source, depth).items():
                if key in out:
                    _repeated(node, key_node, key, merged=True)
                out[key] = value


def key_name(node: Node) -> str:
    """The JSON key sigs.k8s.io/yaml makes of a key node, or NodeError."""
    if node.__class__ is not ScalarNode:
        _refuse(
            "yaml.key",
            node,
            "the key at line {line} is a map or a list, which Kubernetes refuses; use a string key",
        )
    if node.tag == PLAIN:
        text: str = node.value
        key = _plain_key(text) if len(text) <= _SHORT else _uncached_plain_key(text)
        if key is None:
            _bad_key(node)
        return key
    if node.tag == STR_TAG:
        return _short(node.value)
    kind, value = _tagged(node)
    key = yamlscalars.key_text(kind, value)
    if key is None:
        _bad_key(node)
    return key


def scalar_value(node: Node) -> Any:
    """The JSON value of a scalar node as the API server reads it, or NodeError."""
    tag = node.tag
    if tag == PLAIN:
        text: str = node.value
        value = _plain_value(text) if len(text) <= _SHORT else _uncached_plain_value(text)
        if value is _NOT_JSON:
            _not_json(node)
        return value
    if tag == STR_TAG:
        return _short(node.value)
    kind, value = _tagged(node)
    if not yamlscalars.is_json_number(kind, value):
        _not_json(node)
    return yamlscalars.json_value(kind, value)


_NOT_JSON = object()  # NaN or an infinity: encoding/json cannot write it


def _uncached_plain_value(text: str) -> Any:
    kind, value = yamlscalars.resolve_plain(text)
    if not yamlscalars.is_json_number(kind, value):
        return _NOT_JSON
    return _short(value) if kind == STR else yamlscalars.json_value(kind, value)


def _uncached_plain_key(text: str) -> str | None:
    kind, value = yamlscalars.resolve_plain(text)
    key = yamlscalars.key_text(kind, value)
    return None if key is None else _short(key)


_plain_value = lru_cache(maxsize=8192)(_uncached_plain_value)
_plain_key = lru_cache(maxsize=8192)(_uncached_plain_key)
NOT_JSON = _NOT_JSON


def plain_value(text: str) -> Any:
    """The JSON value of an untagged plain scalar, or NOT_JSON (NaN, an infinity)."""
    return _plain_value(text) if len(text) <= _SHORT else _uncached_plain_value(text)


def plain_key(text: str) -> str | None:
    """The JSON key an untagged plain scalar becomes, or None where Kubernetes refuses it."""
    return _plain_key(text) if len(text) <= _SHORT else _uncached_plain_key(text)


def short_text(text: str) -> str:
    """A string value as the builder keeps it (short ones shared)."""
    return _short(text)


def _short(text: str) -> str:
    # Keys and labels repeat in every object: one copy each halves the memory.
    return sys.intern(text) if len(text) <= _SHORT else text


def _tagged(node: Node) -> yamlscalars.Scalar:
    kind = _SCALAR_TAGS.get(node.tag)
    if kind is None:
        _refuse_tag(node)
    resolved = yamlscalars.resolve_tagged(kind, node.value)
    if resolved is None:
        _refuse(
            "yaml.tag",
            node,
            f"the value at line {{line}} is not a {kind}, as its tag !!{kind} says; "
            "Kubernetes refuses it: fix the value or remove the tag",
        )
    return resolved


def _is_merge(node: Node) -> bool:
    return (
        node.__class__ is ScalarNode
        and node.value == "<<"
        and (node.tag == PLAIN or node.tag == MERGE_TAG)
    )


def _is_alias(key_node: Node, value_node: Node) -> bool:
    # The composer hands an alias over as the anchored node itself, which was written
    # before the key; a value written out always comes after its key.
    return bool(value_node.start_mark.index <= key_node.start_mark.index)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _refuse(code: str, node: Node, message: str) -> NoReturn:
    """Raise NodeError; `{line}` in the message becomes the node's line."""
    line = _line(node)
    raise NodeError(code, message.format(line=line), line)


def _refuse_tag(node: Node) -> NoReturn:
    _refuse(
        "yaml.tag",
        node,
        f"unsupported YAML tag {_braces(node.tag)!r} at line {{line}}: only plain data "
        "(maps, lists, strings, numbers, booleans, null) is accepted; remove the tag",
    )


def _bad_merge(key_node: Node) -> NoReturn:
    _refuse(
        "yaml.merge",
        key_node,
        "the merge key '<<' at line {line} needs a map, an alias to a map, or a list "
        "of those; Kubernetes refuses anything else",
    )


def _bad_key(node: Node) -> NoReturn:
    what = "a null key" if _kind_of(node) == NULL else f"the key {_braces(node.value)!r}"
    _refuse(
        "yaml.key",
        node,
        f"{what} at line {{line}} cannot become a JSON key, so Kubernetes refuses it; "
        "quote it if you mean the text",
    )


def _braces(text: str) -> str:
    """Text from the file, safe inside a `_refuse` message template."""
    return text.replace("{", "{{").replace("}", "}}")


def _kind_of(node: Node) -> str:
    return _go_key(node)[0]


def _go_key(node: Node) -> yamlscalars.Scalar:
    """The key as go-yaml holds it before it becomes JSON text: its kind and Go value."""
    if node.tag == PLAIN and isinstance(node.value, str):
        return yamlscalars.resolve_plain(node.value)
    if node.tag in _SCALAR_TAGS:
        return _tagged(node)
    return (STR, node.value)


_ZEROS = frozenset({"0", "-0"})


def _zero_repeats(node: Node, key_node: Node) -> bool:
    """Whether a float key 0.0 or -0.0 follows the other: one Go key, two JSON texts."""
    if _kind_of(key_node) != yamlscalars.FLOAT:
        return False
    for earlier, _ in node.value:
        if earlier is key_node:
            return False
        if (
            earlier.__class__ is ScalarNode
            and not _is_merge(earlier)
            and _same_go_key(earlier, key_node)
        ):
            return True
    return False


def _same_go_key(a: Node, b: Node) -> bool:
    kind, value = _go_key(a)
    if kind == yamlscalars.FLOAT and math.isnan(value):
        return False  # Go's map keeps every NaN key apart
    return (kind, value) == _go_key(b)


def _not_json(node: Node) -> NoReturn:
    _refuse(
        "yaml.not-json",
        node,
        f"{_braces(node.value)!r} at line {{line}} is a floating-point NaN or infinity, "
        "which JSON (and so Kubernetes) cannot carry; quote it if you mean the text",
    )


def _repeated(node: Node, key_node: Node, key: str, merged: bool = False) -> NoReturn:
    line = _line(key_node)
    if merged:
        raise NodeError(
            "yaml.duplicate-key",
            f"the merge key '<<' at line {line} sets {key!r}, which this map already has; "
            "Kubernetes' strict reading refuses a key set twice (and kubectl keeps "
            "whichever comes last), so set it exactly once",
            line,
        )
    earlier = _first_spelling(node, key)
    same_key = earlier is not None and _same_go_key(earlier, key_node)
    if earlier is None or (same_key and earlier.value == key_node.value):
        raise NodeError(
            "yaml.duplicate-key",
            f"duplicate key {key_node.value!r} at line {line}; a later value would silently "
            "replace the earlier one, so keep exactly one",
            line,
        )
    outcome = (
        "one value would silently replace the other"
        if same_key
        else "which one it keeps is left to chance"
    )
    raise NodeError(
        "yaml.duplicate-key" if same_key else "yaml.ambiguous-key",
        f"key {key_node.value!r} ({_KIND_NAMES[_kind_of(key_node)]}) at line {line} and key "
        f"{earlier.value!r} ({_KIND_NAMES[_kind_of(earlier)]}) at line {_line(earlier)} both "
        f"become {key!r} in Kubernetes ({outcome}); quote the keys "
        "you mean as text, and keep exactly one",
        line,
    )


_KIND_NAMES = {
    STR: "text",
    yamlscalars.INT: "a number",
    yamlscalars.FLOAT: "a number",
    yamlscalars.BOOL: "a boolean",
    NULL: "null",
    yamlscalars.MERGE: "text",
    "timestamp": "text",
}


def _first_spelling(node: Node, key: str) -> Node | None:
    for key_node, _ in node.value:
        if key_node.__class__ is ScalarNode and not _is_merge(key_node):
            try:
                if key_name(key_node) == key:
                    return key_node
            except NodeError:
                continue
    return None
