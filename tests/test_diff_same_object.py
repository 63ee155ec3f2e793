"""A change between an object and itself takes a shortcut; it must say what comparing says."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot.core.diffs import Action, change_of
from bot.core.manifests import ObjectKey, Source

KEY = ObjectKey("", "Secret", "shop", "db")
SOURCE = Source("deploy/db.yaml", 3)
OBJECTS: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "shop",
            "labels": {"gitops-bot.io/environment": "prod", "app": "db"},
            "annotations": {"deployment.kubernetes.io/revision": "3"},
            "resourceVersion": "12",
            "managedFields": [{"manager": "gitops-bot"}],
        },
        "data": {"password": "aHVudGVyMg=="},
        "stringData": {"user": "admin", "port": 5432},
        "status": {"phase": "ok"},
    },
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"f": 1.5}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}, "data": {"on": True, "n": None}},
]


@pytest.mark.parametrize("body", OBJECTS)
def test_an_object_against_itself_is_what_comparing_it_with_a_copy_says(
    body: dict[str, Any],
) -> None:
    options: dict[str, Any] = {"prune": True, "secret_key": b"k", "source": SOURCE, "note": "n"}

    shortcut = change_of(KEY, body, body, **options)
    compared = change_of(KEY, body, copy.deepcopy(body), **options)

    assert shortcut == compared
    assert shortcut.action is Action.UNCHANGED and shortcut.diff == ""


def test_a_copy_that_differs_is_still_compared() -> None:
    before = OBJECTS[1]
    after = copy.deepcopy(before) | {"data": {"f": 2.5}}

    change = change_of(KEY, before, after, prune=True, secret_key=b"k")

    assert change.action is Action.UPDATE
    assert "-  f: 1.5\n+  f: 2.5" in change.diff
