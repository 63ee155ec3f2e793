"""The Renderer port: what every renderer takes (a request) and gives back (Rendered)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import LoadResult
from bot.core.repoconfig import Environment
from bot.git.repos import GitRepo

FAILURE_PREFIX = "render."  # the rule of every finding that means "nothing was rendered"
T = TypeVar("T")


class Offload(Protocol):
    """Runs a picklable function on its arguments away from the event loop."""

    def __call__(self, function: Callable[..., T], /, *args: Any) -> Awaitable[T]: ...


@dataclass(frozen=True)
class RenderOptions:
    """The server's bounds on rendering; built from Settings by `render_options`."""

    kustomize: str = "kustomize"  # a name on PATH or a path
    helm: str = "helm"
    timeout_seconds: float = 60.0  # per tool run
    max_output_bytes: int = 64 * 1024 * 1024  # of rendered manifests, per tool run
    max_checkout_bytes: int = 256 * 1024 * 1024  # of files written out for a tool
    allow_network: bool = False  # remote bases, charts and chart dependencies
    # Where parsing runs: a thread here by default; `serve` and the CLI pass
    # CheckPool.run (bot/stages/checkpool.py), worker processes with a time limit per job.
    offload: Offload = field(default=asyncio.to_thread, compare=False)


DEFAULT_RENDER_OPTIONS = RenderOptions()


@dataclass(frozen=True)
class RenderRequest:
    repo: GitRepo
    commit: str
    environment: Environment
    kubernetes_version: str  # what Helm reports as .Capabilities.KubeVersion
    options: RenderOptions = DEFAULT_RENDER_OPTIONS


@dataclass(frozen=True)
class Rendered:
    """Objects that remember the repository file they came from, or findings saying why not.

    `texts` holds the files that objects point at, for pinning findings to a field's line;
    a file left out (a Helm template is not YAML) keeps the object's own line.
    """

    loaded: LoadResult
    texts: Mapping[str, bytes] = field(default_factory=dict)


class Renderer(Protocol):
    """Turns an environment's source at a commit into objects; never raises for bad input."""

    async def render(self, request: RenderRequest) -> Rendered: ...


def render_error(rule: str, message: str, path: str | None, line: int | None = None) -> Finding:
    """A finding that means the render produced nothing (see `render_failure`)."""
    return Finding(Stage.RENDER, Severity.ERROR, FAILURE_PREFIX + rule, message, path, line)


def failed(findings: Iterable[Finding], *more: Finding) -> Rendered:
    return Rendered(LoadResult(findings=(*findings, *more)))


def render_failure(findings: Iterable[Finding]) -> str | None:
    """Why nothing was rendered, when that is what the findings say; None otherwise."""
    for finding in findings:
        if finding.stage is Stage.RENDER and finding.severity is Severity.ERROR:
            return f"{finding.location}: {finding.message}"
    return None
