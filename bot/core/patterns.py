"""JSON Schema regexes matched in linear time, by the Rust engine jsonschema-rs uses.

Python's `re` backtracks: `^(a+)+$` against forty `a`s and a `!` runs for minutes and
holds the GIL all along. Every schema keyword that matches a regex (`pattern`,
`patternProperties`, and `additionalProperties` beside it) goes through this module
instead: the `regex` crate guarantees time linear in the text, and jsonschema-rs
translates the JSON Schema (ECMA-262) dialect for it, so the reference validator and
the compiled one read a pattern the same way. What that engine cannot express
(backreferences, lookaround) is refused, never silently matched another way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from bot.core.findings import field_path

if TYPE_CHECKING:  # imported where a reference validator is built: it costs start-up time
    import jsonschema

# The linear-time engine (the `regex` crate), as opposed to fancy-regex, which backtracks.
LINEAR_ENGINE = jsonschema_rs.RegexOptions()


class PatternError(ValueError):
    """A regex the linear-time engine cannot match; says where it is and why."""

    def __init__(self, pattern: str, where: str = "") -> None:
        self.pattern, self.where = pattern, where
        super().__init__(f"{where + ': ' if where else ''}{pattern!r} {why_refused(pattern)}")


def why_refused(pattern: str) -> str:
    try:
        re.compile(pattern)  # compiling only: no text is matched, so no backtracking
    except (re.error, RecursionError, OverflowError):
        return "is not a valid regular expression"
    return (
        "needs a backtracking engine (backreferences such as \\1 and lookaround such as "
        "(?=...) or (?<!...) cannot run in linear time) or is too large; rewrite it, "
        "e.g. split it with allOf and not"
    )


@lru_cache(maxsize=4096)
def _matcher(pattern: str) -> jsonschema_rs.Draft202012Validator:
    try:
        return jsonschema_rs.Draft202012Validator(
            {"pattern": pattern}, pattern_options=LINEAR_ENGINE
        )
    except ValueError:  # jsonschema-rs checks the pattern as a "regex" of its engine
        raise PatternError(pattern) from None


def compile_pattern(pattern: str) -> None:
    """Raises PatternError when the linear-time engine cannot match `pattern`."""
    _matcher(pattern)


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches somewhere in `text` (JSON Schema's unanchored match)."""
    return bool(_matcher(pattern).is_valid(text))


def _usable(pattern: str) -> jsonschema.ValidationError | None:
    """None when `pattern` can be matched; else the error every use of it reports."""
    try:
        compile_pattern(pattern)
    except PatternError as exc:
        return _error(f"the schema's pattern {exc}")
    return None


def _error(message: str) -> jsonschema.ValidationError:
    """The reference's error type; only reference validators, which import it, call this."""
    from jsonschema import ValidationError

    return ValidationError(message)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "string"):
        return
    refused = _usable(pattern)
    if refused is not None:
        yield refused
    elif not search(pattern, instance):
        yield _error(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        refused = _usable(pattern)
        if refused is not None:
            yield refused
            continue
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    extras = sorted(_extras(instance, schema), key=str)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        listed = ", ".join(repr(extra) for extra in extras)
        if "patternProperties" in schema:
            patterns = ", ".join(repr(p) for p in sorted(schema["patternProperties"]))
            verb = "does" if len(extras) == 1 else "do"
            yield _error(f"{listed} {verb} not match any of the regexes: {patterns}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield _error(f"Additional properties are not allowed ({listed} {verb} unexpected)")


def _extras(instance: dict[str, Any], schema: dict[str, Any]) -> Iterator[str]:
    """Keys that neither `properties` nor a usable `patternProperties` regex covers."""
    named = schema.get("properties", {})
    patterns = [p for p in schema.get("patternProperties", {}) if _usable(p) is None]
    for key in instance:
        if key not in named and not any(search(p, key) for p in patterns):
            yield key


_LINEAR_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


def _linear_formats(base: jsonschema.FormatChecker) -> jsonschema.FormatChecker:
    """`base`, with format "regex" meaning what this engine can match (schema checks)."""
    from jsonschema import FormatChecker

    checker = FormatChecker(())
    checker.checkers = dict(base.checkers)
    checker.checks("regex", raises=PatternError)(_compiles)
    return checker


def _compiles(text: object) -> bool:
    if isinstance(text, str):
        compile_pattern(text)
    return True


# The reference validators (jsonschema) are built on first use, not at import: importing
# jsonschema and its format checker's optional dependencies costs ~0.1 s of every start,
# while a run whose objects and schemas are all valid never asks the reference anything.


@lru_cache(maxsize=1)
def linear_draft202012() -> type[jsonschema.protocols.Validator]:
    """Draft 2020-12 (policies, custom schemas) with every regex keyword matched here."""
    import jsonschema

    return _linear(jsonschema.Draft202012Validator)


def _linear(base: type[jsonschema.protocols.Validator]) -> type[jsonschema.protocols.Validator]:
    """`base` with every regex keyword matched here (extend is untyped in jsonschema)."""
    import jsonschema.validators

    extended: type[jsonschema.protocols.Validator]
    extended = jsonschema.validators.extend(base, _LINEAR_KEYWORDS)  # type: ignore[no-untyped-call]
    return extended


class DeferredReference:
    """A Draft 2020-12 reference validator of `schema`, built the first time it is asked."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self._built: jsonschema.protocols.Validator | None = None

    def built(self) -> jsonschema.protocols.Validator:
        if self._built is None:
            self._built = linear_draft202012()(self.schema)
        return self._built

    def iter_errors(self, instance: Any) -> Iterator[jsonschema.ValidationError]:
        return iter(self.built().iter_errors(instance))


@lru_cache(maxsize=1)
def _reference_meta_schema() -> jsonschema.protocols.Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(
        jsonschema.Draft202012Validator.META_SCHEMA,
        format_checker=_linear_formats(jsonschema.Draft202012Validator.FORMAT_CHECKER),
    )


def schema_problem(schema: Any) -> str | None:
    """What makes `schema` invalid Draft 2020-12, its regexes read by this engine; or None.

    The compiled meta-schema answers first: it checks every format the reference
    checks and more, so a schema it passes is one the reference passes too; only a
    schema it refuses pays for the reference's walk, which words the message.
    """
    if _compiled_meta_schema().is_valid(schema):
        return None
    return reference_schema_problem(schema)


def reference_schema_problem(schema: Any) -> str | None:
    """schema_problem by the reference validator alone (what the fast path must agree with)."""
    from jsonschema.exceptions import best_match

    error = best_match(_reference_meta_schema().iter_errors(schema))
    return None if error is None else error.message


def _matchable(pattern: str) -> bool:
    try:
        compile_pattern(pattern)
    except PatternError:
        return False
    return True


_META_SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


@lru_cache(maxsize=1)
def _compiled_meta_schema() -> jsonschema_rs.Draft202012Validator:
    # jsonschema-rs holds the meta-schemas itself: no need to import jsonschema for it.
    return jsonschema_rs.Draft202012Validator(
        {"$ref": _META_SCHEMA_URI},
        validate_formats=True,
        formats={"regex": _matchable},
    )


# Keywords whose value is one subschema, a list of them, or a map of names to them:
# every place a schema can hold a regex that a validator evaluates.
_SUBSCHEMA_KEYWORDS = frozenset(
    {"additionalProperties", "additionalItems", "items", "contains", "not", "if", "then"}
    | {"else", "propertyNames", "unevaluatedItems", "unevaluatedProperties"}
    | {"allOf", "anyOf", "oneOf", "prefixItems"}
)
_SUBSCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
    | {"dependencies"}
)


def regexes_in(schema: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every regex a validator would evaluate in `schema`, with the keyword path to it."""
    if isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from regexes_in(item, (*path, index))
        return
    if not isinstance(schema, dict):
        return
    for keyword, value in schema.items():
        here = (*path, keyword)
        if keyword == "pattern" and isinstance(value, str):
            yield here, value
        if keyword == "patternProperties" and isinstance(value, dict):
            yield from ((here, key) for key in value)
        if keyword in _SUBSCHEMA_KEYWORDS:
            yield from regexes_in(value, here)
        elif keyword in _SUBSCHEMA_MAPS and isinstance(value, dict):
            for name, subschema in value.items():
                yield from regexes_in(subschema, (*here, name))


def uses_keyword(schema: Any, keyword: str) -> bool:
    """Whether `keyword` appears anywhere in the schema (as a key of any mapping)."""
    if isinstance(schema, list):
        return any(uses_keyword(item, keyword) for item in schema)
    if isinstance(schema, dict):
        return keyword in schema or any(uses_keyword(v, keyword) for v in schema.values())
    return False


def regex_refusal(schema: Any) -> str | None:
    """Why some regex of `schema` cannot be matched in linear time; None when all can."""
    for path, pattern in regexes_in(schema):
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            return f"schema.{field_path(path)}: {exc}"
    if uses_keyword(schema, "unevaluatedProperties") and uses_keyword(schema, "patternProperties"):
        # jsonschema decides which keys patternProperties evaluated with Python's own re.
        return (
            "schema: unevaluatedProperties cannot be combined with patternProperties; "
            "use additionalProperties beside patternProperties instead"
        )
    return None
