"""A CRD's openAPIV3Schema made a strict JSON Schema that rejects what the API server rejects.

The API server reads a custom resource through the CRD's structural schema: with
`fieldValidation=Strict` (kubectl's default) a field the schema does not know is an
error, unless `x-kubernetes-preserve-unknown-fields` keeps unknown fields at that level.
A null value in a field that is not `nullable` is dropped (pruned) rather than refused,
so it only fails when the field is required and has no default; defaults are applied
before validation, so a required field with a default may be left out. `metadata` at the
root is an ObjectMeta, whatever the CRD says, and an embedded resource gets
apiVersion, kind and metadata. tests/test_crd_parity.py holds these rules to a real
API server's verdicts.

Not modelled (the cluster's dry run still checks them): CEL rules
(`x-kubernetes-validations`), formats, label syntax and list-type map keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"
DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = f"{DEFINITIONS_URI}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# What the API server requires of a custom resource's name: an RFC 1123 subdomain.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

# OpenAPI v3 keywords that mean the same in JSON Schema 2020-12 and are copied as they are.
_VALUE_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "multipleOf",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
    }
)
_JUNCTORS = ("allOf", "anyOf", "oneOf")
_NON_EMPTY_STRING = {"type": "string", "minLength": 1}
_NAMES = ("name", "generateName")  # all of metadata a CRD's schema may narrow


def strict_schema(openapi: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema for objects of a CRD version whose openAPIV3Schema is `openapi`."""
    root = {"$schema": DRAFT, **_node(openapi, strict=True)}  # if/else, $ref beside keys
    properties = root.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = _root_metadata(openapi)
    return root


def _root_metadata(openapi: Mapping[str, Any]) -> dict[str, Any]:
    """ObjectMeta, plus what the CRD may add: constraints on name and generateName only."""
    declared = ((openapi.get("properties") or {}).get("metadata") or {}).get("properties") or {}
    name = {"pattern": DNS_SUBDOMAIN, "maxLength": 253}
    narrowed = {key: _node(declared[key], True) for key in _NAMES if key in declared}
    narrowed["name"] = {"allOf": [name, narrowed["name"]]} if "name" in narrowed else name
    return {"$ref": OBJECT_META, "properties": narrowed}


def _node(schema: Mapping[str, Any], strict: bool) -> dict[str, Any]:
    """One schema node; `strict` is False inside allOf/anyOf/oneOf/not, which only
    add value checks to the fields their node declares."""
    out = {key: value for key, value in schema.items() if key in _VALUE_KEYWORDS}
    _exclusive_bounds(schema, out)
    if schema.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True  # the API server refuses a duplicate in a set
    if isinstance(schema.get("items"), Mapping):
        out["items"] = _nullable(schema["items"], _node(schema["items"], strict), False)
    _junctors(schema, out)
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    _object_fields(schema, out, strict)
    return out


def _exclusive_bounds(schema: Mapping[str, Any], out: dict[str, Any]) -> None:
    """OpenAPI v3.0 says exclusiveMinimum: true beside minimum; JSON Schema names the bound."""
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if schema.get(flag) is True and bound in schema:
            out[flag] = out.pop(bound)


def _junctors(schema: Mapping[str, Any], out: dict[str, Any]) -> None:
    int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
    for junctor in _JUNCTORS:
        branches = [b for b in schema.get(junctor) or [] if isinstance(b, Mapping)]
        if int_or_string and all(set(b) <= {"type"} for b in branches):
            continue  # the anyOf [integer, string] that int-or-string spells out
        if branches:
            out[junctor] = [_node(branch, strict=False) for branch in branches]
    if isinstance(schema.get("not"), Mapping):
        out["not"] = _node(schema["not"], strict=False)


def _object_fields(schema: Mapping[str, Any], out: dict[str, Any], strict: bool) -> None:
    _properties(schema, out, strict)
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        out["additionalProperties"] = _nullable(additional, _node(additional, strict), True)
    elif isinstance(additional, bool):
        out["additionalProperties"] = additional
    elif strict and _is_object(schema) and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False  # what the API server would prune, Strict refuses
    if schema.get("x-kubernetes-embedded-resource"):
        _embedded_resource(out)


def _properties(schema: Mapping[str, Any], out: dict[str, Any], strict: bool) -> None:
    """Declared fields; a required field with a default is filled in before validation."""
    properties = schema.get("properties") or {}
    required = [name for name in schema.get("required") or [] if isinstance(name, str)]
    defaulted = {name for name, sub in properties.items() if "default" in (sub or {})}
    if properties:
        out["properties"] = {
            name: _property(sub or {}, strict, name in required and name not in defaulted)
            for name, sub in properties.items()
        }
    if kept := [name for name in required if name not in defaulted]:
        out["required"] = kept


def _property(schema: Mapping[str, Any], strict: bool, required: bool) -> dict[str, Any]:
    # A null in a field that is not required is pruned; in a required one it is missing.
    return _nullable(schema, _node(schema, strict), not required)


def _nullable(schema: Mapping[str, Any], node: dict[str, Any], pruned: bool) -> dict[str, Any]:
    """`node`, letting null through where the API server keeps or prunes it."""
    if not (schema.get("nullable") or pruned):
        return node
    return {"if": {"type": "null"}, "else": node}


def _embedded_resource(out: dict[str, Any]) -> None:
    """An embedded object is a resource of its own: apiVersion and kind are required."""
    properties = out.setdefault("properties", {})
    properties["apiVersion"] = _NON_EMPTY_STRING
    properties["kind"] = _NON_EMPTY_STRING
    properties["metadata"] = {"$ref": OBJECT_META}
    out["required"] = sorted({*out.get("required", []), "apiVersion", "kind"})


def _is_object(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "object" or "properties" in schema
