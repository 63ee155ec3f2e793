"""The schemas of the bot's own files: jsonschema-rs says "valid", jsonschema says the rest.

Policy files and `.gitops-bot.yaml` are checked against fixed schemas on every run.
Importing the reference validator (jsonschema, with its format checker's optional
dependencies) costs about 0.1 s of start-up, so the compiled validator answers first;
only a file it does not pass is checked again by the reference, whose verdict and
message stand. The compiled side matches `pattern` with Python's `re.search`, as the
reference does, so that a text neither engine reads alike (`$` before a final newline,
what `\\s` covers) cannot pass one and fail the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import jsonschema_rs

if TYPE_CHECKING:
    import jsonschema


class OwnSchema:
    """One of the bot's Draft 2020-12 schemas, each validator built on first use."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._compiled: jsonschema_rs.Draft202012Validator | None = None
        self._reference: jsonschema.protocols.Validator | None = None

    def iter_errors(self, data: Any) -> Iterator[jsonschema.ValidationError]:
        """What the reference validator finds in `data`; nothing when the compiled one passes it."""
        if self._passes(data):
            return iter(())
        return self.reference().iter_errors(data)

    def reference(self) -> jsonschema.protocols.Validator:
        if self._reference is None:
            from jsonschema import Draft202012Validator

            self._reference = Draft202012Validator(self.schema)
        return self._reference

    def _passes(self, data: Any) -> bool:
        if self._compiled is None:
            self._compiled = jsonschema_rs.Draft202012Validator(
                self.schema, validate_formats=False, keywords={"pattern": _PythonPattern}
            )
        try:
            return bool(self._compiled.is_valid(data))
        except ValueError:  # not JSON-shaped (e.g. a key that is not a string)
            return False


class _PythonPattern:
    """The `pattern` keyword as the reference reads it: Python's `re.search`."""

    def __init__(self, parent: dict[str, Any], value: str, path: list[Any]) -> None:
        self.pattern = re.compile(value)

    def validate(self, instance: Any) -> None:
        if isinstance(instance, str) and not self.pattern.search(instance):
            raise ValueError(f"{instance!r} does not match {self.pattern.pattern!r}")
