"""The Argo CD and Flux units of a change: found at base and head, paired, and sorted out."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.core.gitopsapps import PreviewUnit, RepoIdentity, discover_units, generator_files
from bot.core.repoconfig import Environment, RepoConfig
from bot.git.repos import GitRepo
from bot.renderers import RenderOptions, RenderRequest, render
from bot.renderers.checkouts import read_index
from bot.renderers.inputs import render_inputs

_WHOLE_TREE = Environment("discovery", ".", "-")


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


def identity_for(config: RepoConfig, identity: RepoIdentity) -> RepoIdentity:
    """The caller's identity (forge clone URL, CLI flags) with the config's `repo_urls`."""
    urls = identity.urls + tuple(u for u in config.repo_urls if u != "*")
    return replace(identity, urls=urls, any_url=identity.any_url or "*" in config.repo_urls)


async def units_at(
    repo: GitRepo, commit: str, identity: RepoIdentity, version: str, options: RenderOptions
) -> tuple[PreviewUnit, ...]:
    """Every Application and Kustomization the commit declares, as units."""
    rendered = await render(RenderRequest(repo, commit, _WHOLE_TREE, version, options))
    manifests = rendered.loaded.manifests
    index = await read_index(repo, commit)
    wanted_files = [p for p in generator_files(manifests, index.entries) if index.is_file(p)]
    blobs = await repo.read_blobs([index.entries[p].oid for p in wanted_files])
    contents = {path: blobs[index.entries[path].oid] for path in wanted_files}
    return discover_units(manifests, index.entries, identity, contents)


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
    base = {u.name: u for u in units[0]}
    head = {u.name: u for u in units[1]}
    pairs = [UnitPair(n, base.get(n), head.get(n)) for n in sorted(base.keys() | head.keys())]
    not_previewed = tuple(p.declared for p in pairs if p.declared.environment is None)
    previewable = [p for p in pairs if p.declared.environment is not None]
    affected = [p for p in previewable if await _affected(repo, commits, p, options)]
    return UnitSorting(tuple(affected), not_previewed, len(previewable) - len(affected))


async def _affected(
    repo: GitRepo, commits: tuple[str, str], pair: UnitPair, options: RenderOptions
) -> bool:
    before = pair.base.environment if pair.base else None
    after = pair.head.environment if pair.head else None
    if before is None or after is None or before != after:
        return True  # added, removed or redefined: the object itself is the change
    inputs = [await render_inputs(repo, commit, before, options) for commit in commits]
    return inputs[0] != inputs[1]
