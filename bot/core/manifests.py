"""Manifests: files of text -> Kubernetes objects that remember their file and line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.core.documents import DEFAULT_LIMITS, DocumentError, Limits, parse_documents
from bot.core.findings import Finding, Severity, Stage

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZE_GROUP = "kustomize.config.k8s.io"  # Kustomization, Component: tool files, not objects

# Built-in kinds that live outside namespaces; custom ones come from CRDs in the repo.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "ComponentStatus",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "FlowSchema",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
        "DeviceClass",
    }
)


@dataclass(frozen=True)
class SourceFile:
    """A file's bytes, as read from a commit or a directory; `path` is relative."""

    path: str
    data: bytes


@dataclass(frozen=True)
class Source:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, order=True)
class ObjectKey:
    """What identifies an object in a cluster: group, kind, namespace and name."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{kind} {where}"


@dataclass(frozen=True)
class Manifest:
    key: ObjectKey
    api_version: str
    body: Mapping[str, Any] = field(repr=False, compare=False)
    source: Source


@dataclass(frozen=True, order=True)
class Skipped:
    """A file (or folder, ending in '/') that was deliberately not read as manifests, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    manifests: tuple[Manifest, ...] = ()
    findings: tuple[Finding, ...] = ()
    skipped: tuple[Skipped, ...] = ()  # tool files: listed in the plan, so a reviewer sees them

    def by_key(self) -> dict[ObjectKey, Manifest]:
        return {m.key: m for m in self.manifests}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def is_manifest_path(path: str) -> bool:
    return path.lower().endswith(MANIFEST_SUFFIXES)


def load_manifests(
    files: Iterable[SourceFile],
    default_namespace: str = "default",
    limits: Limits = DEFAULT_LIMITS,
) -> LoadResult:
    """Parse every file; each rejected file or object becomes a finding naming it."""
    readable, left_out = files_within_total(files, limits)
    parsed = parse_files(readable, limits)
    return collect_manifests(parsed, default_namespace, left_out)[0]


# load_manifests in three steps, so that a caller can parse parts of the files apart
# (bot/stages/validate.py does, in worker processes) and still collect them as one.


@dataclass(frozen=True)
class ParsedFiles:
    """The objects of some files in order, each with where it starts; findings of the rest."""

    objects: tuple[tuple[dict[str, Any], Source], ...] = ()
    findings: tuple[Finding, ...] = ()


def files_within_total(
    files: Iterable[SourceFile], limits: Limits = DEFAULT_LIMITS
) -> tuple[list[SourceFile], tuple[Finding, ...]]:
    """The files in path order up to the total size limit, and a finding for the rest."""
    readable: list[SourceFile] = []
    total = 0
    for source_file in sorted(files, key=lambda f: f.path):
        total += len(source_file.data)
        if total > limits.max_total_bytes:
            return readable, (_total_size_finding(source_file.path, limits),)
        readable.append(source_file)
    return readable, ()


def parse_files(files: Iterable[SourceFile], limits: Limits = DEFAULT_LIMITS) -> ParsedFiles:
    """Every object of every file, in order; a file that does not parse is a finding."""
    raw: list[tuple[dict[str, Any], Source]] = []
    findings: list[Finding] = []
    for source_file in files:
        _parse_file(source_file, limits, raw, findings)
    return ParsedFiles(tuple(raw), tuple(findings))


def collect_manifests(
    parsed: ParsedFiles, default_namespace: str, left_out: Iterable[Finding] = ()
) -> tuple[LoadResult, tuple[int, ...]]:
    """Each well-formed object under its key, and where in `parsed.objects` each one is.

    The first of two objects with one key wins. `left_out` (files past the total size
    limit) follows the parse findings, as the files were met in that order.
    """
    scopes = _cluster_scoped_kinds(body for body, _ in parsed.objects)
    manifests: dict[ObjectKey, Manifest] = {}
    findings = [*parsed.findings, *left_out]
    positions = [
        position
        for position, (body, source) in enumerate(parsed.objects)
        if _add_manifest(body, source, default_namespace, scopes, manifests, findings)
    ]
    return LoadResult(tuple(manifests.values()), tuple(findings)), tuple(positions)


def identity(body: dict[str, Any]) -> dict[str, Any]:
    """What collect_manifests reads of an object: its key, its shape and, of a CRD, all.

    A CustomResourceDefinition is kept whole: its scope decides other objects' keys, and
    its schemas their checks. Collecting identities gives the keys and findings the
    whole objects give (_shape_problem and _add_manifest read no other field).
    """
    if body.get("kind") == "CustomResourceDefinition":
        return body
    read = ("apiVersion", "kind", "metadata")
    found: dict[str, Any] = {name: body[name] for name in read if name in body}
    metadata = found.get("metadata")
    if isinstance(metadata, dict):
        kept = ("name", "namespace", "generateName")
        found["metadata"] = {name: metadata[name] for name in kept if name in metadata}
    return found


def _total_size_finding(path: str, limits: Limits) -> Finding:
    return _error(
        "manifest.total-too-large",
        f"manifests add up to more than {limits.max_total_bytes} bytes; files from here on "
        "were not read; split the environment",
        path,
    )


def _parse_file(
    source_file: SourceFile,
    limits: Limits,
    raw: list[tuple[dict[str, Any], Source]],
    findings: list[Finding],
) -> None:
    try:
        for doc in parse_documents(source_file.data, limits):
            for item in _items(doc.data):
                if item is None:
                    continue
                if not isinstance(item, dict):
                    findings.append(
                        _error(
                            "manifest.not-object",
                            "document is not a mapping; each document must be one "
                            "Kubernetes object",
                            source_file.path,
                            doc.line,
                        )
                    )
                    continue
                raw.append((item, Source(source_file.path, doc.line)))
    except DocumentError as exc:
        findings.append(_error(exc.code, exc.message, source_file.path, exc.line))


def _items(data: Any) -> list[Any]:
    """A `kind: List` holds its objects in `items`; anything else is one object."""
    if (
        isinstance(data, dict)
        and data.get("kind") == "List"
        and isinstance(data.get("items"), list)
    ):
        return list(data["items"])
    return [data]


def _cluster_scoped_kinds(bodies: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    kinds = set(CLUSTER_SCOPED_KINDS)
    for body in bodies:
        if body.get("kind") != "CustomResourceDefinition":
            continue
        spec = body.get("spec")
        if isinstance(spec, dict) and spec.get("scope") == "Cluster":
            names = spec.get("names")
            if isinstance(names, dict) and isinstance(names.get("kind"), str):
                kinds.add(names["kind"])
    return frozenset(kinds)


def _add_manifest(
    body: dict[str, Any],
    source: Source,
    default_namespace: str,
    cluster_scoped: frozenset[str],
    manifests: dict[ObjectKey, Manifest],
    findings: list[Finding],
) -> bool:
    """Add the object under its key, or a finding saying why not; whether it was added."""
    problem = _shape_problem(body)
    if problem:
        findings.append(_error("manifest.shape", problem, source.path, source.line))
        return False
    metadata = body["metadata"]
    kind = body["kind"]
    namespace = "" if kind in cluster_scoped else metadata.get("namespace") or default_namespace
    key = ObjectKey(group_of(body["apiVersion"]), kind, namespace, metadata["name"])
    if key in manifests:
        first = manifests[key].source
        findings.append(
            _error(
                "manifest.duplicate-object",
                f"{key} is declared twice (first at {first}); keep one",
                source.path,
                source.line,
                subject=str(key),
            )
        )
        return False
    manifests[key] = manifest_at(key, body, source)
    return True


def manifest_at(key: ObjectKey, body: dict[str, Any], source: Source) -> Manifest:
    """The object under its key; a namespaced object's body names its namespace."""
    metadata = body["metadata"]
    if key.namespace and metadata.get("namespace") != key.namespace:
        body = {**body, "metadata": {**metadata, "namespace": key.namespace}}
    return Manifest(key, body["apiVersion"], body, source)


def _shape_problem(body: Mapping[str, Any]) -> str | None:
    if "apiVersion" not in body and "kind" not in body:
        return (
            "this document is not a Kubernetes object (it has neither apiVersion nor kind); "
            "if the file is not a manifest, leave it out (in an environment: with `exclude:` "
            "in .gitops-bot.yaml)"
        )
    if isinstance(body.get("apiVersion"), str) and group_of(body["apiVersion"]) == KUSTOMIZE_GROUP:
        return (
            f"{body['apiVersion']} is kustomize's own file, not a Kubernetes object: check "
            "what `kustomize build` makes of it (an environment with `source: {type: "
            "kustomize}`), or leave the file out"
        )
    for name in ("apiVersion", "kind"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"object has no {name}; every Kubernetes object needs apiVersion and kind"
    metadata = body.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        if isinstance(metadata, dict) and "generateName" in metadata:
            return "metadata.generateName cannot be tracked in Git; set metadata.name"
        return f"{body['kind']} has no metadata.name; give the object a name"
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        return "metadata.namespace must be a string"
    return None


def _error(
    code: str, message: str, path: str, line: int | None = None, subject: str | None = None
) -> Finding:
    return Finding(Stage.MANIFEST, Severity.ERROR, code, message, path, line, subject)
