"""The Argo CD and Flux units of a change: found at base and head, paired, and sorted out."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace

from bot.core.fluxhelm import helm_release_units
from bot.core.generated import (
    generated_objects,
    generating,
    may_be_referenced,
    merged,
    referenced,
)
from bot.core.gitdata import DataObjects
from bot.core.gitopsapps import (
    KUSTOMIZATION_FILES,
    PreviewUnit,
    children_of,
    declares_apps,
    discover_units,
    generator_files,
)
from bot.core.identities import RepoIdentity
from bot.core.manifests import Manifest
from bot.core.patchfiles import patch_files, transforming_below
from bot.core.redeclared import redeclared
from bot.core.repoconfig import Environment, EnvironmentSource, RepoConfig, SourceType
from bot.core.unitnames import named_apart, without_duplicates
from bot.git.repos import GitRepo
from bot.renderers import RenderOptions, RenderRequest, render, render_failure
from bot.renderers.checkouts import TreeIndex, read_index
from bot.renderers.inputs import CommitReading, render_inputs

_WHOLE_TREE = Environment("discovery", ".", "-")
_BUILT = EnvironmentSource(SourceType.KUSTOMIZE)


@dataclass(frozen=True)
class UnitPair:
    """A unit as the base and the head declare it; None on the side that lacks it."""

    name: str
    base: PreviewUnit | None
    head: PreviewUnit | None

    @property
    def declared(self) -> PreviewUnit:
        unit = self.head or self.base
        assert unit is not None  # a pair always has one side
        return unit


@dataclass(frozen=True)
class UnitSorting:
    affected: tuple[UnitPair, ...]  # to render and compare
    not_previewed: tuple[PreviewUnit, ...]  # with the reason
    unaffected: int  # previewable units whose inputs the change does not touch
    # Of `not_previewed`, those the change touches: the plan cannot say what they deploy.
    touched: tuple[PreviewUnit, ...] = ()


def identity_for(config: RepoConfig, identity: RepoIdentity) -> RepoIdentity:
    """The caller's identity (forge clone URL, CLI flags) with the config's `repo_urls`."""
    urls = identity.urls + tuple(u for u in config.repo_urls if u != "*")
    return replace(identity, urls=urls, any_url=identity.any_url or "*" in config.repo_urls)


@dataclass(frozen=True)
class _Commit:
    """One commit as discovery reads it, with what rendering a unit there needs."""

    repo: GitRepo
    commit: str
    index: TreeIndex
    identity: RepoIdentity
    version: str
    options: RenderOptions


async def units_at(
    repo: GitRepo, commit: str, identity: RepoIdentity, version: str, options: RenderOptions
) -> tuple[PreviewUnit, ...]:
    """Every Application, ApplicationSet and Kustomization the commit declares, as units,
    with the Applications that Argo CD units render (app of apps, up to MAX_APP_DEPTH)."""
    rendered = await render(RenderRequest(repo, commit, _WHOLE_TREE, version, options))
    loaded = rendered.loaded
    at = _Commit(repo, commit, await read_index(repo, commit), identity, version, options)
    kustomizations = await _kustomizations(at)
    patches = patch_files(kustomizations)
    # Every declaration counts: each cluster folder may declare the same object (unitnames).
    found = (*loaded.manifests, *redeclared(loaded, rendered.texts, _WHOLE_TREE.namespace))
    manifests = tuple(m for m in found if m.source.path not in patches)
    contents = await _generator_contents(at, manifests)
    generated = await _generated_data(at, kustomizations, referenced(manifests))
    top = discover_units(manifests, at.index.entries, identity, contents, generated)
    top += helm_release_units(manifests, identity, generated)
    top = tuple(_flux_built_below(unit, kustomizations) for unit in top)
    app_files = frozenset(m.source.path for m in manifests if declares_apps(m))
    return tuple(without_duplicates(await _with_children(at, top, app_files)))


async def _generator_contents(at: _Commit, manifests: tuple[Manifest, ...]) -> dict[str, bytes]:
    """The files that the ApplicationSets' git files generators may read."""
    index = at.index
    wanted_files = [p for p in generator_files(manifests, index.entries) if index.is_file(p)]
    blobs = await at.repo.read_blobs([index.entries[p].oid for p in wanted_files])
    return {path: blobs[index.entries[path].oid] for path in wanted_files}


def _flux_built_below(unit: PreviewUnit, kustomizations: dict[str, bytes]) -> PreviewUnit:
    """A Flux unit read file by file is not previewed when Flux would build part of it with
    kustomize (e.g. flux-system/ with patches or a configMapGenerator): never a wrong read."""
    env = unit.environment
    if env is None or env.source.type is not SourceType.PLAIN or not unit.name.startswith("flux/"):
        return unit
    built = transforming_below(kustomizations, env.path)
    if not built:
        return unit
    reason = (
        f"its folder has no kustomization, so Flux generates one, which builds {built[0]} "
        "with kustomize; such a folder is not previewed yet (add a kustomization.yaml to "
        f"{env.path} listing its files and folders to have it previewed)"
    )
    return replace(unit, environment=None, reason=reason, folders=(env.path,))


async def _kustomizations(at: _Commit) -> dict[str, bytes]:
    """Every kustomization file of the commit, by path."""
    index = at.index
    paths = [p for p in index.entries if posixpath.basename(p) in KUSTOMIZATION_FILES]
    paths = [p for p in paths if index.is_file(p)]
    blobs = await at.repo.read_blobs([index.entries[p].oid for p in paths])
    return {path: blobs[index.entries[path].oid] for path in paths}


async def _generated_data(
    at: _Commit, kustomizations: dict[str, bytes], references: frozenset[tuple[str, str]]
) -> DataObjects:
    """The ConfigMaps and Secrets the commit's kustomizations generate that `references`
    may name, each folder built by kustomize as Flux builds it (so hashed names are
    kustomize's own); a generator no reference names costs no build."""
    found: DataObjects = {}
    for path, text in kustomizations.items():
        fields = generating(text) if references else None
        if fields is None or not may_be_referenced(fields, references):
            continue
        folder = posixpath.dirname(path) or "."
        env = Environment(f"generators/{folder}", folder, "-", source=_BUILT)
        rendered = await render(RenderRequest(at.repo, at.commit, env, at.version, at.options))
        found = merged(found, generated_objects(fields, path, rendered.loaded.manifests))
    return found


# How many levels of Applications rendered by Applications are expanded; the Applications
# a unit at the last level renders are listed as not previewed instead.
MAX_APP_DEPTH = 3


async def _with_children(
    at: _Commit, top: tuple[PreviewUnit, ...], app_files: frozenset[str]
) -> tuple[PreviewUnit, ...]:
    # By name and file: namesakes in other files are units of their own (see unitnames).
    units = {(unit.name, unit.file): unit for unit in top}
    level = [u for u in top if await _renders_apps(at, u, app_files)]
    expanded: set[tuple[str, str]] = set()
    for depth in range(1, MAX_APP_DEPTH + 2):
        parents = [p for p in level if (p.name, p.file) not in expanded]
        expanded |= {(p.name, p.file) for p in parents}
        level = []
        for parent in parents:
            if depth > MAX_APP_DEPTH:
                too_deep = _too_deep(parent)
                units[too_deep.name, too_deep.file] = too_deep
                continue
            children, files = await _children(at, parent)
            # The files it renders declare these Applications through it, not on their own.
            units = {k: u for k, u in units.items() if u.origin not in files or u is parent}
            units |= {(child.name, child.file): child for child in children}
            level += [c for c in children if await _renders_apps(at, c, app_files)]
    return tuple(sorted(units.values(), key=lambda unit: unit.name))


def _too_deep(parent: PreviewUnit) -> PreviewUnit:
    reason = (
        f"the Applications it renders are not previewed: apps of apps are expanded "
        f"{MAX_APP_DEPTH} levels deep"
    )
    return PreviewUnit(f"{parent.name}/apps", "", parent.origin, reason=reason, file=parent.file)


async def _children(
    at: _Commit, parent: PreviewUnit
) -> tuple[tuple[PreviewUnit, ...], frozenset[str]]:
    """The units a parent renders, and the files that declare them."""
    assert parent.environment is not None  # only previewable units render apps
    request = RenderRequest(at.repo, at.commit, parent.environment, at.version, at.options)
    rendered = await render(request)
    failure = render_failure(rendered.loaded.findings)
    if failure is not None:
        reason = f"the Applications it renders are unknown: it cannot be rendered ({failure})"
        unknown = PreviewUnit(
            f"{parent.name}/apps", "", parent.origin, reason=reason, file=parent.file
        )
        return (unknown,), frozenset()
    manifests = rendered.loaded.manifests
    contents = await _generator_contents(at, manifests)
    files = frozenset(m.source.path for m in manifests if declares_apps(m))
    return children_of(parent, manifests, at.index.entries, at.identity, contents), files


async def _renders_apps(at: _Commit, unit: PreviewUnit, app_files: frozenset[str]) -> bool:
    """Whether an Argo CD unit built by kustomize or helm may render Applications: a file
    declaring one inside its kustomize folder, or a chart template that names argoproj.io."""
    env = unit.environment
    if env is None or not unit.name.startswith("argocd/"):
        return False
    below = at.index.below((env.path,))
    if env.source.type is SourceType.KUSTOMIZE:
        return any(entry.path in app_files for entry in below)
    if env.source.type is not SourceType.HELM:
        return False
    inside = len(env.path) + 1 if env.path != "." else 0
    templates = [e for e in below if f"/{e.path[inside:]}".find("/templates/") >= 0]
    blobs = await at.repo.read_blobs([entry.oid for entry in templates])
    return any(b"argoproj.io" in text for text in blobs.values())


_ARGOCD_UNITS = ("argocd/", "applicationset/")
_FLUX_UNITS = ("flux/", "helmrelease/")


def wanted(units: tuple[PreviewUnit, ...], config: RepoConfig) -> tuple[PreviewUnit, ...]:
    """The units of the controllers the config turns on."""
    prefixes = (_ARGOCD_UNITS if config.argocd else ()) + (_FLUX_UNITS if config.flux else ())
    return tuple(u for u in units if u.name.startswith(prefixes))


async def sort_units(
    repo: GitRepo,
    commits: tuple[str, str],
    units: tuple[tuple[PreviewUnit, ...], tuple[PreviewUnit, ...]],
    options: RenderOptions,
) -> UnitSorting:
    base = {u.name: u for u in named_apart(units[0], units[1])}
    head = {u.name: u for u in named_apart(units[1], units[0])}
    pairs = [UnitPair(n, base.get(n), head.get(n)) for n in sorted(base.keys() | head.keys())]
    not_previewed = tuple(p.declared for p in pairs if p.declared.environment is None)
    previewable = [p for p in pairs if p.declared.environment is not None]
    readings = (await CommitReading.of(repo, commits[0]), await CommitReading.of(repo, commits[1]))
    affected = [p for p in previewable if await _affected(readings, p, options)]
    unknown = [p for p in pairs if p.declared.environment is None]
    touched = tuple(p.declared for p in unknown if _touched(readings, p))
    return UnitSorting(tuple(affected), not_previewed, len(previewable) - len(affected), touched)


def _touched(readings: tuple[CommitReading, CommitReading], pair: UnitPair) -> bool:
    """A unit that is not previewed is touched when its declaration differs between base
    and head (added, removed, redefined) or a file below a folder it is known to read does."""
    if pair.base != pair.head:
        return True
    folders = pair.declared.folders
    base, head = (frozenset(r.index.below(folders)) for r in readings)
    return base != head


async def _affected(
    readings: tuple[CommitReading, CommitReading], pair: UnitPair, options: RenderOptions
) -> bool:
    before = pair.base.environment if pair.base else None
    after = pair.head.environment if pair.head else None
    if before is None or after is None or before != after:
        return True  # added, removed or redefined: the object itself is the change
    inputs = [await render_inputs(reading, before, options) for reading in readings]
    return inputs[0] != inputs[1]
