"""The pure decisions behind an apply: order, stamps, prune, inventory, scrubbed messages."""

from __future__ import annotations

import base64

import pytest

from bot.core.inventories import (
    Entry,
    Inventory,
    InventoryError,
    decide_prune,
    decode_inventory,
    encode_inventory,
    inventory_name,
    next_inventory,
)
from bot.core.livediffs import scrub
from bot.core.manifests import Manifest, ObjectKey, Source
from bot.core.rollouts import (
    COMMIT_ANNOTATION,
    Stamp,
    apply_groups,
    carried_stamp,
    crd_defines,
    prune_order,
    scoped,
    stamped,
)

CM = ObjectKey("", "ConfigMap", "shop", "a")
CM2 = ObjectKey("", "ConfigMap", "shop", "b")
NS = ObjectKey("", "Namespace", "", "shop")
CRD = ObjectKey("apiextensions.k8s.io", "CustomResourceDefinition", "", "w.example.com")
PVC = ObjectKey("", "PersistentVolumeClaim", "shop", "data")
DEPLOY = ObjectKey("apps", "Deployment", "shop", "web")
WIDGET = ObjectKey("example.com", "Widget", "shop", "w")


def entry(key: ObjectKey) -> Entry:
    versions = {"": "v1", "apps": "apps/v1", "example.com": "example.com/v1"}
    return Entry(key, versions.get(key.group, f"{key.group}/v1"))


def inventory(*keys: ObjectKey) -> Inventory:
    return Inventory("prod", tuple(sorted(entry(k) for k in keys)))


def manifest(key: ObjectKey, api_version: str = "v1") -> Manifest:
    metadata = {"name": key.name} | ({"namespace": key.namespace} if key.namespace else {})
    body = {"apiVersion": api_version, "kind": key.kind, "metadata": metadata}
    return Manifest(key, api_version, body, Source("x.yaml", 1))


def test_namespaces_and_crds_are_applied_first_custom_resources_last() -> None:
    groups = apply_groups([manifest(k) for k in (WIDGET, DEPLOY, CM, CRD, NS)])
    assert [[m.key.kind for m in g] for g in groups] == [
        ["Namespace"],
        ["CustomResourceDefinition"],
        ["ConfigMap"],
        ["Deployment"],
        ["Widget"],
    ]
    assert prune_order([NS, CM, WIDGET, CRD]) == (WIDGET, CM, CRD, NS)


def test_prune_deletes_only_inventory_objects_git_no_longer_declares() -> None:
    decision = decide_prune(inventory(CM, CM2, DEPLOY), [CM, WIDGET], prune=True)
    assert [e.key for e in decision.delete] == [DEPLOY, CM2]
    assert decision.refused is None


def test_prune_refuses_an_empty_render_and_a_failed_apply() -> None:
    empty = decide_prune(inventory(CM, CM2), [], prune=True)
    failed = decide_prune(inventory(CM, CM2), [CM], prune=True, apply_failed=True)
    assert empty.delete == () and empty.refused and "renders no objects" in empty.refused
    assert failed.delete == () and failed.refused and "failed to apply" in failed.refused


def test_protected_kinds_stay_unless_the_environment_allows_them() -> None:
    kept = decide_prune(inventory(CM, NS, CRD, PVC), [CM], prune=True)
    allowed = decide_prune(
        inventory(CM, NS, CRD, PVC), [CM], prune=True, allowed_kinds=["Namespace"]
    )
    assert kept.delete == ()
    assert {k.entry.key for k in kept.kept} == {NS, CRD, PVC}
    assert [e.key for e in allowed.delete] == [NS]


def test_the_inventory_never_forgets_what_the_bot_may_still_own() -> None:
    before = inventory(CM, CM2, NS)
    failed = next_inventory(
        before,
        [entry(CM), entry(DEPLOY)],
        [DEPLOY],
        [],
        decide_prune(before, [], prune=True),
        apply_failed=True,
    )
    assert {e.key for e in failed.entries} == {CM, CM2, NS, DEPLOY}
    decision = decide_prune(before, [CM], prune=True)
    done = next_inventory(before, [entry(CM)], [CM], [CM2], decision, apply_failed=False)
    assert {e.key for e in done.entries} == {CM, NS}  # the protected Namespace stays tracked
    off = decide_prune(before, [CM], prune=False)
    handed_back = next_inventory(before, [entry(CM)], [CM], [], off, apply_failed=False)
    assert {e.key for e in handed_back.entries} == {CM}


def test_the_inventory_round_trips_and_refuses_what_is_not_its_own() -> None:
    stored = inventory(CM, NS, WIDGET)
    assert decode_inventory(encode_inventory(stored), "prod") == stored
    with pytest.raises(InventoryError, match="belongs to environment 'prod'"):
        decode_inventory(encode_inventory(stored), "staging")
    with pytest.raises(InventoryError, match="not valid JSON"):
        decode_inventory("{", "prod")
    with pytest.raises(InventoryError, match="malformed"):
        decode_inventory('{"format": 1, "environment": "prod", "entries": [1]}', "prod")
    assert inventory_name("blue_green") == "gitops-bot-inventory-blue-green"


def test_stamps_are_carried_from_the_live_object_so_a_dry_run_sees_no_change() -> None:
    fresh = Stamp("prod", "new-commit", "#9")
    live = stamped({"metadata": {"name": "a"}}, Stamp("prod", "old-commit"))
    assert carried_stamp(live, fresh) == Stamp("prod", "old-commit")
    assert carried_stamp(None, fresh) == fresh
    body = stamped({"metadata": {"name": "a", "labels": {"x": "y"}}}, fresh)
    assert body["metadata"]["labels"] == {"x": "y", "app.kubernetes.io/managed-by": "gitops-bot"}
    assert body["metadata"]["annotations"][COMMIT_ANNOTATION] == "new-commit"


def test_a_kind_the_cluster_serves_cluster_wide_loses_its_guessed_namespace() -> None:
    loaded = manifest(ObjectKey("example.com", "Widget", "default", "w"), "example.com/v1")
    assert scoped(loaded, namespaced=False).key.namespace == ""
    assert "namespace" not in scoped(loaded, namespaced=False).body["metadata"]
    assert scoped(loaded, namespaced=True) is loaded


def test_crds_define_kinds_only_at_their_served_versions() -> None:
    crd = {
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget"},
            "versions": [{"name": "v1", "served": True}],
        }
    }
    assert crd_defines(crd, "example.com/v1", "Widget")
    assert not crd_defines(crd, "example.com/v2", "Widget")
    assert not crd_defines(crd, "other.com/v1", "Widget")


def test_secret_values_are_scrubbed_from_api_server_messages_in_any_encoding() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "data": {"a": base64.b64encode(b"hunter2-long").decode()},
        "stringData": {"b": "xyz", "c": "opensesame"},
    }
    message = (
        'Secret "s" is invalid: data[a]: hunter2-long; encoded '
        f"{secret['data']['a']}; b=xyz; xyzzy stays; opensesame"
    )
    scrubbed = scrub(message, secret)
    for value in ("hunter2-long", secret["data"]["a"], "opensesame", "b=xyz"):
        assert value not in scrubbed
    assert "xyzzy stays" in scrubbed
    assert scrub(message, {"kind": "ConfigMap", "apiVersion": "v1"}) == message
