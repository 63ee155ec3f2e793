"""A starter `.gitops-bot.yaml`: environments guessed from a repository's layout."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from posixpath import basename, dirname

from bot.core.repoconfig import CONFIG_PATH, DEFAULT_KUBERNETES_VERSION

KUSTOMIZATION_NAMES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
# Folders kustomize overlays build on: they are rendered through their overlays.
_BASE_FOLDERS = frozenset({"base", "bases", "components"})


@dataclass(frozen=True)
class Discovered:
    name: str
    path: str  # a folder, relative to the repository root ("." for the root)
    source: str  # plain, kustomize or helm
    why: str  # what was found there, for the comment above the environment


def discover(files: Iterable[str], manifests: Iterable[str]) -> tuple[Discovered, ...]:
    """Helm charts, kustomize overlays, then folders of plain manifests outside both.

    `files` are all file paths of the repository; `manifests` those holding Kubernetes
    objects (the caller reads them)."""
    files = sorted(files)
    charts = [dirname(f) or "." for f in files if basename(f) == "Chart.yaml"]
    charts = [c for c in charts if not _inside(c, [o for o in charts if o != c])]
    kustomizations = [dirname(f) or "." for f in files if basename(f) in KUSTOMIZATION_NAMES]
    overlays = [k for k in kustomizations if not _is_base(k)]
    taken = charts + kustomizations
    plain = sorted({dirname(m) or "." for m in manifests if not _inside(dirname(m) or ".", taken)})
    found = [
        *(Discovered("", c, "helm", "a Helm chart (Chart.yaml)") for c in charts),
        *(Discovered("", k, "kustomize", "a kustomize overlay") for k in overlays),
        *(Discovered("", p, "plain", "plain manifests") for p in plain),
    ]
    return _named(found)


def starter_config(found: Sequence[Discovered], policy_folders: Sequence[str] = ()) -> str:
    """The file's text, each environment with a comment on what to check before using it."""
    lines = [
        f"# {CONFIG_PATH}: written by `gitops-bot init`. Check each environment, then",
        "# commit this file; the bot reads it from the base commit of each pull request.",
        "# Every key is described in the README under 'Repository configuration'.",
        "version: 1",
        f'kubernetes_version: "{DEFAULT_KUBERNETES_VERSION}"  # schemas to check against',
    ]
    if policy_folders:
        lines.append("policies:  # the repository's own policies, besides the bot's defaults")
        lines.extend(f"  - {_quoted(folder)}" for folder in policy_folders)
    lines.append("environments:")
    for env in found:
        lines.extend(_environment(env))
    return "\n".join(lines) + "\n"


def _environment(env: Discovered) -> list[str]:
    lines = [
        f"  # {env.path}: {env.why}",
        f"  {env.name}:",
        f"    path: {_quoted(env.path)}",
        f"    cluster: {env.name}  # a cluster name from the bot's server settings (clusters:)",
        "    namespace: default  # for objects that name none",
        "    apply_on_merge: false  # true: apply to the cluster when merged",
        "    prune: false  # true: delete objects removed from Git",
    ]
    if env.source == "helm":
        release = f"{{type: helm, release: {env.name}}}"
        lines.append(f"    source: {release}  # add values: [a/values.yaml, ...] if it needs any")
    elif env.source == "kustomize":
        lines.append("    source: {type: kustomize}")
    return lines


def _named(found: list[Discovered]) -> tuple[Discovered, ...]:
    """Unique environment names: the folder's own name, else its whole path, else numbered."""
    names: dict[str, Discovered] = {}
    for env in found:
        name = _name(basename(env.path))
        if not name or name in names:
            name = _name(env.path) or "root"
        base, number = name, 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names[name] = Discovered(name, env.path, env.source, env.why)
    return tuple(names.values())


def _name(path: str) -> str:
    """A name the config accepts: lowercase letters, digits and dashes, at most 63."""
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:58].strip("-")


def _inside(path: str, folders: Iterable[str]) -> bool:
    return any(f == "." or path == f or path.startswith(f + "/") for f in folders)


def _is_base(folder: str) -> bool:
    return any(part in _BASE_FOLDERS for part in folder.split("/"))


def _quoted(text: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./-]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
