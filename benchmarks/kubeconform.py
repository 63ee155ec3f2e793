"""kubeconform for the comparison: its binary, and the bot's own schemas in its layout.

Both tools must check against the SAME schemas, so kubeconform reads the files the
kubernetes-validate package ships (the ones `bot/schemas/catalog.py` uses), copied into
kubeconform's directory layout. One mechanical rewrite, no change to any rule: each
schema names itself `https://kubernetes.io/api/...` and points at
`/api/_definitions.json`, which kubeconform would try to download. Each copy instead
carries the definitions it reaches in its own `$defs` (self-contained, like the
"standalone" schemas kubeconform normally downloads) and drops the `$id`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from benchmarks.harness import CACHE

HERE = Path(__file__).resolve().parent
VERSION_PIN = "v0.8.0"  # benchmarks/build_kubeconform.sh builds this one
# kubeconform fills this template per object; -strict makes StrictSuffix "-strict".
LOCATION = (
    "{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/"
    "{{ .ResourceKind }}{{ .KindSuffix }}.json"
)


def binary() -> Path:
    """The pinned kubeconform, built from the Go module proxy on first use."""
    done = subprocess.run(
        [str(HERE / "build_kubeconform.sh")], check=True, capture_output=True, text=True
    )
    return Path(done.stdout.strip().splitlines()[-1])


def schema_location(kubernetes_version: str) -> str:
    """The `-schema-location` template over a local copy of the bot's strict schemas."""
    root = schema_root(kubernetes_version)
    return f"{root}/{LOCATION}"


def schema_root(kubernetes_version: str) -> Path:
    package = metadata.version("kubernetes-validate")
    root = CACHE / f"kubeconform-schemas-kubernetes-validate-{package}"
    target = root / f"v{kubernetes_version}.0-standalone-strict"
    if not target.is_dir():
        _convert(kubernetes_version, target)
    return root


def _convert(kubernetes_version: str, target: Path) -> None:
    source = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    source = source / f"v{kubernetes_version}.0-local-strict"
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    scratch = target.with_name(target.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name.endswith(".json") and entry.name != "_definitions.json":
            schema = json.loads(entry.read_text())
            (scratch / entry.name).write_text(json.dumps(standalone(schema, definitions)))
    scratch.rename(target)


def standalone(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The schema with the definitions it reaches copied into its own `$defs`."""
    needed: dict[str, Any] = {}
    pending = _refs(schema)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed[name] = definitions[name]
            pending |= _refs(definitions[name])
    result = {k: v for k, v in _local_refs(schema).items() if k != "$id"}
    if needed:
        result["$defs"] = {name: _local_refs(body) for name, body in sorted(needed.items())}
    return result


def _refs(node: object) -> set[str]:
    """Names of the definitions `node` refers to, directly."""
    if isinstance(node, dict):
        found = set().union(*(_refs(v) for v in node.values())) if node else set()
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rpartition("/")[2])
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _local_refs(node: Any) -> Any:
    """Point every reference at the schema's own `$defs`."""
    if isinstance(node, dict):
        return {
            k: "#/$defs/" + v.rpartition("/")[2]
            if k == "$ref" and isinstance(v, str)
            else _local_refs(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_local_refs(v) for v in node]
    return node
