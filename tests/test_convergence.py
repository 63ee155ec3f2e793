"""Whether an apply would change nothing, decided from the live object alone."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot.core.convergence import already_applied
from bot.core.rollouts import Stamp, stamped

DESIRED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "template": {"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80}]}]}},
    },
}


def _live(desired: dict[str, Any], environment: str = "prod") -> dict[str, Any]:
    """What the API server keeps after the bot applied `desired`: stamped, with defaults."""
    live = copy.deepcopy(stamped(desired, Stamp(environment, "c0ffee")))
    live["metadata"] |= {"uid": "1", "resourceVersion": "7", "managedFields": []}
    container = live["spec"]["template"]["spec"]["containers"][0]
    live["spec"] = {**live["spec"], "strategy": {"type": "RollingUpdate"}}
    live["spec"]["template"]["spec"]["containers"] = [
        {
            **container,
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "imagePullPolicy": "IfNotPresent",
        }
    ]
    live["status"] = {"replicas": 2}
    return live


def test_an_object_applied_from_this_manifest_and_untouched_needs_no_dry_run() -> None:
    assert already_applied(DESIRED, _live(DESIRED), "prod")


def test_values_another_manager_added_do_not_matter() -> None:
    live = _live(DESIRED)
    live["metadata"]["annotations"]["owner"] = "someone-else"
    assert already_applied(DESIRED, live, "prod")


@pytest.mark.parametrize(
    "edit",
    [
        lambda live: live["spec"].update(replicas=3),  # edited by hand
        lambda live: live["spec"].pop("replicas"),  # removed by hand
        lambda live: live["spec"].update(replicas="2"),  # same text, other type
        lambda live: live["spec"].update(replicas=2.0),
        lambda live: live["spec"].update(replicas=True),
        lambda live: live["metadata"]["labels"].update(app="other"),
        lambda live: live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"}),
        lambda live: live["spec"]["template"]["spec"].update(containers={"name": "web"}),
        lambda live: live["metadata"]["annotations"].pop("gitops-bot.io/manifest-digest"),
    ],
)
def test_any_difference_in_what_the_manifest_declares_asks_the_server(edit: Any) -> None:
    live = _live(DESIRED)
    edit(live)
    assert not already_applied(DESIRED, live, "prod")


def test_a_manifest_changed_in_git_asks_the_server_even_if_its_values_are_live() -> None:
    """Fewer fields than last applied: the apply would let go of the one Git dropped."""
    smaller = {**DESIRED, "spec": {k: v for k, v in DESIRED["spec"].items() if k != "replicas"}}
    live = _live(DESIRED)
    assert not already_applied(smaller, live, "prod")


def test_an_object_of_another_environment_asks_the_server() -> None:
    assert not already_applied(DESIRED, _live(DESIRED, environment="staging"), "prod")


def test_an_object_the_bot_never_applied_asks_the_server() -> None:
    live = _live(DESIRED)
    del live["metadata"]["annotations"]
    assert not already_applied(DESIRED, live, "prod")
