"""Cluster settings: parsed strictly, and kubeconfigs that would run programs refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.clusters.errors import ClusterConfigError
from bot.clusters.kubeconfigs import client_configuration
from bot.config.clusters import ClusterSettings
from bot.config.settings import SettingsError, load_settings


def test_clusters_come_from_the_settings_file_or_a_json_variable(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(
        "clusters:\n  staging:\n    kubeconfig: /etc/kube/staging\n    context: stage\n"
        "  prod:\n    in_cluster: true\n    inventory_namespace: gitops\n"
    )
    from_file = load_settings({"GITOPS_BOT_CONFIG": str(config)})
    from_env = load_settings({"GITOPS_BOT_CLUSTERS": json.dumps({"x": {"in_cluster": True}})})

    assert from_file.cluster("staging") == ClusterSettings(
        "staging", kubeconfig=Path("/etc/kube/staging"), context="stage"
    )
    assert from_file.cluster("prod") == ClusterSettings(
        "prod", in_cluster=True, inventory_namespace="gitops"
    )
    assert from_file.cluster("nope") is None
    assert [c.name for c in from_env.clusters] == ["x"]


@pytest.mark.parametrize(
    ("clusters", "message"),
    [
        ('{"a": {"kubconfig": "/x"}}', "clusters.a: unknown key(s) kubconfig; allowed:"),
        ('{"a": {}}', "clusters.a: give either kubeconfig"),
        ('{"a": {"kubeconfig": "/x", "in_cluster": true}}', "give either kubeconfig"),
        ('{"a": {"kubeconfig": "/x", "allow_exec": "yes"}}', "allow_exec: expected true or false"),
        ('{"a": {"kubeconfig": "/x", "inventory_namespace": "No!"}}', "is not a namespace name"),
        ('{"A": {"in_cluster": true}}', "clusters.A: the name must be lowercase"),
        ("[1]", "expected a mapping of cluster name to settings"),
        ("{", "clusters: not valid JSON"),
    ],
)
def test_mistakes_in_cluster_settings_are_named(clusters: str, message: str) -> None:
    with pytest.raises(SettingsError, match="GITOPS_BOT_CLUSTERS") as caught:
        load_settings({"GITOPS_BOT_CLUSTERS": clusters})
    assert message in str(caught.value)


def _kubeconfig(tmp_path: Path, user: dict[str, object]) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


async def test_exec_plugins_are_refused_before_anything_runs(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "touch",
            "args": [str(ran)],
            "interactiveMode": "Never",
        }
    }
    path = _kubeconfig(tmp_path, exec_user)

    with pytest.raises(ClusterConfigError, match=r"exec credential plugin \(command 'touch'\)"):
        await client_configuration(ClusterSettings("a", kubeconfig=path))
    assert not ran.exists()


async def test_exec_plugins_run_when_the_settings_allow_them(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.sh"
    status = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": "from-the-plugin"},
    }
    plugin.write_text(f"#!/bin/sh\necho '{json.dumps(status)}'\n")
    plugin.chmod(0o755)
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    settings = ClusterSettings("a", kubeconfig=_kubeconfig(tmp_path, exec_user), allow_exec=True)

    configuration = await client_configuration(settings)

    assert configuration.api_key["BearerToken"].endswith("from-the-plugin")


async def test_a_missing_context_or_file_is_a_clear_error(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path, {"token": "t"})
    with pytest.raises(ClusterConfigError, match=r"no context 'other' \(it has: ctx\)"):
        await client_configuration(ClusterSettings("a", kubeconfig=path, context="other"))
    with pytest.raises(ClusterConfigError, match="cannot read the kubeconfig"):
        await client_configuration(ClusterSettings("a", kubeconfig=tmp_path / "missing"))
