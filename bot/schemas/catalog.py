"""Kubernetes JSON schemas from the kubernetes-validate package, compiled once and cached."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.crdschemas import DEFINITIONS_URI
from bot.core.customschemas import CustomSchema
from bot.core.patterns import LINEAR_ENGINE, linear_draft202012, regex_refusal
from bot.core.schemas import ObjectValidator

if TYPE_CHECKING:  # the reference validator is imported when it first has to answer
    import jsonschema
    import referencing

try:  # compiled validator, ~100x faster on valid objects; see FastPathValidator
    import jsonschema_rs
except ImportError:  # pragma: no cover - the reference validator alone gives the same findings
    jsonschema_rs = None  # type: ignore[assignment]


def _package_folder(name: str) -> Path:
    """Where an installed package's files are, found without importing it: importing
    kubernetes_validate imports its own validator (jsonschema), which costs start-up."""
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the package {name} is not installed", name=name)
    return Path(next(iter(spec.submodule_search_locations)))


_SCHEMAS = _package_folder("kubernetes_validate") / "kubernetes-json-schema"
_DEFINITIONS_URI = DEFINITIONS_URI  # what the schemas' $refs name


class UnsupportedKubernetesVersion(ValueError):
    pass


def supported_versions() -> list[str]:
    found = {
        m.group(1) for e in _SCHEMAS.iterdir() if (m := re.match(r"v(1\.\d+)\.0-local$", e.name))
    }
    return sorted(found, key=lambda v: int(v.split(".")[1]))


class KubernetesSchemaCatalog:
    """Schemas for one Kubernetes minor version; strict ones reject unknown fields."""

    def __init__(self, kubernetes_version: str, strict: bool = True, fast: bool = True) -> None:
        if kubernetes_version not in supported_versions():
            raise UnsupportedKubernetesVersion(
                f"schemas for Kubernetes {kubernetes_version} are not available; supported: "
                f"{', '.join(supported_versions())} (set kubernetes_version in .gitops-bot.yaml)"
            )
        self.kubernetes_version = kubernetes_version
        self._folder = _SCHEMAS / f"v{kubernetes_version}.0-local{'-strict' if strict else ''}"
        self._validators: dict[tuple[str, str], ObjectValidator | None] = {}
        self._registry: referencing.Registry[Any] | None = None
        self._definitions_json: dict[str, Any] | None = None
        self._fast = fast and jsonschema_rs is not None
        self._compiled_registry: jsonschema_rs.Registry | None = None
        self._custom: dict[str, ObjectValidator] = {}  # by schema digest
        self._groups: frozenset[str] | None = None

    def validator_for(self, api_version: str, kind: str) -> ObjectValidator | None:
        key = (api_version, kind)
        if key not in self._validators:
            self._validators[key] = self._compile(api_version, kind)
        return self._validators[key]

    def _compile(self, api_version: str, kind: str) -> ObjectValidator | None:
        group, _, version = api_version.rpartition("/")
        short_group = group.split(".", 1)[0]
        name = f"{kind.lower()}-{short_group + '-' if short_group else ''}{version}.json"
        entry = self._folder / name
        if not re.fullmatch(r"[a-z0-9.-]+", name) or not entry.is_file():
            return None
        schema = json.loads(entry.read_text())
        gvk = schema.get("x-kubernetes-group-version-kind") or []
        if not any(g.get("kind") == kind and g.get("group", "") == group for g in gvk):
            return None  # a sub-structure such as DeploymentSpec, or another group's kind
        if not self._fast:
            return self._reference(schema)
        return FastPathValidator(lambda: self._reference(schema), self._compiled(schema))

    def _reference(self, schema: dict[str, Any]) -> jsonschema.protocols.Validator:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(schema, registry=self._definitions())

    def custom_validator(self, schema: CustomSchema) -> ObjectValidator:
        """A custom resource's schema, compiled like the built-in ones; its refs may name
        the Kubernetes definitions (ObjectMeta). Kept by content: CRDs repeat across plans."""
        if schema.problem:
            return UnusableSchema(ValueError(schema.problem))
        if schema.digest not in self._custom:
            from jsonschema import SchemaError  # a custom schema is checked by the reference

            try:
                self._custom[schema.digest] = self._compile_custom(dict(schema.schema))
            except (SchemaError, ValueError) as exc:
                self._custom[schema.digest] = UnusableSchema(exc)
        return self._custom[schema.digest]

    def _compile_custom(self, contents: dict[str, Any]) -> ObjectValidator:
        refusal = regex_refusal(contents)  # CRDs are written for RE2, so this is rare
        if refusal is not None:
            raise ValueError(refusal)
        validator = linear_draft202012()
        validator.check_schema(contents)
        reference = validator(contents, registry=self._definitions())
        if not self._fast:
            return reference
        return FastPathValidator(lambda: reference, self._compiled(contents))

    def serves_group(self, group: str) -> bool:
        if self._groups is None:
            definitions = self._definitions_document()
            self._groups = frozenset(
                gvk.get("group", "")
                for definition in definitions["$defs"].values()
                for gvk in definition.get("x-kubernetes-group-version-kind") or []
            )
        return group in self._groups

    def _compiled(self, schema: dict[str, Any]) -> Any:
        if self._compiled_registry is None:
            definitions = self._definitions_document()
            self._compiled_registry = jsonschema_rs.Registry([(_DEFINITIONS_URI, definitions)])
        # Formats are annotations only, as in the reference validator (no format checker).
        return jsonschema_rs.validator_for(
            schema,
            registry=self._compiled_registry,
            validate_formats=False,
            pattern_options=LINEAR_ENGINE,
        )

    def _definitions(self) -> referencing.Registry[Any]:
        """The definitions for the reference validator (referencing: imported when needed)."""
        if self._registry is None:
            import referencing

            resource = referencing.Resource.from_contents(self._definitions_document())
            self._registry = resource @ referencing.Registry()
        return self._registry

    def _definitions_document(self) -> dict[str, Any]:
        if self._definitions_json is None:
            self._definitions_json = json.loads((self._folder / "_definitions.json").read_text())
        return self._definitions_json


class FastPathValidator:
    """The compiled validator says "valid"; the reference validator says everything else.

    Most objects are valid, and jsonschema_rs decides that ~100x faster than jsonschema.
    Whenever it does not answer "valid" (an error, or a value JSON cannot hold such as an
    integer key), the reference validator lists the errors, so every finding and message
    is the reference's own. tests/test_bench_equivalence.py holds the two to the same
    verdicts on a generated corpus with broken objects in it.
    """

    def __init__(
        self,
        reference: Callable[[], jsonschema.protocols.Validator],
        compiled: jsonschema_rs.Draft202012Validator,
    ) -> None:
        self._build_reference = reference  # built when first asked: most runs never ask
        self._reference: jsonschema.protocols.Validator | None = None
        self.compiled = compiled

    @property
    def reference(self) -> jsonschema.protocols.Validator:
        if self._reference is None:
            self._reference = self._build_reference()
        return self._reference

    def iter_errors(self, instance: Any) -> Iterable[jsonschema.ValidationError]:
        try:
            if self.compiled.is_valid(instance):
                return ()
        except ValueError:  # not JSON-shaped (e.g. a key that is not a string)
            pass
        return self.reference.iter_errors(instance)


class UnusableSchema:
    """A custom schema that cannot be compiled: each object it should check says so."""

    def __init__(self, error: Exception) -> None:
        reason = getattr(error, "message", None) or str(error).splitlines()[0]
        self.message = f"the schema cannot be used ({reason}); fix or replace it"

    def iter_errors(self, instance: Any) -> Iterable[jsonschema.ValidationError]:
        from jsonschema import ValidationError

        return (ValidationError(self.message),)


@cache
def catalog_for(kubernetes_version: str) -> KubernetesSchemaCatalog:
    """One catalog per version per process: the definitions file is large."""
    return KubernetesSchemaCatalog(kubernetes_version)
