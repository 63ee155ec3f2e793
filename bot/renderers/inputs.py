"""What a render reads: the files (path and blob) an environment's output depends on."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.repoconfig import Environment, SourceType
from bot.git.repos import GitRepo
from bot.renderers.charts import plan_chart
from bot.renderers.checkouts import TreeIndex, read_index
from bot.renderers.kustomizations import KUSTOMIZATION_FILES, scan_with_components
from bot.renderers.protocol import RenderOptions

Inputs = frozenset[tuple[str, str]]  # (path, blob id)


_READ_AHEAD = frozenset({*KUSTOMIZATION_FILES, "Chart.yaml"})


@dataclass
class CommitReading:
    """One commit's tree and the blobs read from it so far: many units share their bases,
    so working out the inputs of every unit reads each file once."""

    index: TreeIndex
    blobs: dict[str, bytes]
    repo: GitRepo

    @classmethod
    async def of(cls, repo: GitRepo, commit: str) -> CommitReading:
        """The commit's tree, with every kustomization and Chart.yaml read in one batch."""
        index = await read_index(repo, commit)
        wanted = [
            entry.oid
            for path, entry in index.entries.items()
            if path.rsplit("/", 1)[-1] in _READ_AHEAD and index.is_file(path)
        ]
        return cls(index, await repo.read_blobs(wanted), repo)

    async def read(self, path: str) -> bytes:
        oid = self.index.entries[path].oid
        if oid not in self.blobs:
            self.blobs[oid] = (await self.repo.read_blobs([oid]))[oid]
        return self.blobs[oid]


async def render_inputs(reading: CommitReading, env: Environment, options: RenderOptions) -> Inputs:
    """The files below the folders the render reaches: its path, kustomize bases and
    components, a chart's local dependencies, and helm value files.

    Two commits whose inputs are equal render the same objects, so only a unit whose
    inputs differ needs rendering; a folder that cannot be scanned counts as its path alone.
    """
    index = reading.index
    folders, files = await _reached(reading, env, options)
    entries = index.below(folders) + [index.entries[f] for f in files if f in index.entries]
    return frozenset((entry.path, entry.oid) for entry in entries)


async def _reached(
    reading: CommitReading, env: Environment, options: RenderOptions
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    index, read = reading.index, reading.read
    if env.source.type is SourceType.KUSTOMIZE:
        components = env.source.components
        scan = await scan_with_components(index, read, env.path, components, options.allow_network)
        return (env.path, *scan.folders), ()
    if env.source.type is SourceType.HELM:
        chart = await plan_chart(index, read, env.path, options.allow_network)
        return (env.path, *chart.folders), env.source.values
    return (env.path,), ()
