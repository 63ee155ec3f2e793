"""`controller_clusters`: which of the bot's clusters an Argo CD or Flux destination is."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bot.core.controllerapply import ControllerClusters

_SIDES = ("argocd", "flux")
_EXAMPLE = (
    '{"argocd": {"https://kubernetes.default.svc": "staging", "prod": "production"}, '
    '"flux": {"in-cluster": "staging"}}'
)


class ControllerClustersError(ValueError):
    """The setting cannot be read; the message says which entry and what to fix."""


def parse_controller_clusters(value: Any) -> ControllerClusters:
    """A mapping {argocd: {destination: cluster}, flux: {destination: cluster}}; a JSON
    text when it comes from a variable."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ControllerClustersError(f"not valid JSON: {exc}; e.g. {_EXAMPLE}") from None
    if not isinstance(value, Mapping):
        raise ControllerClustersError(f"give a mapping, e.g. {_EXAMPLE}")
    if unknown := sorted(set(value) - set(_SIDES)):
        raise ControllerClustersError(f"unknown key {unknown[0]!r}: use argocd and flux")
    argocd, flux = (_pairs(side, value.get(side) or {}) for side in _SIDES)
    return ControllerClusters(argocd, flux)


def _pairs(side: str, entries: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(entries, Mapping):
        raise ControllerClustersError(f"{side}: give a mapping of destination to cluster name")
    for destination, cluster in entries.items():
        if not isinstance(cluster, str) or not cluster:
            raise ControllerClustersError(
                f"{side}.{destination}: give the name of a cluster of GITOPS_BOT_CLUSTERS"
            )
    return tuple(sorted((str(d), c) for d, c in entries.items()))


def unknown_clusters(mapping: ControllerClusters, known: Iterable[str]) -> str | None:
    """What is wrong when a destination maps to a cluster the bot has no settings for."""
    names = set(known)
    for side, pairs in (("argocd", mapping.argocd), ("flux", mapping.flux)):
        for destination, cluster in pairs:
            if cluster not in names:
                return (
                    f"{side}.{destination} names cluster {cluster!r}, which "
                    f"GITOPS_BOT_CLUSTERS does not configure (it has: {', '.join(sorted(names))})"
                )
    return None
