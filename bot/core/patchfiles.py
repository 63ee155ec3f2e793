"""Files that kustomizations use as patches: partial objects, never objects of their own.

Reading every YAML file of a commit finds the patch files of kustomize overlays too
(`apps/staging/podinfo-values.yaml` patching a HelmRelease); they change what a build
gives and declare nothing themselves, so discovery leaves them out.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import yaml


def patch_files(kustomizations: Mapping[str, bytes]) -> frozenset[str]:
    """The repository paths that the kustomization files (by path) name as patches."""
    return frozenset(
        posixpath.normpath(posixpath.join(posixpath.dirname(path), name))
        for path, text in kustomizations.items()
        for name in _patch_names(_fields(text))
    )


def _fields(text: bytes) -> Mapping[str, Any]:
    try:
        fields = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return fields if isinstance(fields, Mapping) else {}


def _patch_names(fields: Mapping[str, Any]) -> Iterable[str]:
    for entry in fields.get("patches") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("path"), str):
            yield entry["path"]
    for entry in fields.get("patchesStrategicMerge") or []:
        if isinstance(entry, str) and "\n" not in entry:
            yield entry  # a file name; an inline patch holds a newline
    for entry in fields.get("patchesJson6902") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("path"), str):
            yield entry["path"]
