"""The Cluster port's contract, held by the kubernetes.aio adapter against the real API server."""

from __future__ import annotations

import json

import pytest
from helpers.livecluster import LiveEnv

from bot.clusters import kubeapi
from bot.clusters.directory import ClusterDirectory
from bot.clusters.errors import Conflict, NotFound, UnknownKind
from bot.clusters.ports import Cluster, Resource
from bot.core.manifests import ObjectKey


def _configmap(namespace: str, name: str, value: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"value": value},
    }


async def test_discovery_names_resources_and_their_scope(live_env: LiveEnv) -> None:
    async with ClusterDirectory([live_env.cluster]) as clusters:
        cluster: Cluster = (await clusters.connect("test")).cluster

        assert await cluster.resource("apps/v1", "Deployment") == Resource(
            "apps/v1", "Deployment", "deployments", namespaced=True
        )
        assert await cluster.resource("v1", "Namespace") == Resource(
            "v1", "Namespace", "namespaces", namespaced=False
        )
        assert await cluster.resource("v1", "Gadget") is None
        assert await cluster.resource("nowhere.example.com/v1", "Gadget") is None


async def test_dry_runs_change_nothing_and_real_applies_do(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    key = ObjectKey("", "ConfigMap", ns, "c")
    async with ClusterDirectory([live_env.cluster]) as clusters:
        cluster = (await clusters.connect("test")).cluster

        dry = await cluster.apply(_configmap(ns, "c", "1"), dry_run=True)
        assert dry["data"] == {"value": "1"}
        assert await cluster.read("v1", key) is None
        await cluster.apply(_configmap(ns, "c", "1"), dry_run=False)
        stored = await cluster.read("v1", key)
        assert stored is not None
        assert [m["manager"] for m in stored["metadata"]["managedFields"]] == ["gitops-bot"]
        assert await cluster.delete("v1", key) is True
        assert await cluster.delete("v1", key) is False


async def test_refusals_arrive_as_our_own_exceptions(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    theirs = json.dumps(_configmap(ns, "c", "theirs"))
    live_env.kubectl.apply(theirs, "--server-side", "--field-manager=someone")
    async with ClusterDirectory([live_env.cluster]) as clusters:
        cluster = (await clusters.connect("test")).cluster

        with pytest.raises(Conflict) as conflict:
            await cluster.apply(_configmap(ns, "c", "ours"), dry_run=True)
        assert conflict.value.owners == ('conflict with "someone": .data.value',)
        with pytest.raises(NotFound, match="not found"):
            await cluster.apply(_configmap(f"{ns}-missing", "c", "1"), dry_run=True)
        with pytest.raises(UnknownKind, match="serves no Gadget in v1"):
            await cluster.read("v1", ObjectKey("", "Gadget", ns, "g"))


async def test_listing_by_label_reads_every_page_in_every_namespace(
    live_env: LiveEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kubeapi, "_PAGE", 2)  # five objects: three pages
    ns = live_env.namespace
    for name in ("a", "b", "c", "d", "e"):
        live_env.kubectl.apply(json.dumps(_configmap(ns, name, "1")))
    live_env.kubectl.run("label", "configmap", "a", "b", "c", "d", "-n", ns, "team=blue")
    async with ClusterDirectory([live_env.cluster]) as clusters:
        cluster = (await clusters.connect("test")).cluster

        listed = await cluster.list_labelled("v1", "ConfigMap", ns, "team=blue")
        everywhere = await cluster.list_labelled("v1", "ConfigMap", "", "team=blue")

    assert everywhere == listed  # no other namespace has such objects
    assert sorted(o["metadata"]["name"] for o in listed) == ["a", "b", "c", "d"]
    assert {(o["apiVersion"], o["kind"], o["metadata"]["namespace"]) for o in listed} == {
        ("v1", "ConfigMap", ns)
    }
