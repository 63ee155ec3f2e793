"""Read YAML scalars over several lines as libyaml does: double-quoted ones and `|` blocks."""

from __future__ import annotations

import re
from collections.abc import Iterator

# Each piece of a line inside the quotes: text, spaces, an escape, a final "\", the end.
_PIECES = re.compile(r'[^"\\ ]+| +|\\.|\\$|"')
_SINGLE_PIECES = re.compile(r"[^' ]+| +|''|'")  # in single quotes, '' is a quote
_COMMENT = re.compile(r" +#.*| *")
# libyaml's one-character escapes; "\x", "\u" and "\U" are left to libyaml itself.
_ESCAPES = {
    "\\": "\\",
    '"': '"',
    "/": "/",
    " ": " ",
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}


def read_quoted(
    first: str, following: Iterator[str], indent: int, single: bool = False
) -> tuple[str, int] | None:
    """The text of the scalar opening `first`, and how many more lines it took.

    None when this reader is not sure of it: an escape it does not know, no closing
    quote, text after it, or a continuation line not indented past `indent`.
    """
    out: list[str] = []
    line, taken = first[1:], 0
    while True:
        ended = _read_line(line, out, single)
        if ended is None:
            return None
        if ended >= 0:
            return "".join(out), taken
        folded = _next_line(following, indent)
        if folded is None:
            return None
        line, breaks = folded
        taken += breaks + 1
        # A line break is a space, blank lines are line breaks, "\" at the end joins.
        out.append("\n" * breaks if breaks or ended == -2 else " ")


def _read_line(line: str, out: list[str], single: bool) -> int | None:
    """Append the line's text: where the closing quote ends, -1 at a line break (-2 when
    escaped), None when unsure. Single quotes have no escapes but ''."""
    spaces, quote = "", "'" if single else '"'
    for match in (_SINGLE_PIECES if single else _PIECES).finditer(line):
        piece = match[0]
        if piece[0] == " ":
            spaces = piece
            continue
        out.append(spaces)
        spaces = ""
        if piece == quote:
            return match.end() if _COMMENT.fullmatch(line, match.end()) else None
        if single or piece[0] != "\\":
            out.append("'" if single and piece == "''" else piece)
        elif len(piece) == 1:
            return -2
        elif piece[1] in _ESCAPES:
            out.append(_ESCAPES[piece[1]])
        else:
            return None
    return -1  # spaces before a line break are not part of the text


def _next_line(following: Iterator[str], indent: int) -> tuple[str, int] | None:
    """The next line with text, without its indentation, and the blank lines before it."""
    for breaks, line in enumerate(following):
        body = line.lstrip(" ")
        if body:
            return (body, breaks) if len(line) - len(body) > indent else None
    return None


def read_literal(
    lines: list[str], start: int, indent: int, explicit: int = 0
) -> tuple[str, int] | None:
    """The text of a `|` block scalar whose content starts at lines[start], unchomped.

    Its lines, their indentation (`indent` + `explicit` when the header gives it) taken
    off, joined with line breaks and ending with one; and how many lines it took. None
    when the content is not indented past `indent`, when a leading blank line is longer
    than the first line of text (libyaml would take that as the indentation), when
    there is no text, or when it runs to the end of the text.
    """
    end = len(lines)
    column = indent + explicit if explicit else _text_column(lines, start, indent)
    if column is None:
        return None
    kept: list[str] = []
    blanks = 0
    for index in range(start, end):  # blank lines before the text are line breaks too
        line = lines[index]
        if len(line) > column and not line[:column].strip(" "):
            kept += [""] * blanks + [line[column:]]
            blanks = 0
        elif line.strip(" "):
            return ("\n".join(kept) + "\n", index - start) if kept else None
        else:
            blanks += 1
    return None if lines[-1] or not kept else ("\n".join(kept) + "\n", end - start)


def _text_column(lines: list[str], start: int, indent: int) -> int | None:
    """The indentation of a block's first line of text, as libyaml finds it, if sure."""
    end = len(lines)
    index, widest_blank = start, 0
    while index < end and not lines[index].strip(" "):
        widest_blank = max(widest_blank, len(lines[index]))
        index += 1
    if index == end:
        return None
    column = len(lines[index]) - len(lines[index].lstrip(" "))
    return None if column <= indent or widest_blank > column else column
