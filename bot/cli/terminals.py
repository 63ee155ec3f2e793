"""The command line's output streams, with control characters from outside made visible.

Text the CLI prints comes from repositories, the store and forges (file names, audit
records, job errors); an escape sequence in it would steer the operator's terminal
(rewrite lines, set the title, hide text). Every write goes through `visible_controls`,
keeping only newlines and tabs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO

from bot.core.controls import visible_controls


class InertStream:
    """A text stream that writes everything through `visible_controls`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        # Printable ASCII and the newlines that end it (every JSON log line `serve`
        # writes) have nothing to show: the common case skips the pattern.
        if text.isascii() and text.rstrip("\n").isprintable():
            return self._stream.write(text)
        return self._stream.write(visible_controls(text, keep="\n\t"))

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> object:  # encoding, isatty, fileno, ...
        return getattr(self._stream, name)


@contextlib.contextmanager
def inert_output() -> Iterator[None]:
    """Standard output and error made inert for the duration of one command."""
    saved = sys.stdout, sys.stderr
    sys.stdout = InertStream(saved[0])
    sys.stderr = InertStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
