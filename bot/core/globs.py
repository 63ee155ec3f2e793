"""`exclude:` globs: `*`, `?`, `[abc]` within one folder level, `**` across levels."""

from __future__ import annotations

import re
from collections.abc import Iterable

_CLASS_END = re.compile(r"\[!?\]?[^\]]*\]")


class GlobError(ValueError):
    """The glob cannot be read; the message says what is wrong with it."""


def compile_glob(glob: str) -> re.Pattern[str]:
    """A pattern matching the paths the glob names and everything below them.

    Paths are relative and use '/'. `*` and `?` never cross a '/', `**` as a whole level
    matches any number of levels (none included); a glob naming a folder names its files.
    """
    levels = glob.strip("/").split("/")
    parts = []
    for index, level in enumerate(levels):
        last = index == len(levels) - 1
        if level == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
        else:
            parts.append(_level(level, glob) + ("" if last else "/"))
    return re.compile("".join(parts) + "(?:/.*)?")


def _level(level: str, glob: str) -> str:
    """One folder level: wildcards stay inside it."""
    out, position = [], 0
    while position < len(level):
        char = level[position]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            found = _CLASS_END.match(level, position)
            if found is None:
                raise GlobError(f"{glob!r}: '[' opens a character class that never closes")
            out.append(_char_class(found.group()))
            position = found.end()
            continue
        else:
            out.append(re.escape(char))
        position += 1
    return "".join(out)


def _char_class(text: str) -> str:
    body = text[1:-1]
    negated = body.startswith("!")
    body = body[1:] if negated else body
    escaped = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
    return f"[{'^/' if negated else ''}{escaped}]"


def matches_any(path: str, globs: Iterable[re.Pattern[str]]) -> bool:
    return any(glob.fullmatch(path) for glob in globs)
