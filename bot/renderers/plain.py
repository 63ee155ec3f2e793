"""The plain renderer: the YAML and JSON files below the environment's path, as they are."""

from __future__ import annotations

from bot.core.findings import Finding
from bot.core.manifests import LoadResult, SourceFile, load_manifests
from bot.renderers.parsing import parse_rendered
from bot.renderers.protocol import Rendered, RenderRequest
from bot.sources import read_commit_folder


class PlainRenderer:
    async def render(self, request: RenderRequest) -> Rendered:
        env = request.environment
        files, refused = await read_commit_folder(request.repo, request.commit, env.path)
        return await parse_rendered(request, _parsed, files, env.namespace, refused)


def _parsed(files: list[SourceFile], namespace: str, refused: tuple[Finding, ...]) -> Rendered:
    loaded = load_manifests(files, namespace)
    return Rendered(
        LoadResult(loaded.manifests, refused + loaded.findings), {f.path: f.data for f in files}
    )
