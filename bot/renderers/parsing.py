"""Parsing a render's output and checking its objects: one job, run where the options say.

It is the CPU-heavy part of a plan. In `serve` it runs in a worker process
(bot/checkpool.py), so the process answering webhooks and health checks keeps its
event loop and its GIL. One job per render, so the objects cross the process boundary
once: source bytes go out; objects and findings come back, without the file texts
(findings are already pinned to their lines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.core.checks import check_manifests
from bot.policysets import parse_policies
from bot.renderers.protocol import CheckInputs, Rendered, RenderRequest
from bot.schemacatalog import catalog_for


async def parse_rendered(
    request: RenderRequest, parse: Callable[..., Rendered], *args: Any
) -> Rendered:
    """`parse(*args)`, with the checks the request asks for, where its options say.

    `parse` and `args` must pickle: a module-level function and plain data.
    """
    return await request.options.offload(parse_and_check, parse, args, request.checks)


def parse_and_check(
    parse: Callable[..., Rendered], args: tuple[Any, ...], checks: CheckInputs | None
) -> Rendered:
    rendered = parse(*args)
    if checks is None:
        return replace(rendered, texts={})
    policies, _ = parse_policies(checks.policy_files)  # their findings are the caller's
    catalog = catalog_for(checks.kubernetes_version)
    findings = check_manifests(rendered.loaded, catalog, policies, rendered.texts)
    return replace(rendered, texts={}, checked=findings)
