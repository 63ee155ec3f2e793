"""Client configuration for a cluster from its kubeconfig (programs refused) or in-cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.clusters.endpoints import plain_endpoint
from bot.clusters.errors import ClusterConfigError
from bot.clusters.transports import ClientTransport, HttpTransport, Transport
from bot.config.clusters import ClusterSettings
from bot.core.kubeauth import describe, refusals

if TYPE_CHECKING:
    from kubernetes.aio.client import Configuration


async def cluster_transport(settings: ClusterSettings) -> Transport:
    """How requests reach the cluster; raises ClusterConfigError saying what to fix.

    A kubeconfig that logs in with a certificate or a token is read here and its requests
    go out over our own HTTP client; in-cluster settings, and programs the settings allow to
    log in, take the Kubernetes client, which alone knows them.
    """
    if settings.kubeconfig is not None and not settings.in_cluster:
        data = checked_kubeconfig(settings)
        endpoint = plain_endpoint(data, settings.context, settings.kubeconfig.parent)
        if endpoint is not None:
            return HttpTransport(endpoint)
    return ClientTransport(await client_configuration(settings))


async def client_configuration(settings: ClusterSettings) -> Configuration:
    """A fresh client configuration; raises ClusterConfigError saying what to fix."""
    # Imported here: the client costs 0.3-0.4 s, which most kubeconfigs need not pay.
    from kubernetes.aio.client import Configuration
    from kubernetes.aio.config import ConfigException, load_incluster_config

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


def checked_kubeconfig(settings: ClusterSettings) -> dict[str, Any]:
    """The kubeconfig, its chosen context there and no user entry in it refused."""
    assert settings.kubeconfig is not None  # configs.py checks one of the two is set
    data = read_kubeconfig(settings.kubeconfig, settings.name)
    selected_user(data, settings.context)  # a clear error for a context it does not have
    # Checked again here, not only when the settings were loaded: the file may have changed.
    refused = refusals(data, settings.context, settings.allow_exec)
    if refused:
        raise ClusterConfigError(describe(refused[0], settings.name, str(settings.kubeconfig)))
    return data


async def _load_kubeconfig(settings: ClusterSettings, configuration: Configuration) -> None:
    from kubernetes.aio.config.kube_config import KubeConfigLoader

    assert settings.kubeconfig is not None
    data = checked_kubeconfig(settings)
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
