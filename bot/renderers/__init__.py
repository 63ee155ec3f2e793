"""Renderers: an environment's source at a commit -> objects naming the file they came from.

One small port (`Renderer`), three adapters: plain files, `kustomize build` and
`helm template`, the last two run as sandboxed subprocesses (see `sandbox`).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.core.repoconfig import SourceType
from bot.renderers.folders import folder_problem
from bot.renderers.plain import PlainRenderer
from bot.renderers.protocol import (
    DEFAULT_RENDER_OPTIONS,
    Offload,
    Rendered,
    Renderer,
    RenderOptions,
    RenderRequest,
    failed,
    render_failure,
)

if TYPE_CHECKING:  # the settings import the policies and the ledger: the check workers,
    # which import the renderers first thing, need neither to start
    from bot.config.settings import Settings


@functools.cache
def renderer_for(source: SourceType) -> Renderer:
    """The adapter for a kind of source, imported on first use: a repository of plain
    files (most) loads none of kustomize's and Helm's modules."""
    if source is SourceType.KUSTOMIZE:
        from bot.renderers.kustomize import KustomizeRenderer

        return KustomizeRenderer()
    if source is SourceType.HELM:
        from bot.renderers.helm import HelmRenderer

        return HelmRenderer()
    return PlainRenderer()


async def render(request: RenderRequest) -> Rendered:
    """The environment's objects at the request's commit, by the renderer its source names.

    A path that is not a folder at the commit renders nothing, and says why: never "no objects".
    """
    problem = await folder_problem(request.repo, request.commit, request.environment)
    if problem is not None:
        return failed((problem,))
    return await renderer_for(request.environment.source.type).render(request)


def render_options(settings: Settings, offload: Offload | None = None) -> RenderOptions:
    """The settings' bounds on rendering; `offload` runs parsing (a thread by default, a
    CheckPool's worker processes in `serve` and the CLI)."""
    options = RenderOptions(
        kustomize=settings.kustomize_command,
        helm=settings.helm_command,
        timeout_seconds=settings.render_timeout_seconds,
        max_output_bytes=settings.render_max_output_bytes,
        allow_network=settings.render_allow_network,
    )
    return options if offload is None else replace(options, offload=offload)


__all__ = [
    "DEFAULT_RENDER_OPTIONS",
    "Offload",
    "RenderOptions",
    "RenderRequest",
    "Rendered",
    "Renderer",
    "failed",
    "render",
    "render_failure",
    "render_options",
]
