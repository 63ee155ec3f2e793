"""Identical kustomize inputs build once: the kept output gives the same objects as a build
of its own, and any difference in the inputs (a file, the folder, the overrides, the
limits, network access) builds again."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.gitrepos import Repo
from helpers.manifests import configmap, deployment

from bot.core.repoconfig import Environment, EnvironmentSource, SourceType
from bot.git.repos import GitRepo
from bot.renderers import Rendered, RenderOptions, RenderRequest, builds, render
from bot.renderers.builds import BuildOutputs

KUSTOMIZE = EnvironmentSource(SourceType.KUSTOMIZE)
EAST = Environment("argocd/web-east", "apps/web", "east", "web", source=KUSTOMIZE)
WEST = Environment("argocd/web-west", "apps/web", "west", "shop", source=KUSTOMIZE)
TREE = {
    "base/kustomization.yaml": "resources: [deployment.yaml, settings.yaml]\n",
    "base/deployment.yaml": deployment(),
    "base/settings.yaml": configmap(mode="fast"),
    "apps/web/kustomization.yaml": "resources: [../../base]\nnamePrefix: web-\n",
    "apps/api/kustomization.yaml": "resources: [../../base]\nnamePrefix: web-\n",
}


@pytest.fixture
def outputs(monkeypatch: pytest.MonkeyPatch) -> BuildOutputs:
    """A fresh store for each test, so what other tests built is not found here."""
    fresh = BuildOutputs()
    monkeypatch.setattr(builds, "BUILDS", fresh)
    return fresh


@pytest.fixture
def counted(tmp_path: Path, render_tools: Path) -> tuple[Path, Path]:
    """A kustomize that notes each run in a log, then is the real one."""
    log = tmp_path / "runs.log"
    tool = tmp_path / "kustomize"
    tool.write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{render_tools / "kustomize"}" "$@"\n')
    tool.chmod(0o755)
    return tool, log


def runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


async def rendered(repo: Repo, commit: str, env: Environment, opts: RenderOptions) -> Rendered:
    return await render(RenderRequest(GitRepo(repo.path), commit, env, "1.33", opts))


async def test_two_units_of_the_same_inputs_build_once_and_get_what_each_build_gives(
    repo: Repo, outputs: BuildOutputs, counted: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tool, log = counted
    commit = repo.commit(TREE)
    opts = RenderOptions(kustomize=str(tool))
    east, west = await asyncio.gather(*(rendered(repo, commit, e, opts) for e in (EAST, WEST)))
    assert runs(log) == 1

    for env, kept in ((EAST, east), (WEST, west)):
        monkeypatch.setattr(builds, "BUILDS", BuildOutputs())  # built on its own
        alone = await rendered(repo, commit, env, opts)
        assert alone.loaded == kept.loaded and alone.texts == kept.texts
    assert runs(log) == 3
    assert {m.key.namespace for m in east.loaded.manifests} == {"web"}  # its own namespace
    assert {m.key.namespace for m in west.loaded.manifests} == {"shop"}


async def test_any_difference_in_the_inputs_builds_again(
    repo: Repo, outputs: BuildOutputs, counted: tuple[Path, Path]
) -> None:
    tool, log = counted
    first = repo.commit(TREE)
    second = repo.commit(TREE | {"base/settings.yaml": configmap(mode="slow")})
    opts = RenderOptions(kustomize=str(tool))
    api = replace(EAST, path="apps/api")  # the same text in another folder
    overrides = replace(EAST, source=replace(KUSTOMIZE, overrides='{"namePrefix": "x-"}'))

    await rendered(repo, first, EAST, opts)
    await rendered(repo, first, EAST, opts)
    assert runs(log) == 1
    for commit, env, options in (
        (second, EAST, opts),  # a file of the base differs
        (first, api, opts),
        (first, overrides, opts),
        (first, EAST, replace(opts, max_output_bytes=10**6)),
        (first, EAST, replace(opts, timeout_seconds=30)),
    ):
        before = runs(log)
        await rendered(repo, commit, env, options)
        assert runs(log) == before + 1, (commit, env, options)


async def test_with_network_access_or_a_failure_nothing_is_kept(
    repo: Repo, outputs: BuildOutputs, counted: tuple[Path, Path]
) -> None:
    tool, log = counted
    broken = repo.commit(TREE | {"base/settings.yaml": "data: [not, a, mapping\n"})
    opts = RenderOptions(kustomize=str(tool))
    failures = [(await rendered(repo, broken, EAST, opts)).loaded.findings for _ in range(2)]
    assert failures[0] == failures[1] and failures[0]
    assert runs(log) == 2

    commit = repo.commit(TREE)
    networked = replace(opts, allow_network=True)
    for _ in range(2):
        await rendered(repo, commit, EAST, networked)
    assert runs(log) == 4


def test_the_kept_outputs_stay_within_their_bound() -> None:
    kept = BuildOutputs(max_bytes=100)
    kept.put("a", b"x" * 20)
    kept.put("b", b"y" * 20)
    kept.put("huge", b"z" * 26)  # over a quarter of the bound: never kept
    assert kept.get("a") == b"x" * 20  # now the most recently used
    for key in "cdefg":
        kept.put(key, b"w" * 20)
    assert kept.get("huge") is None and kept.get("b") is None
    assert kept.get("a") is None  # the least recently used by then
    assert [kept.get(k) is not None for k in "cdefg"] == [True] * 5
