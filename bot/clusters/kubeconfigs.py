"""Client configuration for a cluster from its kubeconfig (programs refused) or in-cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes.aio.client import Configuration
from kubernetes.aio.config import ConfigException, load_incluster_config
from kubernetes.aio.config.kube_config import KubeConfigLoader

from bot.clusters.errors import ClusterConfigError
from bot.config.clusters import ClusterSettings
from bot.core.kubeauth import describe, refusals


async def client_configuration(settings: ClusterSettings) -> Configuration:
    """A fresh client configuration; raises ClusterConfigError saying what to fix."""
    configuration = Configuration()
    try:
        if settings.in_cluster:
            load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await _load_kubeconfig(settings, configuration)
    except (ConfigException, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ClusterConfigError(
            f"cluster {settings.name!r}: cannot load its client configuration: {exc}"
        ) from exc
    return configuration


async def _load_kubeconfig(settings: ClusterSettings, configuration: Configuration) -> None:
    assert settings.kubeconfig is not None  # configs.py checks one of the two is set
    data = read_kubeconfig(settings.kubeconfig, settings.name)
    selected_user(data, settings.context)  # a clear error for a context it does not have
    # Checked again here, not only when the settings were loaded: the file may have changed.
    refused = refusals(data, settings.context, settings.allow_exec)
    if refused:
        raise ClusterConfigError(describe(refused[0], settings.name, str(settings.kubeconfig)))
    loader = KubeConfigLoader(  # type: ignore[no-untyped-call]
        config_dict=data,
        active_context=settings.context,
        config_base_path=str(settings.kubeconfig.parent),
    )
    await loader.load_and_set(configuration)  # type: ignore[no-untyped-call]


def read_kubeconfig(path: Path, cluster: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ClusterConfigError(
            f"cluster {cluster!r}: cannot read the kubeconfig {path}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise ClusterConfigError(f"cluster {cluster!r}: {path} is not a kubeconfig")
    return data


def selected_user(data: dict[str, Any], context: str | None) -> dict[str, Any]:
    """The `user` entry the chosen (or current) context points at; {} when it has none."""
    name = context or data.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in data.get("contexts") or []}
    if name not in contexts:
        known = ", ".join(str(c) for c in contexts) or "none"
        raise ClusterConfigError(f"the kubeconfig has no context {name!r} (it has: {known})")
    users = {u.get("name"): u.get("user") or {} for u in data.get("users") or []}
    user = users.get(contexts[name].get("user"), {})
    return user if isinstance(user, dict) else {}
