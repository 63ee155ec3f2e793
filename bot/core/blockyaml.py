"""Read block-style YAML in one pass over its lines, or say that it cannot.

Most manifests are block maps and lists of scalars. For those this reader builds
exactly what documents' libyaml path builds (values, each document's first line and
index, the same limits) without a Python object per YAML node: plain, quoted and `|`
text, also over several lines (quotedyaml reads the quoted and `|` kinds). Anything
else (flow collections, `>` blocks, anchors, aliases, tags, rare escapes, tabs, odd
line breaks, and anything the careful path would refuse) makes it give up with
`Unsupported`, and the caller reads the file with libyaml. Giving up is always safe,
so every rule below errs on that side.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bot.core.quotedyaml import read_literal, read_quoted
from bot.core.yamlnodes import NOT_JSON, plain_key, plain_value, short_text

# Characters libyaml does not read as they look: control characters but "\n" (tabs, "\r"
# and NEL among them), the Unicode line separators, surrogates, a BOM inside the text,
# and the non-characters U+FFFE and U+FFFF. Each has rules of its own, left to libyaml.
# Written as the set itself, not as the complement of what is usual: the same code
# points, but `re` builds a class of large ranges one code point at a time (5 ms at import).
_UNUSUAL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
# A key: one plain word (no space, ':' or '#'), or a quoted string without escapes.
_KEY = re.compile(r"[A-Za-z0-9_$/.][^\s:#'\"]*|\"[^\"\\]*\"|'(?:[^']|'')*'")
_SINGLE = re.compile(r"'((?:[^']|'')*)'(?: +#.*)?")
_DOUBLE = re.compile(r"\"([^\"\\]*)\"(?: +#.*)?")
# "|", "|-", and with an indentation indicator "|2", "|2-" or "|-2".
_LITERAL_HEADER = re.compile(r"\|(?:([1-9]?)(-?)|(-)([1-9]))(?: +#.*)?")
_EMPTY_FLOW = re.compile(r"(\{\}|\[\])(?: +#.*)?")
_DOCUMENT_START = re.compile(r"---(?: +(?:#.*)?)?")
# A plain scalar cannot start with these; "-" can when a non-space follows.
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_LONGEST_SIMPLE_KEY = 1000  # libyaml refuses a simple key past 1024 characters
_ZEROS = frozenset({"0", "-0"})  # -0.0 after 0.0 is one Go key: yamlnodes refuses it

# Values and keys as written, and what they read as: manifests repeat them a lot.
_CACHE_SIZE = 16_384
_scalars: dict[str, Any] = {}
_keys: dict[str, str] = {}


class _Marker:
    """What a line's value stands for when it is not the value itself."""

    def __init__(self, literal: bool = False, stripped: bool = False, explicit: int = 0) -> None:
        self.literal = literal  # a "|" block: the lines below, each ending with a line break
        self.stripped = stripped  # "|-": not the last one
        self.explicit = explicit  # the indentation indicator, 0 when libyaml finds it


_EMPTY = _Marker()  # "key:" or "-" with nothing after it on the line
_DOUBLE_QUOTED = _Marker()  # a double-quoted scalar with escapes, or over several lines
_SINGLE_QUOTED = _Marker()  # a single-quoted scalar over several lines

_NEW_MAP = object()  # "{}": a fresh dict each time
_NEW_LIST = object()  # "[]": a fresh list each time
_MISS = object()

Frame = tuple[int, Any, int]  # an open collection: its keys' or dashes' column, it, its depth
Slot = tuple[int, Any, str | None, int]  # "key:" or "-" waiting for a block below, or null
Found = list[tuple[Any, int, int]]  # (data, first line, index) of each non-empty document


class Unsupported(Exception):
    """The text uses YAML this reader does not handle; read it with libyaml instead."""


def read_block_documents(text: str, max_documents: int, max_depth: int, max_nodes: int) -> Found:
    """(data, first line, index) of each non-empty document, or Unsupported."""
    if _unusual(text):
        raise Unsupported
    reader = _Reader(max_depth, max_nodes)
    reader.read(text.split("\n"))
    if reader.index > max_documents:
        raise Unsupported
    return reader.found


def _unusual(text: str) -> bool:
    if text.isascii():  # the common case, at the speed of str's own loops
        return not text.replace("\n", " ").isprintable()
    return _UNUSUAL.search(text) is not None


class _Reader:
    """The documents of one text; nodes are counted as the careful path counts them."""

    def __init__(self, max_depth: int, max_nodes: int) -> None:
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.found: Found = []
        self.index = 0
        self.started = False  # a document is open (content, or an explicit '---')
        self.root: Any = None
        self.line = 0
        self.nodes = 0
        self.stack: list[Frame] = []
        self.slot: Slot | None = None
        self.lines: list[str] = []
        self.folding: tuple[Any, str | None, str, int, int] | None = None  # text going on

    def read(self, lines: list[str]) -> None:
        self.lines = lines
        # One loop with the common line inline: a call per line costs more than its work.
        number = last = 0
        following = iter(lines)
        for line in following:
            number += 1
            body = line.lstrip(" ")
            if not body or body[0] == "#":
                continue
            previous, last = last, number
            indent = len(line) - len(body)
            dash = 0
            if body[0] == "-":
                if body[1:2] not in ("", " "):
                    self._other(indent, body, previous, number)
                    continue
                rest = body[1:].lstrip(" ")
                dash, body = len(body) - len(rest), rest
            key, colon, rest = body.partition(": ")
            if not colon:
                if body[-1:] == ":":
                    key, rest = body[:-1], ""
                elif dash:
                    key, rest = "", body
                else:
                    self._other(indent, body, previous, number)
                    continue
            if self.root is None:
                self._open_root(indent, dash, number)
            elif self.slot is not None:
                self._open_below(indent, dash)
            top_indent, top, depth = self.stack[-1]
            if indent != top_indent or (not dash and top.__class__ is list):
                top_indent, top, depth = self._close_to(indent, dash)
            if dash:
                if top.__class__ is not list:
                    raise Unsupported
                if not key or key[0] == "#":
                    number += self._entry(top, indent, body, depth + 1, following, number)
                    continue
                top = {}
                self._add(self.stack[-1][1], None, top, depth + 1)
                top_indent, depth = indent + dash, depth + 1
                self._push(top_indent, top, depth)
            elif top.__class__ is not dict:
                raise Unsupported
            name = _keys.get(key) or _key(key)
            if name in top or name in _ZEROS:
                raise Unsupported  # a repeat, or a possible one: the careful path explains it
            value = _scalars.get(rest, _MISS)
            if value is _MISS:
                value = _scalar(rest)
            if value.__class__ is _Marker:
                if value is _EMPTY:
                    self.nodes += 1
                    self.slot = (top_indent, top, name, depth + 1)
                    continue
                value, taken = self._over_lines(value, rest, following, top_indent, number)
                number += taken
            self.nodes += 2
            top[name] = value
        self._finish()

    def _over_lines(
        self, marker: _Marker, rest: str, following: Iterator[str], indent: int, number: int
    ) -> tuple[str, int]:
        """A scalar that goes on below its line: its text, and the lines it took after."""
        if marker is _DOUBLE_QUOTED or marker is _SINGLE_QUOTED:
            return _quoted(rest, following, indent, marker is _SINGLE_QUOTED)
        read = read_literal(self.lines, number, indent, marker.explicit)
        if read is None:
            raise Unsupported
        text, taken = read
        for _ in range(taken):
            next(following)
        return short_text(text[:-1] if marker.stripped else text), taken

    def _other(self, indent: int, body: str, previous: int, number: int) -> None:
        """A line with no key and no dash: more of the plain text above, a document start,
        or one this reader refuses."""
        if indent and self.slot is None and self.root is not None:
            self._fold(indent, body, previous, number)
        elif indent or not _DOCUMENT_START.fullmatch(body):
            raise Unsupported  # a scalar on a line of its own, or refused
        else:
            self._finish()
            self.started = True

    def _fold(self, indent: int, body: str, previous: int, number: int) -> None:
        """Plain text going on below its line: a line break is a space, blank lines breaks."""
        if self.folding is not None and self.folding[3] == previous:
            parent, key, text, _, column = self.folding
        else:
            parent, key, text, column = self._plain_at(previous)
        # A comment line in between ends the text: what follows would be refused.
        if any(self.lines[index].strip(" ") for index in range(previous, number - 1)):
            raise Unsupported
        # Below the first line only "#" is special at the start (a comment ends the text).
        if indent <= column or body[0] == "#" or not _plain_text("x" + body):
            raise Unsupported
        blanks = number - previous - 1
        text += ("\n" * blanks if blanks else " ") + body.rstrip(" ")
        value = plain_value(text)
        if value is NOT_JSON:
            raise Unsupported
        if key is None:
            parent[-1] = value
        else:
            parent[key] = value
        self.folding = (parent, key, text, number, column)

    def _plain_at(self, number: int) -> tuple[Any, str | None, str, int]:
        """Where the one-line plain value on line `number` went, its text, and the column
        that text below it must go past (its key's, or its dash's)."""
        line = self.lines[number - 1]
        body = line.lstrip(" ")
        column = len(line) - len(body)
        dashed = body[:2] == "- "
        if dashed:
            rest = body[1:].lstrip(" ")
            key_column, body = column + len(body) - len(rest), rest
        key, colon, text = body.partition(": ")
        parent = self.stack[-1][1]
        name: str | None = None
        if colon:
            name = _keys.get(key) or _key(key)
            if parent.__class__ is not dict or next(reversed(parent)) != name:
                raise Unsupported
            column = key_column if dashed else column
        elif not dashed or parent.__class__ is not list:
            raise Unsupported
        else:
            text = body
        text = text.strip(" ")
        if not _plain_text(text):
            raise Unsupported
        return parent, name, text, column

    def _finish(self) -> None:
        if not self.started and self.root is None:
            return
        self._fill(None)
        if self.nodes > self.max_nodes:
            raise Unsupported
        if self.root is not None:
            self.found.append((self.root, self.line, self.index))
        self.index += 1
        self.started, self.root, self.nodes, self.stack = False, None, 0, []

    def _open_root(self, indent: int, dash: int, number: int) -> None:
        if indent:
            raise Unsupported  # an indented root: rare, and its end is easy to get wrong
        self.root = [] if dash else {}
        self.line = number
        self.nodes = 1
        self._push(0, self.root, 1)

    def _push(self, indent: int, value: Any, depth: int) -> None:
        if depth >= self.max_depth:
            raise Unsupported  # its entries would be too deep: the careful path says where
        self.stack.append((indent, value, depth))

    def _open_below(self, indent: int, dash: int) -> None:
        """A line after "key:" or "-": it opens the block filling the slot, or the slot is null."""
        slot = self.slot
        assert slot is not None
        # A list may sit at its key's own column; a map or an entry's block must go deeper.
        if indent > slot[0] or (dash and indent == slot[0] and slot[2] is not None):
            value: Any = [] if dash else {}
            self._fill(value)
            self._push(indent, value, slot[3])
        else:
            self._fill(None)

    def _fill(self, value: Any) -> None:
        if self.slot is not None:
            _, parent, key, depth = self.slot
            self.slot = None
            self._add(parent, key, value, depth)

    def _add(self, parent: Any, key: str | None, value: Any, depth: int) -> None:
        self.nodes += 1
        if key is None:
            parent.append(value)
        else:
            parent[key] = value

    def _close_to(self, indent: int, dash: int) -> Frame:
        """The open collection a line at `indent` belongs to, closing deeper ones."""
        stack = self.stack
        while stack and (
            stack[-1][0] > indent
            or (not dash and stack[-1][0] == indent and stack[-1][1].__class__ is list)
        ):
            stack.pop()
        if not stack or stack[-1][0] != indent:
            raise Unsupported
        return stack[-1]

    def _entry(
        self,
        entries: list[Any],
        indent: int,
        rest: str,
        depth: int,
        following: Iterator[str],
        number: int,
    ) -> int:
        """`- value`, or `-` alone, waiting for a block below; the lines a value took after."""
        value = _scalars.get(rest, _MISS)
        if value is _MISS:
            value = _scalar(rest)
        taken = 0
        if value is _EMPTY:
            self.slot = (indent, entries, None, depth)
            return 0
        if value.__class__ is _Marker:
            value, taken = self._over_lines(value, rest, following, indent, number)
        self._add(entries, None, value, depth)
        return taken


def _key(written: str) -> str:
    if len(written) > _LONGEST_SIMPLE_KEY or written == "<<" or not _KEY.fullmatch(written):
        raise Unsupported
    first = written[0]
    if first == "'":
        name = short_text(written[1:-1].replace("''", "'"))
    elif first == '"':
        name = short_text(written[1:-1])
    else:
        resolved = plain_key(written)
        if resolved is None:
            raise Unsupported
        name = resolved
    if len(_keys) < _CACHE_SIZE:
        _keys[written] = name
    return name


def _scalar(rest: str) -> Any:
    """The value written after a key or a dash: a scalar, `_EMPTY`, a fresh {} or []."""
    text = rest.strip(" ")
    if not text or text[0] == "#":
        return _EMPTY
    first = text[0]
    if first in _INDICATORS and not (first == "-" and text[1:2] not in ("", " ")):
        value = _quoted_or_empty(text)
        if value is _NEW_MAP:
            return {}
        if value is _NEW_LIST:
            return []
    else:
        value = _plain(text)
    if len(_scalars) < _CACHE_SIZE:
        _scalars[rest] = value
    return value


def _plain(text: str) -> Any:
    cut = text.find(" #")
    if cut >= 0:
        text = text[:cut].rstrip(" ")
    if ": " in text or text[-1] == ":":
        raise Unsupported
    value = plain_value(text)
    if value is NOT_JSON:
        raise Unsupported
    return value


def _quoted_or_empty(text: str) -> Any:
    first = text[0]
    match = _SINGLE.fullmatch(text)
    if match is not None:
        return short_text(match[1].replace("''", "'"))
    match = _DOUBLE.fullmatch(text)
    if match is not None:
        return short_text(match[1])
    if first == '"':
        return _DOUBLE_QUOTED
    if first == "'":
        return _SINGLE_QUOTED
    match = _LITERAL_HEADER.fullmatch(text)
    if match is not None:
        digit, dash = (match[1], match[2]) if match[3] is None else (match[4], match[3])
        return _Marker(literal=True, stripped=bool(dash), explicit=int(digit or 0))
    match = _EMPTY_FLOW.fullmatch(text)
    if match is not None:
        return _NEW_MAP if match[1] == "{}" else _NEW_LIST
    raise Unsupported


def _quoted(rest: str, following: Iterator[str], indent: int, single: bool) -> tuple[str, int]:
    read = read_quoted(rest.lstrip(" "), following, indent, single)
    if read is None:
        raise Unsupported
    return short_text(read[0]), read[1]


def _plain_text(text: str) -> bool:
    """Whether a line's text is plain text with nothing that would end it early."""
    return bool(text) and (
        text[0] not in _INDICATORS and " #" not in text and ": " not in text and text[-1] != ":"
    )
