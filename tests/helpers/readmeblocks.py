"""The README's code blocks, found by a line they contain, for the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def readme_block(marker: str) -> str:
    """The one fenced block of README.md holding `marker` (its first line, usually)."""
    blocks = [body for _, body in FENCE.findall(README.read_text()) if marker in body]
    assert len(blocks) == 1, f"README.md has {len(blocks)} code blocks with {marker!r}"
    return blocks[0]
