"""Units told apart: one name declared in several places, and Applications declared twice.

Repositories for several clusters often declare the same object once per cluster folder
(`clusters/staging/apps.yaml` and `clusters/production/apps.yaml` both declaring the
Kustomization `flux-system/apps`). Each is its own unit, named after the part of its
folder that tells it apart: `flux/staging/flux-system/apps`. A name declared once keeps
its plain form. Argo CD refuses an Application that an ApplicationSet generates when
another declaration already has its name, so that is reported, never silently resolved.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from itertools import chain

from bot.core.diffs import Action
from bot.core.findings import Finding, Severity, Stage
from bot.core.gitopsapps import PreviewUnit
from bot.core.plans import EnvironmentPlan

DUPLICATE_RULE = "argocd.duplicate-application"


def named_apart(units: Iterable[PreviewUnit], *others: Iterable[PreviewUnit]) -> list[PreviewUnit]:
    """`units` with each name that several files declare (here or in `others`, e.g. the
    other commit of a change, so both sides name a unit alike) qualified by its place."""
    units = list(units)
    files: defaultdict[str, set[str]] = defaultdict(set)
    clashing: set[str] = set()  # one Argo CD Application either way: keeps its plain name
    for unit in chain(units, *others):
        files[unit.key].add(unit.file)
        if unit.duplicates:
            clashing.add(unit.key)
    scopes = {
        key: scope_labels(sorted(paths))
        for key, paths in files.items()
        if len(paths) > 1 and key not in clashing
    }
    return [_qualified(u, scopes[u.key][u.file]) if u.key in scopes else u for u in units]


def _qualified(unit: PreviewUnit, scope: str) -> PreviewUnit:
    kind, _, rest = unit.key.partition("/")
    name = f"{kind}/{scope}/{rest}"
    env = replace(unit.environment, name=name) if unit.environment else None
    return replace(unit, name=name, environment=env, plain_name=unit.key)


def scope_labels(paths: Sequence[str]) -> dict[str, str]:
    """For files declaring one name, the shortest part of each folder that tells them
    apart: the folders less what they all share at the start and at the end
    (`clusters/staging/flux-system` and `clusters/production/flux-system` give `staging`
    and `production`); the file's own path when the folders do not tell them apart."""
    folders = [posixpath.dirname(path).split("/") for path in paths]
    labels = ["/".join(parts) for parts in _trimmed(folders)]
    if "" in labels or len(set(labels)) < len(labels):
        labels = ["/".join(parts) for parts in _trimmed([p.split("/") for p in paths])]
    if "" in labels or len(set(labels)) < len(labels):
        labels = list(paths)
    return dict(zip(paths, labels, strict=True))


def _trimmed(parts: list[list[str]]) -> list[list[str]]:
    """Each list without the leading and trailing items that every list shares."""
    shortest = min(len(p) for p in parts)
    start = 0
    while start < shortest and len({p[start] for p in parts}) == 1:
        start += 1
    end = 0
    while end < shortest - start and len({p[len(p) - 1 - end] for p in parts}) == 1:
        end += 1
    return [p[start : len(p) - end] for p in parts]


def without_duplicates(units: Iterable[PreviewUnit]) -> list[PreviewUnit]:
    """The units, with every Application that an ApplicationSet generates under a name
    another declaration also gives replaced by one unit that says so (not previewed)."""
    groups: defaultdict[str, list[PreviewUnit]] = defaultdict(list)
    for unit in units:
        groups[unit.key].append(unit)
    return [unit for group in groups.values() for unit in _resolved(group)]


def _resolved(group: list[PreviewUnit]) -> list[PreviewUnit]:
    declarations = sorted({u.declared_by for u in group})
    generated = any(u.declared_by.startswith("ApplicationSet ") for u in group)
    if len(declarations) < 2 or not generated or not group[0].key.startswith("argocd/"):
        return group
    # The plain Application's file names the unit, so a commit without the conflict pairs it.
    first = min(group, key=lambda u: (u.declared_by.startswith("ApplicationSet "), u.file))
    reason = (
        f"Argo CD keeps one Application of a name, and {len(declarations)} declarations give "
        f"{first.key.removeprefix('argocd/')}: {' and '.join(declarations)}; Argo CD "
        "refuses the one it meets second, and which that is cannot be told from Git. "
        "Rename one of them"
    )
    folders = {f for u in group for f in u.folders}
    folders |= {u.environment.path for u in group if u.environment is not None}
    return [
        replace(
            first,
            environment=None,
            reason=reason,
            duplicates=tuple(declarations),
            folders=tuple(sorted(folders)),
            definition="\n".join(sorted(u.definition for u in group)),
        )
    ]


def duplicate_findings(head: Iterable[PreviewUnit], base: Iterable[PreviewUnit]) -> list[Finding]:
    """One finding per Application declared twice at the head: an error when the change
    brings it, a warning when the base already had it."""
    before = {u.key: u.duplicates for u in base if u.duplicates}
    return [
        Finding(
            Stage.CONFIG,
            Severity.WARNING if before.get(u.key) == u.duplicates else Severity.ERROR,
            DUPLICATE_RULE,
            u.reason,
            u.file or None,
            u.line or None,
            subject=f"argoproj.io/v1alpha1 Application {u.key.removeprefix('argocd/')}",
        )
        for u in head
        if u.duplicates
    ]


# The units an object of a render stands for: kinds that a controller deploys from.
_UNIT_KINDS = {
    ("helm.toolkit.fluxcd.io", "HelmRelease"): "helmrelease/{namespace}/{name}",
    ("kustomize.toolkit.fluxcd.io", "Kustomization"): "flux/{namespace}/{name}",
    ("argoproj.io", "Application"): "argocd/{name}",
}


def touched_by_renders(
    plans: Iterable[EnvironmentPlan], not_previewed: Iterable[PreviewUnit]
) -> list[PreviewUnit]:
    """Units that are not previewed whose object changes in the render of a previewed unit
    (an overlay patching a HelmRelease of a remote chart): what their controller deploys
    changes, and the preview cannot show it."""
    changed: dict[str, str] = {}
    for plan in plans:
        for change in plan.changes:
            pattern = _UNIT_KINDS.get((change.key.group, change.key.kind))
            if pattern and change.action is not Action.UNCHANGED:
                key = pattern.format(namespace=change.key.namespace, name=change.key.name)
                changed.setdefault(key, plan.environment.name)
    return [
        replace(unit, reason=f"{unit.reason} (its object changes in {changed[unit.key]})")
        for unit in not_previewed
        if unit.key in changed
    ]
