"""`gitops-bot drift`: one environment of a local repository against its live cluster, now."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from bot.cli.exits import EXIT_FAILED, EXIT_USAGE, store_configured
from bot.clusters.directory import ClusterDirectory
from bot.config.settings import Settings, load_settings
from bot.core.audit import AuditEntry
from bot.core.driftoutputs import drift_as_data, drift_as_text
from bot.core.drifts import DriftState, EnvironmentDrift
from bot.core.repoconfig import ConfigError
from bot.git.repos import GitRepo
from bot.renderers import render_options
from bot.schemas.catalog import catalog_for
from bot.stages.checkpool import CheckPool
from bot.stages.drift import add_origins, check_environment
from bot.stages.plan import load_checks
from bot.stages.schema_sources import server_schemas
from bot.store.backends import store_for_url
from bot.store.operations import using

# 0: the cluster matches Git; 1: it drifted; 2: wrong usage; 3: it could not be compared
EXIT_CODES = {DriftState.IN_SYNC: 0, DriftState.DRIFTED: 1, DriftState.UNKNOWN: 3}


async def drift_now(
    path: Path, environment_name: str, ref: str, settings: Settings, ledger: list[AuditEntry]
) -> EnvironmentDrift | int:
    """The drift of `--env` at `--ref`; an exit code when the check cannot even start."""
    async with CheckPool(1, settings.check_timeout_seconds) as pool:
        return await _drift_with(path, environment_name, ref, settings, ledger, pool)


async def _drift_with(
    path: Path,
    environment_name: str,
    ref: str,
    settings: Settings,
    ledger: list[AuditEntry],
    pool: CheckPool,
) -> EnvironmentDrift | int:
    repo = GitRepo(path)
    commit = await repo.resolve(ref)
    try:
        options, rules = render_options(settings, pool.run), settings.policy_rules
        checks = await load_checks(
            repo, commit, catalog_for, options, server_schemas(settings, None), relaxation=rules
        )
    except ConfigError as exc:
        for finding in exc.findings:
            print(finding.describe(), file=sys.stderr)
        return EXIT_FAILED
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


def run(args: argparse.Namespace) -> int:
    """Exit 0 no drift, 1 drift, 3 cannot compare: an unreachable cluster is never a 0."""
    settings = load_settings(os.environ)
    ledger = []  # PR links for objects gone from the cluster, when the ledger is here
    if store_configured(settings):
        store = store_for_url(settings.database_url)
        records = asyncio.run(using(store, lambda s: s.audit_records(args.env)))
        ledger = [record.entry for record in records]
    drift = asyncio.run(drift_now(args.repo, args.env, args.ref, settings, ledger))
    if isinstance(drift, int):
        return drift
    if args.format == "json":
        print(json.dumps(drift_as_data(drift), indent=2))
    else:
        print(drift_as_text(drift), end="")
    return EXIT_CODES[drift.state]
