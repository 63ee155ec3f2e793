"""How Argo CD or Flux would apply a unit's objects, and which configured cluster it targets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.controllerclusters import NO_CONTROLLER_CLUSTERS as NO_CONTROLLER_CLUSTERS
from bot.core.controllerclusters import Controller as Controller
from bot.core.controllerclusters import ControllerClusters as ControllerClusters
from bot.core.manifests import group_of
from bot.core.markdown import code
from bot.core.repoconfig import Environment

ARGOCD_MANAGER = "argocd-controller"
KUSTOMIZE_MANAGER = "kustomize-controller"
HELM_MANAGER = "helm-controller"
# Argo CD's default resource tracking (annotation, since Argo CD 3.0).
ARGOCD_TRACKING = "argocd.argoproj.io/tracking-id"
FLUX_NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
FLUX_NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
IN_CLUSTER = "in-cluster"


@dataclass(frozen=True)
class ControllerApply:
    """The dry run that predicts a controller's sync of one unit: its field manager, and
    the labels and annotations it writes on every object it applies."""

    field_manager: str
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    tracking_app: str = ""  # Argo CD: the Application named in each object's tracking id


def controller_apply(unit: Environment) -> ControllerApply | None:
    """How the unit's controller applies; None for an environment of `.gitops-bot.yaml`."""
    name = unit.name
    if name.startswith(Controller.ARGOCD):
        return ControllerApply(ARGOCD_MANAGER, tracking_app=name.removeprefix(Controller.ARGOCD))
    if name.startswith(Controller.FLUX):
        namespace, _, own = name.removeprefix(Controller.FLUX).partition("/")
        labels = ((FLUX_NAME_LABEL, own), (FLUX_NAMESPACE_LABEL, namespace))
        return ControllerApply(KUSTOMIZE_MANAGER, labels=labels)
    if name.startswith(Controller.HELM):
        release = unit.source.release or name.rsplit("/", 1)[-1]
        annotations = (
            ("meta.helm.sh/release-name", release),
            ("meta.helm.sh/release-namespace", unit.namespace),
        )
        helm = (("app.kubernetes.io/managed-by", "Helm"),)
        return ControllerApply(HELM_MANAGER, labels=helm, annotations=annotations)
    return None


def marked(body: Mapping[str, Any], how: ControllerApply) -> dict[str, Any]:
    """A copy of `body` with what the controller writes on it, as its sync would send it."""
    metadata = dict(body.get("metadata") or {})
    labels = {**(metadata.get("labels") or {}), **dict(how.labels)}
    annotations = {**(metadata.get("annotations") or {}), **dict(how.annotations)}
    if how.tracking_app:
        annotations[ARGOCD_TRACKING] = tracking_id(how.tracking_app, body)
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return {**body, "metadata": metadata}


def tracking_id(app: str, body: Mapping[str, Any]) -> str:
    """`<app>:<group>/<kind>:<namespace>/<name>`, as Argo CD's annotation tracking writes it."""
    metadata = body.get("metadata") or {}
    group = group_of(str(body.get("apiVersion") or ""))
    where = f"{metadata.get('namespace') or ''}/{metadata.get('name') or ''}"
    return f"{app}:{group}/{body.get('kind')}:{where}"


def not_compared_hint(unit: Environment) -> str:
    """For an Argo CD or Flux unit compared with no cluster: the setting that would
    compare it, as Markdown ("" for an environment of `.gitops-bot.yaml`)."""
    if controller_apply(unit) is None:
        return ""
    side = "argocd" if unit.name.startswith(Controller.ARGOCD) else "flux"
    example = json.dumps({side: {unit.cluster: "CLUSTER"}})
    return (
        f"the `controller_clusters` server setting maps its destination {code(unit.cluster)} "
        f"to none of the bot's clusters; e.g. {code(example)}, CLUSTER being one of "
        "`GITOPS_BOT_CLUSTERS`"
    )


def flux_destination(spec: Mapping[str, Any], namespace: str) -> str:
    """A Flux object's cluster: `in-cluster`, or the Secret its `spec.kubeConfig` reads."""
    if "kubeConfig" not in spec:
        return IN_CLUSTER
    config = spec.get("kubeConfig")
    secret = config.get("secretRef") if isinstance(config, Mapping) else None
    name = secret.get("name") if isinstance(secret, Mapping) else None
    return f"kubeconfig:{namespace}/{name}" if name else "kubeconfig"
