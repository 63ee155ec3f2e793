"""Markdown for forge comments: safe inline text, diffs in fences, and parts that fit a limit."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

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
    fence = "`" * max(3, _longest_backtick_run(diff) + 1)
    return f"<details><summary>{title}</summary>\n\n{fence}diff\n{diff}\n{fence}\n\n</details>"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def escape(value: str) -> str:
    """Inline text that cannot open HTML, a table cell or a code span."""
    return html.escape(value, quote=False).replace("|", "&#124;").replace("`", "&#96;")


def cell(value: str) -> str:
    return value.replace("|", "").replace("`", "")
