"""What a render reads: the files (path and blob) an environment's output depends on."""

from __future__ import annotations

from bot.core.repoconfig import Environment, SourceType
from bot.git.repos import GitRepo
from bot.renderers.charts import plan_chart
from bot.renderers.checkouts import TreeIndex, blob_reader, read_index
from bot.renderers.kustomizations import scan_with_components
from bot.renderers.protocol import RenderOptions

Inputs = frozenset[tuple[str, str]]  # (path, blob id)


async def render_inputs(
    repo: GitRepo, commit: str, env: Environment, options: RenderOptions
) -> Inputs:
    """The files below the folders the render reaches: its path, kustomize bases and
    components, a chart's local dependencies, and helm value files.

    Two commits whose inputs are equal render the same objects, so only a unit whose
    inputs differ needs rendering; a folder that cannot be scanned counts as its path alone.
    """
    index = await read_index(repo, commit)
    folders, files = await _reached(repo, index, env, options)
    entries = index.below(folders) + [index.entries[f] for f in files if f in index.entries]
    return frozenset((entry.path, entry.oid) for entry in entries)


async def _reached(
    repo: GitRepo, index: TreeIndex, env: Environment, options: RenderOptions
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    read = blob_reader(repo, index)
    if env.source.type is SourceType.KUSTOMIZE:
        components = env.source.components
        scan = await scan_with_components(index, read, env.path, components, options.allow_network)
        return (env.path, *scan.folders), ()
    if env.source.type is SourceType.HELM:
        chart = await plan_chart(index, read, env.path, options.allow_network)
        return (env.path, *chart.folders), env.source.values
    return (env.path,), ()
