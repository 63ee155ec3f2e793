"""Policy schemas checked by jsonschema-rs, only where that cannot change a verdict."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard

from bot.core.patterns import LINEAR_ENGINE, DeferredReference, linear_draft202012
from bot.core.policies import Policy

if TYPE_CHECKING:  # imported by the reference validators themselves, when first built
    import jsonschema

try:  # compiled validator; without it every policy keeps the reference validator
    import jsonschema_rs
except ImportError:  # pragma: no cover - the reference alone gives the same findings
    jsonschema_rs = None  # type: ignore[assignment]

# Structure: keywords that only pick parts of the object and combine verdicts. Both
# implementations read them the same way; tests/test_policy_fast_path.py holds them to it.
_ONE_SCHEMA = frozenset(
    {"additionalProperties", "items", "not", "if", "then", "else", "propertyNames"}
)
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs"})
# `required` is a list of names (objects have string keys); regexes are matched by the
# same engine on both sides: the reference's keywords call jsonschema-rs (core/patterns).
_NATIVE_ASSERTIONS = frozenset({"required", "pattern"})
# Assertions on values, where the two can differ: NaN and infinity are numbers only in
# Python, 1 and 1.0 compare equal or not. jsonschema's own code decides these, called
# back from jsonschema-rs, so the verdict is the reference's by construction.
_DELEGATED = frozenset(
    {
        "type",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "uniqueItems",
        "dependentRequired",
    }
)
_EQUALITY = frozenset({"const", "enum"})  # native for strings, booleans and null only
# Annotations: neither implementation asserts them (formats are not checked by either).
_ANNOTATIONS = frozenset(
    {"$comment", "title", "description", "default", "examples", "deprecated", "format"}
    | {"readOnly", "writeOnly"}
)


# What a policy's reference can be: jsonschema's validator, or one built when first asked.
Reference: TypeAlias = "DeferredReference | jsonschema.protocols.Validator"


class _Unsupported(Exception):
    """A keyword or reference the fast path does not cover; the reference alone decides."""


def with_fast_path(policy: Policy) -> Policy:
    """The policy with a FastPathPolicyValidator where one is safe, else unchanged."""
    reference = policy.validator
    if jsonschema_rs is None or not _is_draft202012(reference):
        return policy  # the keyword tables below are those of Draft 2020-12
    try:
        fast = FastPathPolicyValidator(reference, delegated_keywords(reference.schema))
    except (_Unsupported, ValueError, jsonschema_rs.ReferencingError):
        return policy  # ValueError: jsonschema-rs refuses the schema; jsonschema accepted it
    return replace(policy, validator=fast)


def _is_draft202012(validator: object) -> TypeGuard[Reference]:
    """A reference validator of this Draft (built or not), whose `schema` can be compiled."""
    if isinstance(validator, DeferredReference):
        return True  # checked without importing jsonschema, which a built one needs
    return isinstance(validator, linear_draft202012())


def delegated_keywords(schema: Any) -> frozenset[str]:
    """The keywords jsonschema decides inside the compiled check.

    Raises _Unsupported where a keyword or a reference is outside what the tables cover.
    """
    defs = schema.get("$defs", {}) if isinstance(schema, dict) else {}
    used = list(_keyword_uses(schema, defs))
    delegated = {keyword for keyword, _ in used if keyword in _DELEGATED}
    if not all(_plain_value(value) for keyword, value in used if keyword in _EQUALITY):
        delegated |= {keyword for keyword, _ in used if keyword in _EQUALITY}
    return frozenset(delegated)


def _keyword_uses(schema: Any, defs: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every (keyword, value) in `schema` and its subschemas."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise _Unsupported("not a schema")
    for keyword, value in schema.items():
        yield keyword, value
        if keyword in _ONE_SCHEMA:
            yield from _keyword_uses(value, defs)
        elif keyword in _SCHEMA_LISTS:
            for subschema in value:
                yield from _keyword_uses(subschema, defs)
        elif keyword in _SCHEMA_MAPS:
            for subschema in value.values():
                yield from _keyword_uses(subschema, defs)
        elif keyword == "$ref":
            _check_reference(value, defs)
        elif keyword not in _DELEGATED | _EQUALITY | _NATIVE_ASSERTIONS | _ANNOTATIONS:
            raise _Unsupported(keyword)


def _check_reference(reference: Any, defs: Mapping[str, Any]) -> None:
    """Only the root or one of its $defs: every schema a reference reaches is walked."""
    if reference == "#":
        return
    name = reference.removeprefix("#/$defs/") if isinstance(reference, str) else None
    if name is None or name == reference or name not in defs or any(c in name for c in "/~%"):
        raise _Unsupported(f"$ref {reference!r}")


def _plain_value(value: Any) -> bool:
    """Strings, booleans and null, also in lists and maps: equal in both or in neither."""
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, list):
        return all(_plain_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_value(v) for k, v in value.items())
    return False


def _built(reference: Reference) -> jsonschema.protocols.Validator:
    """The reference validator itself, for jsonschema's keyword code to run on."""
    return reference.built() if isinstance(reference, DeferredReference) else reference


class FastPathPolicyValidator:
    """jsonschema-rs says "valid"; the reference validator says everything else.

    Unlike FastPathValidator for the Kubernetes schemas, a policy may use any keyword,
    so only the structure is left to jsonschema-rs and the value assertions that could
    differ are jsonschema's own code (`delegated`). Should that code raise, the compiled
    verdict is not trusted (jsonschema-rs counts an exception as a failed keyword, which
    under `not` would read as a pass) and the reference runs and raises as it would.
    """

    def __init__(self, reference: Reference, delegated: Iterable[str]):
        self.reference = reference
        self._state = threading.local()
        if not isinstance(reference.schema, dict):
            raise _Unsupported("a boolean schema")  # policy files hold objects; never here
        keywords = {name: self._delegate(name) for name in delegated}
        self.compiled = jsonschema_rs.Draft202012Validator(
            reference.schema,
            validate_formats=False,
            keywords=keywords,
            offline=True,
            pattern_options=LINEAR_ENGINE,
        )

    def iter_errors(self, instance: Any) -> Iterable[jsonschema.ValidationError]:
        self._state.raised = False
        try:
            if self.compiled.is_valid(instance) and not self._state.raised:
                return ()
        except ValueError:  # not JSON-shaped (e.g. a key that is not a string)
            pass
        return self.reference.iter_errors(instance)

    def _delegate(self, keyword: str) -> type:
        check = linear_draft202012().VALIDATORS[keyword]
        reference, state = _built(self.reference), self._state

        class Delegated:
            def __init__(self, parent: dict[str, Any], value: Any, path: list[Any]) -> None:
                self.parent, self.value = parent, value

            def validate(self, instance: Any) -> None:
                try:
                    error = next(iter(check(reference, self.value, instance, self.parent)), None)
                except Exception:
                    state.raised = True
                    raise
                if error is not None:
                    raise ValueError(error.message)

        return Delegated
