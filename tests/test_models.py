"""Manifests, the repository config and diffs: the pure data the plan is made of."""

from __future__ import annotations

import pytest
from helpers.manifests import CONFIG, configmap, deployment

from bot.core.diffs import Action, compare, normalise
from bot.core.manifests import ObjectKey, SourceFile, load_manifests
from bot.core.repoconfig import ConfigError, parse_config


def load(text: str, namespace: str = "shop") -> tuple[list[str], list[str]]:
    result = load_manifests([SourceFile("f.yaml", text.encode())], namespace)
    return [str(m.key) for m in result.manifests], [f"{f.line}:{f.rule}" for f in result.findings]


def test_objects_keep_file_and_line_and_get_the_default_namespace() -> None:
    text = (
        deployment()
        + "---\n"
        + configmap()
        + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    )
    result = load_manifests([SourceFile("deploy/all.yaml", text.encode())], "shop")
    assert [(str(m.key), str(m.source)) for m in result.manifests] == [
        ("Deployment.apps shop/web", "deploy/all.yaml:1"),
        ("ConfigMap shop/settings", "deploy/all.yaml:20"),
        ("Namespace shop", "deploy/all.yaml:27"),
    ]
    assert result.manifests[0].body["metadata"]["namespace"] == "shop"


def test_explicit_namespace_wins_and_lists_are_unpacked() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: other}}\n"
        "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n"
    )
    assert load(text) == (["ConfigMap other/a", "ConfigMap shop/b"], [])


@pytest.mark.parametrize(
    ("text", "finding"),
    [
        ("kind: ConfigMap\nmetadata: {name: a}\n", "1:manifest.shape"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n", "1:manifest.shape"),
        ("- just\n- a list\n", "1:manifest.not-object"),
        (configmap("a") + "---\n" + configmap("a"), "8:manifest.duplicate-object"),
    ],
)
def test_malformed_objects_are_findings_with_lines(text: str, finding: str) -> None:
    assert finding in load(text)[1]


def test_crd_scope_makes_custom_kinds_cluster_scoped() -> None:
    crd = (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: tenants.example.com}\n"
        "spec: {group: example.com, scope: Cluster, names: {kind: Tenant, plural: tenants}}\n"
    )
    keys, _ = load(crd + "---\napiVersion: example.com/v1\nkind: Tenant\nmetadata: {name: t}\n")
    assert "Tenant.example.com t" in keys


def test_config_defaults_and_values() -> None:
    config = parse_config(CONFIG)
    [env] = config.environments
    assert (env.name, env.path, env.cluster, env.namespace, env.apply_on_merge, env.prune) == (
        "prod",
        "deploy",
        "main",
        "shop",
        True,
        True,
    )
    assert config.kubernetes_version == "1.33"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("environments: {}\n", "environments: {} should be non-empty"),
        (
            "environments:\n  prod: {path: d, cluster: c, aply_on_merge: true}\n",
            "unknown key(s) 'aply_on_merge' (did you mean 'apply_on_merge'?)",
        ),
        ("environments:\n  prod: {path: d}\n", "'cluster' is a required property"),
        (
            "environments:\n  prod: {path: d, cluster: c, prune: yes-please}\n",
            "environments.prod.prune: 'yes-please' is not of type 'boolean'",
        ),
        ("environments:\n  Prod: {path: d, cluster: c}\n", "'Prod' must be lowercase"),
        (
            "kubernetes_version: 1.33\nenvironments:\n  p: {path: d, cluster: c}\n",
            "is not of type 'string'",
        ),
        ("environments: [\n", "YAML syntax error"),
        ("a: 1\n---\nb: 2\n", "exactly one document"),
    ],
)
def test_config_mistakes_are_each_named(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert any(says in f.message for f in caught.value.findings), caught.value


def test_every_config_mistake_is_reported_at_once() -> None:
    text = "environments:\n  a: {path: d, cluster: C}\n  b: {cluster: c}\nextra: 1\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert len(caught.value.findings) == 3


def test_server_bookkeeping_is_not_a_change() -> None:
    key = ObjectKey("", "ConfigMap", "shop", "a")
    desired = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a"},
        "data": {"k": "v"},
    }
    live = {
        **desired,
        "status": {},
        "metadata": {
            "name": "a",
            "uid": "123",
            "resourceVersion": "9",
            "managedFields": [{}],
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "generation": 3,
            "annotations": {
                "gitops-bot.io/commit": "abc",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        },
    }
    assert normalise(live, b"k") == normalise(desired, b"k")
    [change] = compare({key: live}, {key: desired}, prune=True, secret_key=b"k")
    assert change.action is Action.UNCHANGED and change.diff == ""


def test_removed_objects_are_pruned_only_when_prune_is_on() -> None:
    key = ObjectKey("", "ConfigMap", "shop", "a")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    assert compare({key: body}, {}, prune=True, secret_key=b"k")[0].action is Action.PRUNE
    assert compare({key: body}, {}, prune=False, secret_key=b"k")[0].action is Action.ORPHAN


def test_overlapping_gc_pauses_leave_the_collector_as_they_found_it() -> None:
    import gc

    from bot.renderers.loading import cyclic_gc_paused

    assert gc.isenabled()
    first, second = cyclic_gc_paused(), cyclic_gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # ends first, while the other still parses
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_concurrent_loads_never_leave_the_collector_off() -> None:
    import gc
    from concurrent.futures import ThreadPoolExecutor

    text = (deployment() + "---\n") * 200
    files = [
        SourceFile(f"f{i}.yaml", text.replace("name: web", f"name: w{i}").encode())
        for i in range(4)
    ]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(20):
            list(pool.map(lambda f: load_manifests([f], "shop"), files))
    assert gc.isenabled()
