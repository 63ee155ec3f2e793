"""Workflows: fetch inputs, call the pure core, hand back its results. Plan lives here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from bot.core.checks import check_manifests
from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import LoadResult, SourceFile, is_manifest_path, load_manifests
from bot.core.plans import EnvironmentPlan, Plan, plan_environment
from bot.core.policies import Policy
from bot.core.repoconfig import CONFIG_PATH, ConfigError, Environment, RepoConfig, parse_config
from bot.core.schemas import SchemaCatalog
from bot.gitrepo import GitError, GitRepo
from bot.policysets import default_policy_dir, parse_policies, read_policy_dir
from bot.schemacatalog import UnsupportedKubernetesVersion, catalog_for
from bot.sources import read_commit_folder

CatalogFactory = Callable[[str], SchemaCatalog]


@dataclass(frozen=True)
class Checks:
    """What the base commit says to check the head with."""

    config: RepoConfig
    catalog: SchemaCatalog
    policies: tuple[Policy, ...]
    findings: tuple[Finding, ...]  # about policy files, not about manifests


async def plan_change(
    repo: GitRepo,
    base_ref: str,
    head_ref: str,
    secret_key: bytes,
    only: str | None = None,
    catalogs: CatalogFactory = catalog_for,
) -> Plan:
    """The preview of what `head` changes relative to `base`, per environment."""
    base, head = await repo.resolve(base_ref), await repo.resolve(head_ref)
    try:
        checks = await load_checks(repo, base, catalogs)
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
    plans = [await plan_one(repo, base, head, env, checks, secret_key) for env in environments]
    return Plan(base, head, tuple(plans), checks.findings)


async def load_checks(repo: GitRepo, base: str, catalogs: CatalogFactory) -> Checks:
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
    policies, findings = parse_policies(files)
    return Checks(config, catalog, policies, tuple(refusals) + findings)


async def plan_one(
    repo: GitRepo, base: str, head: str, env: Environment, checks: Checks, secret_key: bytes
) -> EnvironmentPlan:
    before, _ = await render_environment(repo, base, env, checks, check=False)
    after, findings = await render_environment(repo, head, env, checks)
    return plan_environment(env, before, after, findings, secret_key)


async def render_environment(
    repo: GitRepo, commit: str, env: Environment, checks: Checks, check: bool = True
) -> tuple[LoadResult, tuple[Finding, ...]]:
    """The environment's objects at `commit`, and (when `check`) every finding about them."""
    files, refused = await read_commit_folder(repo, commit, env.path)
    # Parsing and schema checks are CPU work: keep them off the event loop.
    return await asyncio.to_thread(_load_and_check, env, files, refused, checks, check)


def _load_and_check(
    env: Environment,
    files: tuple[SourceFile, ...],
    refused: tuple[Finding, ...],
    checks: Checks,
    check: bool,
) -> tuple[LoadResult, tuple[Finding, ...]]:
    loaded = load_manifests(files, env.namespace)
    loaded = LoadResult(loaded.manifests, refused + loaded.findings)
    if not check:
        return loaded, loaded.findings
    texts = {f.path: f.data for f in files}
    return loaded, check_manifests(loaded, checks.catalog, checks.policies, texts)


def _config_finding(message: str) -> Finding:
    return Finding(Stage.CONFIG, Severity.ERROR, "config.invalid", message, CONFIG_PATH)
