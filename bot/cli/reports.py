"""`--report FORMAT=FILE`: the result written again in another format, for CI to pick up."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.cli.exits import EXIT_FAILED


def report_target(formats: Sequence[str]) -> Callable[[str], tuple[str, Path]]:
    """The argparse type of `--report`: FORMAT=FILE with FORMAT one of `formats`."""

    def parse(text: str) -> tuple[str, Path]:
        format_, _, file = text.partition("=")
        if format_ not in formats or not file:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected FORMAT=FILE with FORMAT one of {', '.join(formats)}"
            )
        return format_, Path(file)

    return parse


def write_reports(reports: list[tuple[str, Path]], output: Callable[[str], str]) -> None:
    """Each requested report; one that cannot be written ends the command with exit 3."""
    for format_, file in reports:
        try:
            file.write_text(output(format_), encoding="utf-8")
        except OSError as exc:  # the result is printed already; the report is what is missing
            message = f"gitops-bot: cannot write the {format_} report to {file}: {exc}"
            print(message, file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from exc
