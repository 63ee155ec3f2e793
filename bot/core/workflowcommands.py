"""Findings as GitHub Actions workflow commands, which a workflow shows as annotations."""

from __future__ import annotations

from collections.abc import Iterable

from bot.core.annotations import Annotation

# GitHub reads a command up to the end of its line and its properties up to the next
# comma or colon, so text from a repository is escaped to stay inside its field.
_DATA_ESCAPES = (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"))
_PROPERTY_ESCAPES = (*_DATA_ESCAPES, (":", "%3A"), (",", "%2C"))


def workflow_commands(annotations: Iterable[Annotation]) -> str:
    """One `::error file=...,line=...,title=...::message` line per finding."""
    return "".join(_command(a) + "\n" for a in annotations)


def _command(annotation: Annotation) -> str:
    level = "error" if annotation.is_error else "warning"
    properties = {"file": annotation.path, "line": str(annotation.line), "title": annotation.title}
    listed = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items())
    return f"::{level} {listed}::{escape_data(annotation.finding.message)}"


def escape_data(text: str) -> str:
    return _escape(text, _DATA_ESCAPES)


def escape_property(text: str) -> str:
    return _escape(text, _PROPERTY_ESCAPES)


def _escape(text: str, escapes: tuple[tuple[str, str], ...]) -> str:
    for raw, escaped in escapes:  # "%" first, so no escape is escaped again
        text = text.replace(raw, escaped)
    return text
