"""Markdown for forge comments: inert inline text, diffs in fences, and parts that fit a limit.

Every string from a repository or a forge (file and object names, messages, branch names,
logins, tools' error text) reaches a comment, check run, note or issue through `escape`,
`code` or `details` only, so that it renders as the text it is: never a heading, link,
image, mention, reference or HTML element, and never a line break.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bot.core.controls import visible_controls
from bot.core.diffs import Change

GITHUB_COMMENT_LIMIT = 65_536
GITLAB_NOTE_LIMIT = 1_000_000
MARKER_PREFIX = "<!-- gitops-bot:"
_RESERVED = 400  # marker, continuation notices and their part numbers
_MAX_LINE = 2_000  # longer lines (minified JSON, certificates) are wrapped, visibly


@dataclass(frozen=True)
class Block:
    """A self-contained piece of Markdown: never split across parts unless it is a diff."""

    text: str
    diff: Change | None = None
    title: str = ""


def marker(kind: str, part: int) -> str:
    return f"{MARKER_PREFIX}{kind} part={part} -->"


def parse_marker(body: str, kind: str) -> int | None:
    """The part number of a comment the bot wrote for `kind`, or None for any other comment."""
    found = re.match(re.escape(MARKER_PREFIX + kind) + r" part=(\d+) -->", body)
    return int(found.group(1)) if found else None


def pack(blocks: Iterable[Block], limit: int, kind: str) -> tuple[str, ...]:
    """Greedily fill parts with whole blocks; a diff too big for one part is cut in pieces."""
    budget = limit - _RESERVED
    if budget < 1_000:
        raise ValueError(f"a comment limit of {limit} characters is too small to be useful")
    bodies: list[list[str]] = [[]]
    used = 0
    for block in blocks:
        for piece in _fitted(block, budget):
            if used + len(piece) + 2 > budget and bodies[-1]:
                bodies.append([])
                used = 0
            bodies[-1].append(piece)
            used += len(piece) + 2
    return tuple(_frame(body, index, len(bodies), kind) for index, body in enumerate(bodies, 1))


def _frame(blocks: list[str], part: int, parts: int, kind: str) -> str:
    head = [marker(kind, part)]
    if part > 1:
        head.append(f"_Continued from part {part - 1} of {parts}._")
    tail = [f"_Continued in part {part + 1} of {parts}._"] if part < parts else []
    return "\n\n".join(head + blocks + tail) + "\n"


def _fitted(block: Block, budget: int) -> Iterator[str]:
    if block.diff is None or len(block.text) <= budget:
        yield block.text
        return
    lines = _wrapped(block.diff.diff.splitlines())
    chunks: list[list[str]] = [[]]
    size = 0
    room = budget - len(block.title) - 200
    for line in lines:
        if size + len(line) + 1 > room and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    for index, chunk in enumerate(chunks, 1):
        title = f"{block.title} (diff piece {index} of {len(chunks)})"
        yield details(title, "\n".join(chunk))


def _wrapped(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        while len(line) > _MAX_LINE:
            out.append(line[:_MAX_LINE] + " ↩")
            line = line[0] + line[_MAX_LINE:] if line[:1] in "+- " else line[_MAX_LINE:]
        out.append(line)
    return out


def details(title: str, diff: str) -> str:
    """A collapsed diff: `title` must be escaped already; the fence outlasts any backtick run."""
    body = visible_controls(diff, keep="\n\t")
    fence = "`" * max(3, _longest_backtick_run(body) + 1)
    return f"<details><summary>{title}</summary>\n\n{fence}diff\n{body}\n{fence}\n\n</details>"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


# Characters that open Markdown or HTML syntax become numeric character references: the
# reader sees the character, the parser sees text. This works in Markdown and inside HTML
# blocks alike (a `<summary>`), where backslash escapes would not.
_REFERENCES = {ord(char): f"&#{ord(char)};" for char in "|`[]\\*_~"} | {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
}
# Mentions and references are found in the rendered text, so a reference does not stop
# them: a word joiner after the sigil does (`@team`, `#12`, GitLab's `!12`).
_SIGILS = {ord("@"): "@\u2060", ord("#"): "&#35;\u2060", ord("!"): "&#33;\u2060"}
_TABLE = _REFERENCES | _SIGILS
# Autolinks (`http://...`, `www....`) start from plain text; so do `GH-12` references.
_AUTOLINK = re.compile(r"(?i)(?<=www)\.|:(?=//)")
_GH_REFERENCE = re.compile(r"(?i)(?<=gh-)(?=[0-9])")
# A line that starts with one of these would be a list, quote, heading or code block.
_LINE_START = re.compile(r"^[-+=>:0-9\s]")


def escape(value: str) -> str:
    """`value` as inert inline text: in a paragraph, a table cell or an HTML element."""
    text = visible_controls(value).translate(_TABLE)
    text = _AUTOLINK.sub(lambda found: f"&#{ord(found.group())};", text)
    text = _GH_REFERENCE.sub("\u2060", text)
    return _LINE_START.sub(lambda found: f"&#{ord(found.group())};", text)


def code(value: str, in_table: bool = False) -> str:
    """`value` as an inline code span that nothing in it can close (Markdown, not HTML)."""
    text = visible_controls(value)
    if in_table:  # GitHub splits table cells on `|` before it looks for code spans
        text = text.replace("|", "\\|")
    if not text:
        return "` `"
    fence = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def html_code(value: str) -> str:
    """`value` in a `<code>` element, for places where Markdown is not parsed (a summary)."""
    return f"<code>{escape(value)}</code>"


_LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def mention(login: str) -> str:
    """`@login` for a forge user name the bot means to notify; anything else, inert."""
    return f"@{login}" if _LOGIN.fullmatch(login) else escape(login)
