"""Flux HelmReleases whose chart is in this repository, as units of a preview.

The chart is `spec.chart.spec.chart` (a folder) of a GitRepository `sourceRef`, or a
`chartRef` to a HelmChart of this repository built from such a GitRepository. The values
are what Flux merges: each `valuesFrom` ConfigMap or Secret in the repository, in order
(`valuesKey`, default `values.yaml`; with `targetPath`, one value set at that dotted path),
then `spec.values`; the chart's own values.yaml lies under them, as in `helm template`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import yaml

from bot.core.controllerapply import flux_destination
from bot.core.generated import merged
from bot.core.gitdata import DataObjects, data_objects, deep_merge, describe_missing, lookup
from bot.core.gitopsapps import (
    FLUX_SOURCE_GROUP,
    GitRepositories,
    PreviewUnit,
    declared,
    definition,
    git_repositories,
    git_repository_refusal,
)
from bot.core.identities import RepoIdentity
from bot.core.manifests import Manifest
from bot.core.repoconfig import Environment, EnvironmentSource, SourceType, check_repo_path

HELM_GROUP = "helm.toolkit.fluxcd.io"
# Fields that change what is rendered but are not previewed yet.
_NOT_YET = ("postRenderers",)
_CHART_NOT_YET = ("valuesFiles", "valuesFile")


class _Refused(ValueError):
    """Why the HelmRelease is not previewed."""


def helm_release_units(
    manifests: Iterable[Manifest], identity: RepoIdentity, generated: DataObjects | None = None
) -> tuple[PreviewUnit, ...]:
    """A unit for every HelmRelease in the commit: previewed, or with the reason why not;
    `generated` are the ConfigMaps and Secrets the commit's kustomizations generate."""
    objects = tuple(manifests)
    sources = git_repositories(objects)
    charts = {
        (m.key.namespace, m.key.name): m.body
        for m in objects
        if (m.key.group, m.key.kind) == (FLUX_SOURCE_GROUP, "HelmChart")
    }
    data = merged(data_objects(objects), generated or {})
    context = (identity, sources, charts, data)
    return tuple(
        declared(_unit(m, context), m)
        for m in objects
        if (m.key.group, m.key.kind) == (HELM_GROUP, "HelmRelease")
    )


def _unit(manifest: Manifest, context: tuple[Any, ...]) -> PreviewUnit:
    identity, sources, charts, data = context
    spec = _mapping(manifest.body.get("spec"))
    own_namespace = manifest.key.namespace
    namespace = str(spec.get("targetNamespace") or own_namespace)
    cluster = flux_destination(spec, own_namespace)
    name = f"helmrelease/{own_namespace}/{manifest.key.name}"
    unit = PreviewUnit(
        name, f"{cluster} {namespace}", manifest.source.path, definition=definition(manifest.body)
    )
    try:
        path = _chart_path(spec, own_namespace, identity, (sources, charts), manifest.source.path)
    except _Refused as exc:
        return replace(unit, reason=str(exc))
    try:
        values = _values(spec, own_namespace, data, manifest.source.path)
    except _Refused as exc:
        return replace(unit, reason=str(exc), folders=(path,))
    release = str(spec.get("releaseName") or _default_release(spec, manifest.key.name))
    source = EnvironmentSource(
        SourceType.HELM, release, inline_values=json.dumps(values, sort_keys=True) if values else ""
    )
    env = Environment(name, path, cluster, namespace, False, False, source=source)
    return replace(unit, environment=env)


def _default_release(spec: Mapping[str, Any], name: str) -> str:
    """Flux's default: `[targetNamespace-]name`."""
    target = spec.get("targetNamespace")
    return f"{target}-{name}" if target else name


def _chart_path(
    spec: Mapping[str, Any],
    namespace: str,
    identity: RepoIdentity,
    found: tuple[GitRepositories, Mapping[tuple[str, str], Mapping[str, Any]]],
    near: str,
) -> str:
    """The chart folder; `found` holds the commit's GitRepositories and HelmCharts, and of
    several GitRepositories of one name the one declared nearest `near` counts."""
    sources, charts = found
    if unknown := [field for field in _NOT_YET if spec.get(field)]:
        raise _Refused(f"spec.{unknown[0]} is not previewed yet")
    chart_spec, ref_namespace = _chart_spec(spec, namespace, charts)
    if unknown := [field for field in _CHART_NOT_YET if chart_spec.get(field)]:
        raise _Refused(f"the chart's {unknown[0]} is not previewed yet")
    ref = _mapping(chart_spec.get("sourceRef"))
    if ref.get("kind") in ("HelmRepository", "OCIRepository"):
        raise _Refused(f"its chart comes from a {ref['kind']}, not from this repository")
    if why_not := git_repository_refusal(ref, ref_namespace, identity, sources, near):
        raise _Refused(why_not)
    folder = str(chart_spec.get("chart", "")).strip()
    path = re.sub(r"^\./", "", folder).rstrip("/") or "."
    if not folder or check_repo_path(path):
        raise _Refused(f"the chart {folder!r} is not a folder of this repository")
    return path


def _chart_spec(
    spec: Mapping[str, Any], namespace: str, charts: Mapping[tuple[str, str], Mapping[str, Any]]
) -> tuple[Mapping[str, Any], str]:
    """The chart's spec (chart folder and sourceRef) and the namespace its sourceRef is in."""
    if "chartRef" not in spec:
        return _mapping(_mapping(spec.get("chart")).get("spec")), namespace
    ref = _mapping(spec.get("chartRef"))
    if ref.get("kind") != "HelmChart":
        raise _Refused(
            f"its chartRef is of kind {ref.get('kind', '(missing)')}, not a HelmChart of "
            "this repository"
        )
    key = (str(ref.get("namespace") or namespace), str(ref.get("name", "")))
    chart = charts.get(key)
    if chart is None:
        raise _Refused(f"HelmChart {key[0]}/{key[1]} is not in this repository")
    return _mapping(chart.get("spec")), key[0]


def _values(
    spec: Mapping[str, Any], namespace: str, data: DataObjects, near: str
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for reference in spec.get("valuesFrom") or []:
        merged = deep_merge(merged, _values_from(_mapping(reference), namespace, data, near))
    return deep_merge(merged, _mapping(spec.get("values")))


def _values_from(
    reference: Mapping[str, Any], namespace: str, data: DataObjects, near: str
) -> dict[str, Any]:
    kind, name = str(reference.get("kind", "")), str(reference.get("name", ""))
    found = lookup(data, kind, namespace, name, near)
    if found is None or found.unreadable:
        if reference.get("optional"):
            return {}
        why = found.unreadable if found else describe_missing(kind, namespace, name)
        raise _Refused(f"valuesFrom {kind} {name}: {why}" if found else why)
    key = str(reference.get("valuesKey") or "values.yaml")
    if key not in found.data:
        if reference.get("optional"):
            return {}
        raise _Refused(f"valuesFrom {kind} {name} has no key {key!r}")
    text = found.data[key]
    if target := str(reference.get("targetPath") or ""):
        return _at_path(target, _scalar(text))
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _Refused(f"valuesFrom {kind} {name} key {key!r} is not YAML: {exc}") from None
    return dict(loaded) if isinstance(loaded, Mapping) else {}


def _at_path(path: str, value: Any) -> dict[str, Any]:
    """`a.b.c` as nested mappings holding the value (a `\\.` escapes a dot in a key)."""
    parts = [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", path)]
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return dict(nested)


def _scalar(text: str) -> Any:
    """A targetPath value typed as Helm's `--set` types it: integers, booleans, null."""
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return {"true": True, "false": False, "null": None}.get(text, text)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
