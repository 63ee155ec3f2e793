"""Files in a plain environment that are not Kubernetes objects: excluded, skipped or refused.

Tools keep their files beside manifests: kustomize's kustomization, a Helm chart, CI and
linter settings. Read as objects they would be errors that mislead ("has no
metadata.name"). Each is either skipped with a note the plan lists, so a reviewer sees
what was not read, or refused with a message that names the fix.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.findings import Finding, Severity, Stage
from bot.core.globs import compile_glob, matches_any
from bot.core.manifests import (
    KUSTOMIZE_GROUP,
    LoadResult,
    ParsedFiles,
    Skipped,
    SourceFile,
    collect_manifests,
    files_within_total,
    group_of,
    parse_files,
)

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
HELM_CHART = "Chart.yaml"
_LIST_KEYS = frozenset({"apiVersion", "kind", "metadata", "resources"})
_TOOL_FOLDERS = {
    ".github": "GitHub's settings and workflows",
    ".gitlab": "GitLab's settings",
    ".circleci": "CircleCI's configuration",
    ".devcontainer": "a development container's settings",
    ".vscode": "editor settings",
}
_TOOL_FILES = {
    ".gitops-bot.yaml": "this bot's own configuration",
    ".gitlab-ci.yml": "GitLab CI's configuration",
    ".pre-commit-config.yaml": "pre-commit's configuration",
    ".pre-commit-hooks.yaml": "pre-commit's hook list",
    ".sops.yaml": "SOPS's encryption rules",
    ".yamllint": "yamllint's configuration",
    ".yamllint.yaml": "yamllint's configuration",
    ".yamllint.yml": "yamllint's configuration",
    "renovate.json": "Renovate's configuration",
    ".renovaterc.json": "Renovate's configuration",
    "kustomizeconfig.yaml": "kustomize's field configuration",
    "package.json": "an npm package description",
    "package-lock.json": "an npm lock file",
}


@dataclass(frozen=True)
class Choice:
    """Which files below an environment's folder are read; why the others are not."""

    left_out: frozenset[str]  # repository paths not read at all
    skipped: tuple[Skipped, ...] = ()
    findings: tuple[Finding, ...] = ()


def choose_files(
    paths: Sequence[str], root: str, exclude: Iterable[str], include: Iterable[str] = ()
) -> Choice:
    """Leave out what `exclude` names (or `include` does not), Helm charts and tool files."""
    globs = [compile_glob(glob) for glob in exclude]
    only = [compile_glob(glob) for glob in include]
    excluded = {p for p in paths if matches_any(_relative(p, root), globs)}
    excluded |= {p for p in paths if only and not matches_any(_relative(p, root), only)}
    remaining = [p for p in paths if p not in excluded]
    charts = _chart_folders(remaining)
    if root in charts:
        return Choice(frozenset(paths), findings=(_chart_at_root(root),))
    in_charts = {p for p in remaining if any(_below(p, chart) for chart in charts)}
    tools = {p: why for p in remaining if p not in in_charts and (why := _tool_file(p, root))}
    skipped = [_chart_note(chart, remaining) for chart in sorted(charts)]
    skipped += [Skipped(path, f"{why}, not a Kubernetes object") for path, why in tools.items()]
    return Choice(frozenset(excluded | in_charts | set(tools)), tuple(sorted(skipped)))


def is_kustomization_name(path: str) -> bool:
    return posixpath.basename(path) in KUSTOMIZATION_FILES


def load_folder(files: Iterable[SourceFile], root: str, namespace: str) -> LoadResult:
    """load_manifests, with kustomize's own documents taken out (see `kustomize_documents`)."""
    readable, left_out = files_within_total(files)
    parsed = parse_files(readable)
    objects, skipped, findings = kustomize_documents(parsed, root)
    loaded = collect_manifests(objects, namespace, left_out)[0]
    return LoadResult(loaded.manifests, findings + loaded.findings, skipped)


def kustomize_documents(
    parsed: ParsedFiles, root: str
) -> tuple[ParsedFiles, tuple[Skipped, ...], tuple[Finding, ...]]:
    """The objects that are not kustomizations, and what to say about those that are.

    A kustomization at the root means the environment should be built by kustomize; one
    further down that only lists the files beside it (as Flux's `flux-system/` does) is
    skipped, since those files are read anyway; one that changes them is refused.
    """
    by_file: dict[str, list[tuple[Mapping[str, Any], int]]] = {}
    kept = []
    for body, source in parsed.objects:
        if _is_kustomization(body, source.path):
            by_file.setdefault(source.path, []).append((body, source.line))
        else:
            kept.append((body, source))
    verdicts = [_kustomization_verdict(path, root, docs) for path, docs in by_file.items()]
    skipped = tuple(v for v in verdicts if isinstance(v, Skipped))
    findings = tuple(v for v in verdicts if isinstance(v, Finding))
    return ParsedFiles(tuple(kept), parsed.findings), skipped, findings


def _is_kustomization(body: Mapping[str, Any], path: str) -> bool:
    api_version = body.get("apiVersion")
    if isinstance(api_version, str) and api_version:
        # Flux's Kustomization (kustomize.toolkit.fluxcd.io) is an object, whatever its file.
        return group_of(api_version) == KUSTOMIZE_GROUP
    return is_kustomization_name(path)


def _kustomization_verdict(
    path: str, root: str, documents: list[tuple[Mapping[str, Any], int]]
) -> Skipped | Finding:
    folder = posixpath.dirname(path) or "."
    line = documents[0][1]
    if folder == root:
        return _refusal(
            path,
            line,
            f"{posixpath.basename(path)} is a kustomization at the root of this plain "
            "environment, so kustomize would build this folder differently from reading its "
            "files one by one; set `source: {type: kustomize}` for the environment in "
            ".gitops-bot.yaml, or, if the files are plain manifests, add "
            f"`exclude: [{posixpath.basename(path)}]`",
        )
    changes = sorted({key for body, _ in documents for key in body if key not in _LIST_KEYS})
    changes += [f"resources: {r}" for body, _ in documents for r in _outside(body, folder)]
    if not changes:
        return Skipped(path, "kustomize's list of the files beside it, which are read as they are")
    return _refusal(
        path,
        line,
        f"this kustomization changes or adds to what it lists ({', '.join(changes)}), which a "
        "plain environment does not do: its files would be read as they are written. Make "
        f"{folder}/ an environment of its own with `source: {{type: kustomize}}`, or add "
        f"`exclude: [{_relative(folder, root)}/**]` to this one",
    )


def _outside(body: Mapping[str, Any], folder: str) -> list[str]:
    """Resources a plain read of `folder` would not find: remote, or outside the folder."""
    items = body.get("resources")
    listed = [r for r in items if isinstance(r, str)] if isinstance(items, list) else []
    return [
        r for r in listed if "://" in r or r.startswith("/") or ".." in r.split("/") or "\n" in r
    ]


def _chart_folders(paths: Iterable[str]) -> set[str]:
    return {posixpath.dirname(p) or "." for p in paths if posixpath.basename(p) == HELM_CHART}


def _chart_at_root(root: str) -> Finding:
    return _refusal(
        posixpath.join(root, HELM_CHART) if root != "." else HELM_CHART,
        None,
        "this plain environment's folder is a Helm chart, whose templates and values are not "
        "Kubernetes objects, so none of its files were read; set `source: {type: helm}` for "
        "the environment in .gitops-bot.yaml (with `values:` and `release:` as needed)",
    )


def _chart_note(chart: str, paths: Iterable[str]) -> Skipped:
    count = sum(_below(p, chart) for p in paths)
    return Skipped(
        f"{chart}/",
        f"a Helm chart ({count} files): its templates and values are not Kubernetes "
        "objects; to check it, make it an environment with `source: {type: helm}`",
    )


def _tool_file(path: str, root: str) -> str | None:
    relative = _relative(path, root)
    first = relative.split("/", 1)[0]
    if first in _TOOL_FOLDERS and "/" in relative:
        return _TOOL_FOLDERS[first]
    return _TOOL_FILES.get(posixpath.basename(path))


def _relative(path: str, root: str) -> str:
    return path if root in ("", ".") else path.removeprefix(root + "/")


def _below(path: str, folder: str) -> bool:
    return folder == "." or path.startswith(folder + "/")


def _refusal(path: str, line: int | None, message: str) -> Finding:
    return Finding(Stage.MANIFEST, Severity.ERROR, "manifest.tool-file", message, path, line)
