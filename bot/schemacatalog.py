"""Kubernetes JSON schemas from the kubernetes-validate package, compiled once and cached."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

_SCHEMAS = resources.files("kubernetes_validate") / "kubernetes-json-schema"


class UnsupportedKubernetesVersion(ValueError):
    pass


def supported_versions() -> list[str]:
    found = {
        m.group(1) for e in _SCHEMAS.iterdir() if (m := re.match(r"v(1\.\d+)\.0-local$", e.name))
    }
    return sorted(found, key=lambda v: int(v.split(".")[1]))


class KubernetesSchemaCatalog:
    """Schemas for one Kubernetes minor version; strict ones reject unknown fields."""

    def __init__(self, kubernetes_version: str, strict: bool = True) -> None:
        if kubernetes_version not in supported_versions():
            raise UnsupportedKubernetesVersion(
                f"schemas for Kubernetes {kubernetes_version} are not available; supported: "
                f"{', '.join(supported_versions())} (set kubernetes_version in .gitops-bot.yaml)"
            )
        self.kubernetes_version = kubernetes_version
        self._folder = _SCHEMAS / f"v{kubernetes_version}.0-local{'-strict' if strict else ''}"
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator | None] = {}
        self._registry: referencing.Registry[Any] | None = None

    def validator_for(self, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
        key = (api_version, kind)
        if key not in self._validators:
            self._validators[key] = self._compile(api_version, kind)
        return self._validators[key]

    def _compile(self, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
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
        return jsonschema.Draft202012Validator(schema, registry=self._definitions())

    def _definitions(self) -> referencing.Registry[Any]:
        if self._registry is None:
            definitions = json.loads((self._folder / "_definitions.json").read_text())
            resource = referencing.Resource.from_contents(definitions)
            self._registry = resource @ referencing.Registry()
        return self._registry


@cache
def catalog_for(kubernetes_version: str) -> KubernetesSchemaCatalog:
    """One catalog per version per process: the definitions file is large."""
    return KubernetesSchemaCatalog(kubernetes_version)
