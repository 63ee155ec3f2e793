"""The kustomize renderer: `kustomize build` of the environment's folder, sandboxed."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import yaml

from bot.core.findings import Finding
from bot.core.manifests import LoadResult
from bot.core.namings import Naming, namings_by_folder
from bot.core.repoconfig import Environment, EnvironmentSource
from bot.core.substitutions import substitute
from bot.git.repos import TreeEntry
from bot.renderers import builds
from bot.renderers.checkouts import CheckoutError, blob_reader, read_index, write_entries
from bot.renderers.kustomizations import KUSTOMIZATION_FILES, scan_with_components
from bot.renderers.origins import (
    FileLines,
    kustomize_locator,
    load_output,
    relabel,
    relocate,
)
from bot.renderers.protocol import Rendered, RenderRequest, failed
from bot.renderers.sandbox import ToolError, find_tool
from bot.renderers.workspaces import Workspace

TOOL_SETTING = "GITOPS_BOT_KUSTOMIZE_COMMAND"
# kustomize never reads a file outside the kustomization that names it; exec and container
# functions and external plugins stay off because their flags are never passed.
BUILD_FLAGS = ("build", "--load-restrictor", "LoadRestrictionsRootOnly")
# How kustomize words an error inside our wrapping kustomization: noise about our own file.
_WRAPPER_ERROR = re.compile(
    r"accumulating resources: accumulation err='accumulating resources from '\.\./repo[^']*': "
    r"'[^']*' must resolve to a file': recursed accumulation of path '[^']*': "
)


class KustomizeRenderer:
    async def render(self, request: RenderRequest) -> Rendered:
        env, options = request.environment, request.options
        index = await read_index(request.repo, request.commit)
        read = blob_reader(request.repo, index)
        components = env.source.components
        scan = await scan_with_components(index, read, env.path, components, options.allow_network)
        if scan.findings:
            return failed(scan.findings)
        namings = namings_by_folder(env.path, scan.renamings)
        async with Workspace(options) as space:
            return await _build(request, index.below(scan.folders), namings, space)


async def _build(
    request: RenderRequest,
    entries: list[TreeEntry],
    namings: Mapping[str, frozenset[Naming]],
    space: Workspace,
) -> Rendered:
    """Write the kustomizations out, run `kustomize build`, map objects to their files."""
    path, options = request.environment.path, request.options
    refused: tuple[Finding, ...] = ()
    try:
        refused = await write_entries(
            request.repo, entries, space.checkout, options.max_checkout_bytes
        )
        tool = find_tool(options.kustomize, TOOL_SETTING)
        wrapped = _wrap(space, path, request.environment.source)
        output = await _run_once(space, [tool, *BUILD_FLAGS], wrapped, request, entries)
    except (ToolError, CheckoutError) as exc:
        finding = space.error(exc, path)
        return failed(refused, replace(finding, message=_WRAPPER_ERROR.sub("", finding.message)))
    # Parsing is CPU work: where the options say (a check worker process in `serve`).
    env, limit = request.environment, options.max_output_bytes
    rendered = await options.offload(_relocated, output, env, limit, namings, space.checkout)
    loaded = rendered.loaded
    return Rendered(LoadResult(loaded.manifests, refused + loaded.findings), rendered.texts)


async def _run_once(
    space: Workspace,
    command: list[str],
    wrapped: str,
    request: RenderRequest,
    entries: list[TreeEntry],
) -> bytes:
    """The build's output: an identical earlier build's (see builds.py), else run now."""
    options, source = request.options, request.environment.source
    if options.allow_network:  # a remote base may change between two builds
        return await space.run([*command, wrapped])
    wrapper = (Path(wrapped) / "kustomization.yaml").read_text()
    limits = (options.timeout_seconds, options.max_output_bytes)
    inputs = builds.BuildInputs(
        command, wrapper, request.environment.path, source.components, entries, limits
    )
    key = inputs.key()
    kept = builds.BUILDS  # looked up here, so that a test can give each case its own
    async with kept.building(key):
        output = kept.get(key)
        if output is None:
            output = await space.run([*command, wrapped])
            kept.put(key, output)
    return output


def _wrap(space: Workspace, path: str, source: EnvironmentSource) -> str:
    """A kustomization of our own around the environment's, asking for origin annotations."""
    target = "../repo" if path == "." else f"../repo/{path}"
    if source.components:
        _add_components(space.checkout / path, path, source.components)
    wrapper = json.loads(source.overrides) if source.overrides else {}  # Argo CD or Flux fields
    wrapper |= {"resources": [target], "buildMetadata": ["originAnnotations"]}
    (space.work / "kustomization.yaml").write_text(json.dumps(wrapper))
    return str(space.work)


def _add_components(folder: Path, path: str, components: tuple[str, ...]) -> None:
    """Flux's spec.components, added to the folder's own kustomization as Flux adds them."""
    found = next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)
    if found is None:
        raise CheckoutError(f"{path} has no kustomization to add components to")
    try:
        kustomization = yaml.safe_load(found.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CheckoutError(f"{found.name} in {path} is not YAML: {exc}") from None
    own = list(kustomization.get("components") or [])
    own += [posixpath.relpath(component, path) for component in components]
    found.write_text(json.dumps(kustomization | {"components": own}))


def _relocated(
    output: bytes,
    env: Environment,
    max_bytes: int,
    namings: Mapping[str, frozenset[Naming]],
    checkout: Path,
) -> Rendered:
    if env.source.substitute:  # Flux's postBuild.substitute, on what kustomize built
        output = substitute(output, dict(env.source.substitute))
    loaded = load_output(output, env.path, env.namespace, max_bytes)
    loaded = LoadResult(loaded.manifests, relabel(loaded.findings, env.path, "kustomize build"))
    lines = FileLines(checkout)
    loaded = relocate(loaded, kustomize_locator(lines, "repo", "work", env.path, namings))
    return Rendered(loaded, dict(lines.texts))
