"""The Helm renderer: `helm template` of the chart at the environment's path, sandboxed."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from bot.core.findings import Finding
from bot.core.manifests import LoadResult
from bot.core.repoconfig import Environment
from bot.git.repos import TreeEntry
from bot.renderers.charts import ChartPlan, plan_chart
from bot.renderers.checkouts import CheckoutError, TreeIndex, blob_reader, read_index, write_entries
from bot.renderers.origins import FileLines, helm_locator, load_output, relabel, relocate
from bot.renderers.protocol import Rendered, RenderRequest, failed, render_error
from bot.renderers.sandbox import ToolError, find_tool
from bot.renderers.workspaces import Workspace

TOOL_SETTING = "GITOPS_BOT_HELM_COMMAND"
# CRDs from crds/ are part of what Git declares; test hooks are not (they run against a
# live release). Post-renderers, plugins, DNS lookups and cluster connections are never
# enabled: their flags are not passed and the sandbox has no kubeconfig and no plugins.
_TEMPLATE_FLAGS = ("--include-crds", "--skip-tests")


class HelmRenderer:
    async def render(self, request: RenderRequest) -> Rendered:
        env, options = request.environment, request.options
        index = await read_index(request.repo, request.commit)
        plan = await plan_chart(
            index, blob_reader(request.repo, index), env.path, options.allow_network
        )
        refusals = plan.findings + _values_refusals(index, env.source.values)
        if refusals:
            return failed(refusals)
        entries = index.below(plan.folders) + [index.entries[v] for v in env.source.values]
        async with Workspace(options) as space:
            return await _template(request, entries, plan, space)


async def _template(
    request: RenderRequest, entries: list[TreeEntry], plan: ChartPlan, space: Workspace
) -> Rendered:
    """Write the chart out, run `helm template`, map objects to their templates."""
    refused: tuple[Finding, ...] = ()
    try:
        refused = await write_entries(
            request.repo, entries, space.checkout, request.options.max_checkout_bytes
        )
        await asyncio.to_thread(_copy_local_dependencies, space.checkout, plan)
        argv = _argv(request, plan, space.checkout) + _given_values(request, space.work)
        output = await space.run(argv)
    except (ToolError, CheckoutError) as exc:
        return failed(refused, space.error(exc, request.environment.path))
    # Parsing is CPU work: where the options say (a check worker process in `serve`).
    env, limit = request.environment, request.options.max_output_bytes
    loaded = await request.options.offload(_relocated, output, env, limit, plan, space.checkout)
    return Rendered(LoadResult(loaded.manifests, refused + loaded.findings))


def _values_refusals(index: TreeIndex, values: tuple[str, ...]) -> tuple[Finding, ...]:
    return tuple(
        render_error(
            "values-missing",
            f"values file {path} is not a regular file at this commit (missing, or a "
            "symbolic link); fix source.values in .gitops-bot.yaml or add the file",
            path,
        )
        for path in values
        if not index.is_file(path)
    )


def _copy_local_dependencies(checkout: Path, plan: ChartPlan) -> None:
    """What `helm dependency build` does for file:// dependencies, without helm or network."""
    for destination, source in plan.copies:
        try:
            shutil.copytree(
                _at(checkout, source), _at(checkout, destination), symlinks=True, dirs_exist_ok=True
            )
        except OSError as exc:
            raise CheckoutError(f"cannot copy dependency {source} into {destination}") from exc


def _argv(request: RenderRequest, plan: ChartPlan, checkout: Path) -> list[str]:
    env = request.environment
    argv = [
        find_tool(request.options.helm, TOOL_SETTING),
        "template",
        env.source.release,
        str(_at(checkout, env.path)),
        "--namespace",
        env.namespace,
        "--kube-version",
        request.kubernetes_version,
        *_TEMPLATE_FLAGS,
    ]
    for path in env.source.values:
        argv += ["--values", str(_at(checkout, path))]
    if plan.download:  # only when the operator allows network access
        argv.append("--dependency-update")
    return argv


def _given_values(request: RenderRequest, work: Path) -> list[str]:
    """Values an Argo CD Application gives inline, then its parameters, as Argo CD orders them."""
    source, argv = request.environment.source, []
    if source.inline_values:
        (work / "values.yaml").write_text(source.inline_values)
        argv += ["--values", str(work / "values.yaml")]
    for name, value, as_string in source.parameters:
        argv += ["--set-string" if as_string else "--set", f"{name}={value}"]
    return argv


def _relocated(
    output: bytes, env: Environment, max_bytes: int, plan: ChartPlan, checkout: Path
) -> LoadResult:
    loaded = load_output(output, env.path, env.namespace, max_bytes)
    loaded = LoadResult(loaded.manifests, relabel(loaded.findings, env.path, "helm template"))
    locator = helm_locator(output, FileLines(checkout), env.path, dict(plan.copies))
    return relocate(loaded, locator)


def _at(checkout: Path, path: str) -> Path:
    return checkout if path == "." else checkout.joinpath(*path.split("/"))
