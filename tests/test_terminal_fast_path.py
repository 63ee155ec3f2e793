"""The inert output stream writes what `visible_controls` makes of the text, also when it
takes its shortcut for printable ASCII ending in newlines (every log line of `serve`)."""

from __future__ import annotations

import io
import json

import pytest

from bot.cli.terminals import InertStream
from bot.core.controls import visible_controls

TEXTS = [
    "",
    "\n",
    "\n\n",
    "plain words\n",
    "plain words without a newline",
    json.dumps({"message": "delivery d-1 stored: plan job queued", "x": "\x1b\r\u202e"}) + "\n",
    "tab\there\n",
    "newline\ninside\n",
    "carriage return\r\n",
    "escape \x1b[2J\n",
    "bell \x07",
    "delete \x7f\n",
    "C1 \x85 and \x9b\n",
    "line separator \u2028\n",
    "override \u202e\n",
    "non-ASCII: Grüße ✓\n",
    "\x00",
    " ~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_the_stream_writes_what_visible_controls_gives(text: str) -> None:
    target = io.StringIO()
    written = InertStream(target).write(text)
    expected = visible_controls(text, keep="\n\t")
    assert target.getvalue() == expected and written == len(expected)


def test_every_character_below_256_is_written_as_visible_controls_writes_it() -> None:
    for code in range(256):
        for text in (chr(code), f"a{chr(code)}b\n", f"{chr(code)}\n"):
            target = io.StringIO()
            InertStream(target).write(text)
            assert target.getvalue() == visible_controls(text, keep="\n\t"), repr(text)
