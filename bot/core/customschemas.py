"""Schemas for custom resources, by (apiVersion, kind), each with the source that gave it."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.crdschemas import strict_schema
from bot.core.manifests import Manifest

Kind = tuple[str, str]  # (apiVersion, kind)
_CRD_GROUP = "apiextensions.k8s.io"
# A CRD of apiextensions.k8s.io/v1beta1 may leave the schema out: then nothing is pruned.
_ANYTHING = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


@dataclass(frozen=True)
class CustomSchema:
    """A strict JSON Schema for one custom kind, and where it came from (for findings)."""

    schema: Mapping[str, Any] = field(repr=False, compare=False)
    source: str  # e.g. "CRD in crds/foo.yaml", "cluster staging", "catalog /srv/schemas"
    digest: str = ""  # identifies the schema's content, so its compiled form can be reused
    problem: str = ""  # why the schema cannot be used (a schema file that is not JSON)

    @classmethod
    def of(cls, schema: Mapping[str, Any], source: str) -> CustomSchema:
        text = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        return cls(schema, source, hashlib.sha256(text.encode()).hexdigest())


class SchemaLookup(Protocol):
    """Where custom resource schemas are looked up: a dict, a folder, several in order."""

    def get(self, key: Kind, /) -> CustomSchema | None: ...


@dataclass(frozen=True)
class FirstFound:
    """Several lookups in order of truth: the first that knows a kind answers for it."""

    lookups: tuple[SchemaLookup, ...]

    def get(self, key: Kind, /) -> CustomSchema | None:
        return next((s for lookup in self.lookups if (s := lookup.get(key)) is not None), None)


NO_SCHEMAS: Mapping[Kind, CustomSchema] = {}


def crd_schemas(manifests: Iterable[Manifest]) -> dict[Kind, CustomSchema]:
    """Schemas the CustomResourceDefinitions among `manifests` supply, named by their files."""
    found: dict[Kind, CustomSchema] = {}
    for manifest in manifests:
        if manifest.key.kind == "CustomResourceDefinition" and manifest.key.group == _CRD_GROUP:
            found |= schemas_of_crd(manifest.body, f"CRD in {manifest.source.path}")
    return found


def schemas_of_crd(crd: Mapping[str, Any], source: str) -> dict[Kind, CustomSchema]:
    """One schema per served version of a CRD (apiextensions.k8s.io v1 or v1beta1)."""
    spec = crd.get("spec")
    if not isinstance(spec, Mapping):
        return {}
    group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
    if not (isinstance(group, str) and isinstance(kind, str)):
        return {}
    shared = (spec.get("validation") or {}).get("openAPIV3Schema")  # v1beta1
    found = {}
    for version in _served_versions(spec):
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or shared or _ANYTHING
        if isinstance(schema, Mapping):
            found[(f"{group}/{version['name']}", kind)] = CustomSchema.of(
                strict_schema(schema), source
            )
    return found


def _served_versions(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    versions = [v for v in spec.get("versions") or [] if isinstance(v, Mapping)]
    if not versions and isinstance(spec.get("version"), str):  # v1beta1's single version
        versions = [{"name": spec["version"]}]
    return [v for v in versions if isinstance(v.get("name"), str) and v.get("served", True)]


def catalog_path(key: Kind) -> str | None:
    """A kind's file in kubeconform's layout, `{group}/{kind}_{version}.json` (kind in lower
    case, as the public CRDs catalogs name them); None for a name no such file can have."""
    api_version, kind = key
    group, _, version = api_version.rpartition("/")
    if not (_NAME_PART.fullmatch(group) and _NAME_PART.fullmatch(version)):
        return None
    if not _NAME_PART.fullmatch(kind):
        return None
    return f"{group}/{kind.lower()}_{version}.json"


def catalog_schema(data: bytes, source: str) -> CustomSchema:
    """A schema file of a folder in kubeconform's layout: JSON Schema, used as it is."""
    try:
        schema = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return CustomSchema({}, source, problem=f"the file is not JSON: {exc}")
    if not isinstance(schema, dict):
        return CustomSchema({}, source, problem="the file does not hold a JSON object")
    return CustomSchema.of(schema, source)


_NAME_PART = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?")
