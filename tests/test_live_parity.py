"""Parity: the objects the bot says will change are the ones `kubectl diff --server-side` finds."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path

from helpers.livecluster import ENV, LiveEnv, configmap
from helpers.manifests import deployment, secret

from bot.core.diffs import Action
from bot.core.manifests import Manifest, SourceFile, load_manifests
from bot.core.rollouts import FIELD_MANAGER, Stamp, carried_stamp, stamped

_DIFFED = re.compile(r"^diff -u -N \S*/LIVE-\d+/(\S+) ", re.MULTILINE)


async def test_the_bot_and_kubectl_diff_agree_on_what_will_change(
    live_env: LiveEnv, tmp_path: Path
) -> None:
    ns = live_env.namespace
    annotated = configmap("annotated", a="1")
    base_files = {
        "same.yaml": configmap("same", a="1"),
        "changing.yaml": configmap("changing", a="1"),
        "drifted.yaml": configmap("drifted", a="1"),
        "shrinking.yaml": configmap("shrinking", a="1", b="2"),
        "annotated.yaml": annotated,
        "web.yaml": deployment("web", replicas=1),
        "api.yaml": deployment("api", replicas=1),
        "creds.yaml": secret("creds", data={"password": "one"}),
        "keys.yaml": secret("keys", data={"token": "one"}),
    }
    base = live_env.commit(base_files)
    assert (await live_env.apply(base)).succeeded
    live_env.kubectl.run("patch", "configmap", "drifted", "-n", ns, "-p", '{"data":{"a":"9"}}')
    live_env.kubectl.run("annotate", "configmap", "annotated", "-n", ns, "owner=someone-else")
    head_files = {
        **base_files,
        "changing.yaml": configmap("changing", a="2"),
        "shrinking.yaml": configmap("shrinking", a="1"),
        "api.yaml": deployment("api", replicas=3),
        "keys.yaml": secret("keys", data={"token": "two"}),
        "fresh.yaml": configmap("fresh", a="1"),
    }
    head = live_env.commit(head_files)

    plan = await live_env.env_plan(base, head)
    assert plan.live is not None and plan.live.unknown == ()
    bot_says = {
        _file_name(c.key.kind, c.key.namespace, c.key.name, _api_version(c.key.group))
        for c in plan.live.changes
        if c.action in (Action.CREATE, Action.UPDATE)
    }
    kubectl_says = _kubectl_diff(live_env, _bodies_the_bot_sends(live_env, head_files, head))

    assert bot_says == kubectl_says
    assert bot_says == {  # and both saw the change this scenario set up, nothing else
        _file_name("ConfigMap", ns, name, "v1")
        for name in ("changing", "drifted", "shrinking", "fresh")
    } | {_file_name("Deployment", ns, "api", "apps/v1"), _file_name("Secret", ns, "keys", "v1")}


def _bodies_the_bot_sends(live_env: LiveEnv, files: dict[str, str], head: str) -> str:
    """Each desired object as the bot's dry run sends it: stamped as the live object is."""
    loaded = load_manifests(
        [SourceFile(name, textwrap.dedent(text).encode()) for name, text in files.items()],
        live_env.namespace,
    )
    items = [
        stamped(manifest.body, carried_stamp(_live(live_env, manifest), Stamp(ENV, head)))
        for manifest in loaded.manifests
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _live(live_env: LiveEnv, manifest: Manifest) -> dict[str, object] | None:
    resource = f"{manifest.key.kind.lower()}s"
    if manifest.key.group:
        resource += f".{manifest.key.group}"
    return live_env.kubectl.get(resource, manifest.key.name, manifest.key.namespace)


def _kubectl_diff(live_env: LiveEnv, documents: str) -> set[str]:
    """The files kubectl diff compares and finds different (exit 1: differences, 0: none)."""
    kubectl = live_env.kubectl
    options = [f"--field-manager={FIELD_MANAGER}", "--force-conflicts", "-f", "-"]
    done = subprocess.run(
        [kubectl.binary, f"--kubeconfig={kubectl.kubeconfig}", "diff", "--server-side", *options],
        input=documents,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return set(_DIFFED.findall(done.stdout))


def _api_version(group: str) -> str:
    return f"{group}/v1" if group else "v1"


def _file_name(kind: str, namespace: str, name: str, api_version: str) -> str:
    """How kubectl diff names an object's file: group.version.Kind.namespace.name."""
    return ".".join([api_version.replace("/", "."), kind, namespace, name])
