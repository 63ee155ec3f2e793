"""Apply order, and the bot's stamp on every object it applies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.core.applies import object_digest
from bot.core.diffs import BOT_PREFIX
from bot.core.manifests import Manifest, ObjectKey

FIELD_MANAGER = "gitops-bot"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "gitops-bot"
ENVIRONMENT_ANNOTATION = BOT_PREFIX + "environment"
COMMIT_ANNOTATION = BOT_PREFIX + "commit"
PULL_REQUEST_ANNOTATION = BOT_PREFIX + "pull-request"
# The digest of the manifest as Git declares it, so a later run can tell, without a dry
# run, that the bot's last apply of the object sent exactly this manifest.
MANIFEST_DIGEST_ANNOTATION = BOT_PREFIX + "manifest-digest"
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
CRD_KEY_GROUP = "apiextensions.k8s.io"

# Kinds other objects depend on come first; kinds not listed (custom resources) come last.
# Webhook configurations come late so that the workloads serving them are applied first.
_KIND_ORDER = (
    "Namespace",
    "CustomResourceDefinition",
    "PriorityClass",
    "StorageClass",
    "RuntimeClass",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
    "Secret",
    "ConfigMap",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "IngressClass",
    "Ingress",
    "APIService",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)
_RANK = {kind: index for index, kind in enumerate(_KIND_ORDER)}


@dataclass(frozen=True)
class Stamp:
    """What the bot writes on an applied object: where it comes from."""

    environment: str
    commit: str
    pull_request: str = ""  # a number or URL; empty for a break-glass apply


def stamped(body: Mapping[str, Any], stamp: Stamp) -> dict[str, Any]:
    """A copy of `body` carrying the managed-by label and the bot's annotations."""
    metadata = dict(body.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY_VALUE}
    annotations = {
        **(metadata.get("annotations") or {}),
        ENVIRONMENT_ANNOTATION: stamp.environment,
        COMMIT_ANNOTATION: stamp.commit,
        MANIFEST_DIGEST_ANNOTATION: object_digest(body),
    }
    if stamp.pull_request:
        annotations[PULL_REQUEST_ANNOTATION] = stamp.pull_request
    else:
        annotations.pop(PULL_REQUEST_ANNOTATION, None)
    metadata["annotations"] = annotations
    return {**body, "metadata": metadata}


def carried_stamp(live: Mapping[str, Any] | None, fresh: Stamp) -> Stamp:
    """The stamp a live object already carries, so a dry run does not count it as a change.

    Only the environment is never carried: an object claimed by another environment
    must show that it moves.
    """
    annotations = _annotations(live)
    if COMMIT_ANNOTATION not in annotations:
        return fresh
    return Stamp(
        fresh.environment,
        str(annotations[COMMIT_ANNOTATION]),
        str(annotations.get(PULL_REQUEST_ANNOTATION, "")),
    )


def stamped_environment(live: Mapping[str, Any] | None) -> str | None:
    """The environment a live object was last applied by, if the bot applied it."""
    value = _annotations(live).get(ENVIRONMENT_ANNOTATION)
    return str(value) if value is not None else None


def manifest_digest_of(live: Mapping[str, Any] | None) -> str | None:
    """The digest of the manifest the bot last applied to a live object, if it recorded one."""
    value = _annotations(live).get(MANIFEST_DIGEST_ANNOTATION)
    return str(value) if value is not None else None


def _annotations(body: Mapping[str, Any] | None) -> Mapping[str, Any]:
    metadata = (body or {}).get("metadata") or {}
    return metadata.get("annotations") or {}


def scoped(manifest: Manifest, namespaced: bool) -> Manifest:
    """The manifest with the scope the cluster serves its kind at.

    The loader can only guess the scope of a custom kind whose CRD lives in the cluster.
    """
    if namespaced or not manifest.key.namespace:
        return manifest
    metadata = {k: v for k, v in (manifest.body.get("metadata") or {}).items() if k != "namespace"}
    key = replace(manifest.key, namespace="")
    return replace(manifest, key=key, body={**manifest.body, "metadata": metadata})


def kind_rank(key: ObjectKey) -> int:
    return _RANK.get(key.kind, len(_KIND_ORDER))


def apply_groups(manifests: Iterable[Manifest]) -> tuple[tuple[Manifest, ...], ...]:
    """Manifests in apply order, grouped by kind rank; a group may be applied at once."""
    groups: dict[int, list[Manifest]] = {}
    for manifest in manifests:
        groups.setdefault(kind_rank(manifest.key), []).append(manifest)
    return tuple(tuple(sorted(groups[rank], key=lambda m: m.key)) for rank in sorted(groups))


def prune_order(keys: Iterable[ObjectKey]) -> tuple[ObjectKey, ...]:
    """Deletion order: the reverse of apply order, so namespaces and CRDs go last."""
    return tuple(sorted(keys, key=lambda key: (-kind_rank(key), key)))


def is_crd(key: ObjectKey) -> bool:
    return key.group == CRD_KEY_GROUP and key.kind == "CustomResourceDefinition"


def crd_established(body: Mapping[str, Any] | None) -> bool:
    """Whether the API server serves a CRD's kind yet (its Established condition)."""
    conditions = ((body or {}).get("status") or {}).get("conditions") or []
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in conditions
        if isinstance(c, Mapping)
    )


def crd_defines(crd: Mapping[str, Any], api_version: str, kind: str) -> bool:
    """Whether a CustomResourceDefinition body serves `kind` at `api_version`."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, _, version = api_version.rpartition("/")
    served = {v.get("name") for v in spec.get("versions") or [] if isinstance(v, Mapping)}
    return spec.get("group") == group and names.get("kind") == kind and version in served


def defined_by_crds(manifests: Iterable[Manifest], api_version: str, kind: str) -> bool:
    return any(is_crd(m.key) and crd_defines(m.body, api_version, kind) for m in manifests)
