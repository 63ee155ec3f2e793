"""Renderers: an environment's source at a commit -> objects naming the file they came from.

One small port (`Renderer`), three adapters: plain files, `kustomize build` and
`helm template`, the last two run as sandboxed subprocesses (see `sandbox`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from bot.core.repoconfig import SourceType
from bot.renderers.helm import HelmRenderer
from bot.renderers.kustomize import KustomizeRenderer
from bot.renderers.plain import PlainRenderer
from bot.renderers.protocol import (
    DEFAULT_RENDER_OPTIONS,
    CheckInputs,
    Offload,
    Rendered,
    Renderer,
    RenderOptions,
    RenderRequest,
    render_failure,
)
from bot.settings import Settings

RENDERERS: Mapping[SourceType, Renderer] = {
    SourceType.PLAIN: PlainRenderer(),
    SourceType.KUSTOMIZE: KustomizeRenderer(),
    SourceType.HELM: HelmRenderer(),
}


async def render(request: RenderRequest) -> Rendered:
    """The environment's objects at the request's commit, by the renderer its source names."""
    return await RENDERERS[request.environment.source.type].render(request)


def render_options(settings: Settings, offload: Offload | None = None) -> RenderOptions:
    """The settings' bounds on rendering; `offload` runs parsing and checks (a thread by
    default, a CheckPool's worker processes in `serve`)."""
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
    "CheckInputs",
    "Offload",
    "RenderOptions",
    "RenderRequest",
    "Rendered",
    "Renderer",
    "render",
    "render_failure",
    "render_options",
]
