"""Control characters made visible, so text from outside cannot steer a terminal or a page.

A terminal obeys escape sequences and carriage returns; Markdown ends a line at `\\r`; a
bidirectional override makes text read differently from what it is ("Trojan Source").
Each such character is replaced by a visible stand-in that says what it was.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL; line and paragraph separators; the bidirectional controls.
_CONTROLS = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def visible_controls(text: str, keep: str = "") -> str:
    """`text` with each control character outside `keep` shown as a visible stand-in."""
    return _CONTROLS.sub(lambda found: _stand_in(found.group(), keep), text)


def _stand_in(char: str, keep: str) -> str:
    if char in keep:
        return char
    if char == "\n":
        return "⏎"
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␛ for ESC, ␍ for CR
    if code == 0x7F:
        return "␡"
    return f"⟨U+{code:04X}⟩"


def plain(text: str) -> str:
    """One line of plain text (a check run's title, an annotation, an issue title)."""
    return visible_controls(text)
