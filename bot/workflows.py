"""Workflows: fetch inputs, call the pure core, hand back its results. Plan lives here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.checkpool import ChecksTimedOut
from bot.core.checks import checks_timed_out
from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import LoadResult, SourceFile, is_manifest_path
from bot.core.plans import EnvironmentPlan, Plan, plan_environment
from bot.core.policies import Policy
from bot.core.repoconfig import CONFIG_PATH, ConfigError, Environment, RepoConfig, parse_config
from bot.core.schemas import SchemaCatalog
from bot.gitrepo import GitError, GitRepo
from bot.policysets import default_policy_dir, parse_policies, read_policy_dir
from bot.renderers import (
    DEFAULT_RENDER_OPTIONS,
    CheckInputs,
    RenderOptions,
    RenderRequest,
    render,
    render_failure,
)
from bot.schemacatalog import UnsupportedKubernetesVersion, catalog_for
from bot.sources import read_commit_folder

CatalogFactory = Callable[[str], SchemaCatalog]
# Adds the cluster's side to an environment's plan (bot.clusters.previews.LivePreviewer).
LivePreview = Callable[
    [Environment, LoadResult, LoadResult, str, EnvironmentPlan], Awaitable[EnvironmentPlan]
]


@dataclass(frozen=True)
class Checks:
    """What the base commit says to check the head with."""

    config: RepoConfig
    catalog: SchemaCatalog
    policies: tuple[Policy, ...]
    findings: tuple[Finding, ...]  # about policy files, not about manifests
    render_options: RenderOptions = DEFAULT_RENDER_OPTIONS  # the server's, never the repo's
    policy_files: tuple[SourceFile, ...] = ()  # what `policies` were parsed from

    def inputs(self) -> CheckInputs:
        """The checks as data, for wherever the render is parsed (bot/renderers/parsing)."""
        return CheckInputs(self.config.kubernetes_version, self.policy_files)


async def plan_change(
    repo: GitRepo,
    base_ref: str,
    head_ref: str,
    secret_key: bytes,
    only: str | None = None,
    catalogs: CatalogFactory = catalog_for,
    render_options: RenderOptions = DEFAULT_RENDER_OPTIONS,
    live: LivePreview | None = None,
) -> Plan:
    """The preview of what `head` changes relative to `base`, per environment."""
    base, head = await repo.resolve(base_ref), await repo.resolve(head_ref)
    try:
        checks = await load_checks(repo, base, catalogs, render_options)
    except ConfigError as exc:
        return Plan(
            base,
            head,
            findings=exc.findings,
            failure=f"{CONFIG_PATH} at the base commit cannot be used",
        )
    environments = checks.config.environments
    if only is not None:
        environments = tuple(e for e in environments if e.name == only)
        if not environments:
            names = ", ".join(e.name for e in checks.config.environments)
            return Plan(
                base,
                head,
                findings=checks.findings,
                failure=f"no environment named {only!r}; the config has: {names}",
            )
    plans = [
        await plan_one(repo, base, head, env, checks, secret_key, live) for env in environments
    ]
    return Plan(base, head, tuple(plans), checks.findings)


async def load_checks(
    repo: GitRepo,
    base: str,
    catalogs: CatalogFactory,
    render_options: RenderOptions = DEFAULT_RENDER_OPTIONS,
) -> Checks:
    """Config, schemas and policies, all from the base commit: a PR cannot relax them."""
    try:
        config = parse_config(await repo.read_file(base, CONFIG_PATH))
    except GitError as exc:
        raise ConfigError((_config_finding(str(exc)),)) from None
    try:
        catalog = await asyncio.to_thread(catalogs, config.kubernetes_version)
    except UnsupportedKubernetesVersion as exc:
        raise ConfigError((_config_finding(str(exc)),)) from None
    files = list(read_policy_dir(default_policy_dir()))
    refusals: list[Finding] = []
    for path in config.policy_paths:
        found, refused = await read_commit_folder(repo, base, path)
        if not found and not refused and is_manifest_path(path):
            content = await repo.read_file(base, path)
            found = (SourceFile(path, content),) if content is not None else ()
        files.extend(found)
        refusals.extend(refused)
    # Compiling schemas is CPU work (cached by content): off the event loop.
    policies, findings = await asyncio.to_thread(parse_policies, files)
    return Checks(
        config, catalog, policies, tuple(refusals) + findings, render_options, tuple(files)
    )


async def plan_one(
    repo: GitRepo,
    base: str,
    head: str,
    env: Environment,
    checks: Checks,
    secret_key: bytes,
    live: LivePreview | None = None,
) -> EnvironmentPlan:
    before, base_findings = await render_environment(repo, base, env, checks, check=False)
    after, findings = await render_environment(repo, head, env, checks)
    failure = render_failure(findings)
    if failure is not None:  # a broken render is reported as such, never as "no changes"
        return EnvironmentPlan(env, findings=findings, failure=f"cannot render the head: {failure}")
    findings += _base_render_warnings(render_failure(base_findings))
    plan = plan_environment(env, before, after, findings, secret_key)
    return plan if live is None else await live(env, before, after, head, plan)


async def render_environment(
    repo: GitRepo, commit: str, env: Environment, checks: Checks, check: bool = True
) -> tuple[LoadResult, tuple[Finding, ...]]:
    """The environment's objects at `commit`, and (when `check`) every finding about them.

    The environment's source says how: plain files, a kustomization or a Helm chart.
    Parsing and checks run where the render options say (a worker process in `serve`),
    within a time limit there.
    """
    version, inputs = checks.config.kubernetes_version, checks.inputs() if check else None
    request = RenderRequest(repo, commit, env, version, checks.render_options, inputs)
    try:
        rendered = await render(request)
    except ChecksTimedOut as exc:  # the objects are unknown: a failure, never "no changes"
        finding = checks_timed_out(exc.seconds)
        return LoadResult(findings=(finding,)), (finding,)
    checked = rendered.checked
    return rendered.loaded, rendered.loaded.findings if checked is None else checked


def _base_render_warnings(failure: str | None) -> tuple[Finding, ...]:
    if failure is None:
        return ()
    return (
        Finding(
            Stage.RENDER,
            Severity.WARNING,
            "render.base-failed",
            f"the base commit cannot be rendered ({failure}), so every object of the head "
            "shows as created",
        ),
    )


def _config_finding(message: str) -> Finding:
    return Finding(Stage.CONFIG, Severity.ERROR, "config.invalid", message, CONFIG_PATH)
