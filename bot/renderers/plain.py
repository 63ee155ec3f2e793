"""The plain renderer: the YAML and JSON files below the environment's path, as they are."""

from __future__ import annotations

from collections.abc import Iterable

from bot.core.manifests import LoadResult, SourceFile, is_manifest_path
from bot.core.toolfiles import choose_files, is_kustomization_name, load_folder
from bot.git.repos import SPECIAL_MODES, TreeEntry
from bot.git.sources import read_entries
from bot.renderers.loading import cyclic_gc_paused
from bot.renderers.protocol import Rendered, RenderRequest


class PlainRenderer:
    async def render(self, request: RenderRequest) -> Rendered:
        env = request.environment
        entries = await request.repo.list_tree(request.commit, env.path)
        choice = choose_files([e.path for e in entries], env.path, env.exclude, env.source.include)
        wanted = [e for e in entries if e.path not in choice.left_out and _may_be_read(e)]
        files, refused = await read_entries(request.repo, wanted)
        # Parsing is CPU work: where the options say (a check worker process in `serve`).
        loaded = await request.options.offload(_load_paused, files, env.path, env.namespace)
        return Rendered(
            LoadResult(
                loaded.manifests,
                choice.findings + refused + loaded.findings,
                choice.skipped + loaded.skipped,
            ),
            {f.path: f.data for f in files},
        )


def _load_paused(files: Iterable[SourceFile], root: str, namespace: str) -> LoadResult:
    with cyclic_gc_paused():
        return load_folder(files, root, namespace)


def _may_be_read(entry: TreeEntry) -> bool:
    """Manifests and kustomizations; every link or submodule, as it may stand for a folder."""
    path = entry.path
    return entry.mode in SPECIAL_MODES or is_manifest_path(path) or is_kustomization_name(path)
