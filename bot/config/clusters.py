"""Server settings for clusters: a name -> kubeconfig and context, or in-cluster config."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from bot.core.kubeauth import describe, refusals

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ClusterSettingsError(ValueError):
    """The `clusters` setting cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    kubeconfig: Path | None = None
    context: str | None = None  # the kubeconfig's current-context when not set
    in_cluster: bool = False  # the service account of the pod the bot runs in
    allow_exec: bool = False  # kubeconfig `exec` plugins and auth providers run programs: opt in
    inventory_namespace: str = "gitops-bot"  # where the per-environment inventories live
    concurrency: int = 8  # requests in flight to this cluster at once
    timeout_seconds: float = 30.0  # per request


_KEYS = {f.name for f in fields(ClusterSettings)} - {"name"}


def parse_clusters(value: Any) -> tuple[ClusterSettings, ...]:
    """Clusters from a mapping of name -> settings, or the same as a JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ClusterSettingsError(f"clusters: not valid JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise ClusterSettingsError(
            'clusters: expected a mapping of cluster name to settings, e.g. {"staging": '
            '{"kubeconfig": "/etc/gitops-bot/staging.kubeconfig", "context": "staging"}}'
        )
    return tuple(_cluster(str(name), spec) for name, spec in sorted(value.items()))


def _cluster(name: str, spec: Any) -> ClusterSettings:
    where = f"clusters.{name}"
    if not _NAME.match(name):
        raise ClusterSettingsError(f"{where}: the name must be lowercase letters, digits, -_.")
    if not isinstance(spec, Mapping):
        raise ClusterSettingsError(f"{where}: expected a mapping of settings")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise ClusterSettingsError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}"
        )
    settings = ClusterSettings(
        name=name,
        kubeconfig=Path(str(spec["kubeconfig"])) if spec.get("kubeconfig") else None,
        context=str(spec["context"]) if spec.get("context") else None,
        in_cluster=_flag(where, spec, "in_cluster"),
        allow_exec=_flag(where, spec, "allow_exec"),
        inventory_namespace=str(spec.get("inventory_namespace", "gitops-bot")),
        concurrency=_number(where, spec, "concurrency", 8, int),
        timeout_seconds=_number(where, spec, "timeout_seconds", 30.0, float),
    )
    _check(where, settings)
    _check_kubeconfig(settings)
    return settings


def _check(where: str, settings: ClusterSettings) -> None:
    if settings.in_cluster == (settings.kubeconfig is not None):
        raise ClusterSettingsError(
            f"{where}: give either kubeconfig (a file path, with an optional context) "
            "or in_cluster: true"
        )
    if settings.in_cluster and settings.context:
        raise ClusterSettingsError(f"{where}: context only applies to a kubeconfig")
    if not _NAMESPACE.match(settings.inventory_namespace):
        raise ClusterSettingsError(
            f"{where}.inventory_namespace: {settings.inventory_namespace!r} is not a namespace name"
        )
    if settings.concurrency < 1 or settings.timeout_seconds <= 0:
        raise ClusterSettingsError(f"{where}: concurrency and timeout_seconds must be positive")


def _check_kubeconfig(settings: ClusterSettings) -> None:
    """Refuse a kubeconfig that would run a program, as soon as the settings are loaded.

    A file that cannot be read yet is reported when the bot connects (kubeconfigs.py)."""
    if settings.kubeconfig is None:
        return
    try:
        config = yaml.safe_load(settings.kubeconfig.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return
    if isinstance(config, Mapping):
        refused = refusals(config, settings.context, settings.allow_exec)
        if refused:
            raise ClusterSettingsError(
                describe(refused[0], settings.name, str(settings.kubeconfig))
            )


def _flag(where: str, spec: Mapping[str, Any], key: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise ClusterSettingsError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def _number(where: str, spec: Mapping[str, Any], key: str, default: float, kind: type) -> Any:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClusterSettingsError(f"{where}.{key}: expected a number, got {value!r}")
    return kind(value)
