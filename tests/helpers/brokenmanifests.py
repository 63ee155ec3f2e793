"""Generated manifests and the mistakes people make in them, for the fast-path tests."""

from __future__ import annotations

import math
import random
from typing import Any

import yaml

from benchmarks.manifests import generate
from bot.core.manifests import Manifest, SourceFile, load_manifests


def corpus_manifests(count: int, seed: int) -> list[Manifest]:
    files = [SourceFile(f.path, f.text().encode()) for f in generate(count, seed)]
    loaded = load_manifests(files)
    assert not loaded.findings
    return list(loaded.manifests)


def broken(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy of `body` with one mistake of the kinds people make, or JSON cannot hold."""
    copy: dict[str, Any] = yaml.safe_load(yaml.safe_dump(body))
    spec = copy.get("spec") if isinstance(copy.get("spec"), dict) else copy
    pods = pod_spec(copy)
    mistakes = [
        lambda: spec.__setitem__("replicass", 3),  # a typo: unknown field
        lambda: copy["metadata"].__setitem__("labels", ["not", "a", "map"]),
        lambda: copy["metadata"].__setitem__("name", 42),
        lambda: copy.__setitem__("status", {"phase": {"nested": True}}),
        lambda: copy["metadata"].__setitem__("annotations", {1: "integer key"}),
        lambda: copy["metadata"].__setitem__("annotations", {"nan": math.nan}),
        lambda: copy["metadata"].__setitem__("generation", 2**70),
        lambda: copy["metadata"].__setitem__("ownerReferences", [{"kind": "X"}]),
    ]
    if pods is not None:
        mistakes += [
            lambda: pods["containers"][0].pop("name"),
            lambda: pods["containers"][0].__setitem__("ports", [{"containerPort": "http"}]),
            lambda: pods["containers"][0]["resources"]["limits"].__setitem__("cpu", None),
            lambda: pods.__setitem__("restartPolicy", True),
            lambda: pods["containers"][0].__setitem__("imagePullPolicy", 1.5),
            lambda: pods["containers"][0]["securityContext"].__setitem__("runAsUser", 1.0),
        ]
    rng.choice(mistakes)()
    return copy


def policy_breaking(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy of a workload that breaks one default policy."""
    copy: dict[str, Any] = yaml.safe_load(yaml.safe_dump(body))
    pods = pod_spec(copy)
    if pods is None:
        return copy  # no default policy concerns objects without pods
    first = pods["containers"][0]
    rng.choice(
        [
            lambda: first.__setitem__("image", "nginx:latest"),
            lambda: first.__setitem__("image", "nginx:1.2\n"),  # $ before a final newline
            lambda: first.__setitem__("securityContext", {"privileged": True}),
            lambda: first.pop("resources", None),
            lambda: first.get("resources", {}).get("limits", {}).pop("memory", None),
            lambda: pods.__setitem__("volumes", [{"name": "h", "hostPath": {"path": "/"}}]),
        ]
    )()
    return copy


def pod_spec(body: dict[str, Any]) -> dict[str, Any] | None:
    spec = body.get("spec") or {}
    template = spec.get("template") or (spec.get("jobTemplate") or {}).get("spec", {}).get(
        "template"
    )
    return template["spec"] if template else None
