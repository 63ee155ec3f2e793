"""The plain renderer: the YAML and JSON files below the environment's path, as they are."""

from __future__ import annotations

import asyncio

from bot.core.manifests import LoadResult
from bot.git.sources import read_commit_folder
from bot.renderers.loading import load_paused
from bot.renderers.protocol import Rendered, RenderRequest


class PlainRenderer:
    async def render(self, request: RenderRequest) -> Rendered:
        env = request.environment
        files, refused = await read_commit_folder(request.repo, request.commit, env.path)
        # Parsing is CPU work: keep it off the event loop.
        loaded = await asyncio.to_thread(load_paused, files, env.namespace)
        return Rendered(
            LoadResult(loaded.manifests, refused + loaded.findings),
            {f.path: f.data for f in files},
        )
