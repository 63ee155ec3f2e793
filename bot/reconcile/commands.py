"""`gitops-bot drift`: one environment of a local repository against its live cluster, now."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.checkpool import CheckPool
from bot.clusters.directory import ClusterDirectory
from bot.core.audit import AuditEntry
from bot.core.drifts import DriftState, EnvironmentDrift
from bot.core.repoconfig import ConfigError
from bot.gitrepo import GitRepo
from bot.reconcile.checks import add_origins, check_environment
from bot.renderers import render_options
from bot.schemacatalog import catalog_for
from bot.settings import Settings
from bot.workflows import Checks, load_checks

# 0: the cluster matches Git; 1: it drifted; 2: wrong usage; 3: it could not be compared
EXIT_CODES = {DriftState.IN_SYNC: 0, DriftState.DRIFTED: 1, DriftState.UNKNOWN: 3}
EXIT_USAGE, EXIT_FAILED = 2, 3


async def drift_now(
    path: Path, environment_name: str, ref: str, settings: Settings, ledger: list[AuditEntry]
) -> EnvironmentDrift | int:
    """The drift of `--env` at `--ref`; an exit code when the check cannot even start."""
    repo = GitRepo(path)
    commit = await repo.resolve(ref)
    async with CheckPool(1, settings.check_timeout_seconds) as pool:
        checks = await checks_or_report(repo, commit, settings, pool)
        if checks is None:
            return EXIT_FAILED
        return await _drift_checked(repo, commit, environment_name, checks, settings, ledger)


async def checks_or_report(
    repo: GitRepo, commit: str, settings: Settings, pool: CheckPool
) -> Checks | None:
    """A CLI command's checks at `commit`, parsed and run in `pool`; None (and the
    findings on stderr) when the commit's config cannot be used."""
    try:
        return await load_checks(repo, commit, catalog_for, render_options(settings, pool.run))
    except ConfigError as exc:
        for finding in exc.findings:
            print(finding.describe(), file=sys.stderr)
        return None


async def _drift_checked(
    repo: GitRepo,
    commit: str,
    environment_name: str,
    checks: Checks,
    settings: Settings,
    ledger: list[AuditEntry],
) -> EnvironmentDrift | int:
    environment = checks.config.environment(environment_name)
    if environment is None:
        names = ", ".join(e.name for e in checks.config.environments)
        print(
            f"gitops-bot: no environment {environment_name!r}; the config has: {names}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    async with ClusterDirectory(settings.clusters) as clusters:
        drift = await check_environment(
            repo, commit, environment, checks, clusters, settings.fingerprint_key
        )
    return add_origins(drift, [e for e in ledger if e.environment == environment.name])
