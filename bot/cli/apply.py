"""`gitops-bot apply`: break-glass, one environment at one ref, now, audited."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time

from bot.cli.exits import EXIT_FAILED, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, store_configured
from bot.clusters.directory import ClusterDirectory
from bot.config.settings import Settings, load_settings
from bot.core.applies import ApplyResult
from bot.core.repoconfig import ConfigError
from bot.core.reports import apply_as_data, apply_as_text
from bot.git.repos import GitRepo
from bot.renderers import render_options
from bot.schemas.catalog import catalog_for
from bot.stages.apply.deploy import FINDINGS_REFUSAL, DeployContext, deploy_environment
from bot.stages.plan import load_checks
from bot.stages.schema_sources import server_schemas
from bot.store.backends import store_for_url
from bot.store.ledger import iso_time
from bot.store.operations import record_break_glass, using


def run(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    started = time.time()
    result = asyncio.run(_apply_now(args, settings))
    if isinstance(result, int):
        return result
    finished = time.time()
    if args.format == "json":
        print(json.dumps(apply_as_data(result), indent=2))
    else:
        print(apply_as_text(result), end="")
    if store_configured(settings):  # a failure to record is exit 3, after the result
        store = store_for_url(settings.database_url)
        times, operator = (iso_time(started), iso_time(finished)), getpass.getuser()
        record = asyncio.run(
            using(store, lambda s: record_break_glass(s, result, times, operator, args.repo))
        )
        print(f"recorded as audit record {record.sequence} (break-glass)", file=sys.stderr)
    if result.failure == FINDINGS_REFUSAL:
        return EXIT_FINDINGS
    return EXIT_OK if result.succeeded else EXIT_FAILED


async def _apply_now(args: argparse.Namespace, settings: Settings) -> ApplyResult | int:
    """Apply `--env` at `--ref` to its cluster; an exit code when it cannot even start."""
    async with ClusterDirectory(settings.clusters) as clusters:
        return await _apply_through(args, settings, clusters)


async def _apply_through(
    args: argparse.Namespace, settings: Settings, clusters: ClusterDirectory
) -> ApplyResult | int:
    repo = GitRepo(args.repo)
    commit = await repo.resolve(args.ref)
    try:
        schemas = server_schemas(settings, clusters)
        options, rules = render_options(settings), settings.policy_rules
        checks = await load_checks(repo, commit, catalog_for, options, schemas, relaxation=rules)
    except ConfigError as exc:
        for finding in exc.findings:
            print(finding.describe(), file=sys.stderr)
        return EXIT_FINDINGS
    environment = checks.config.environment(args.env)
    if environment is None:
        names = ", ".join(e.name for e in checks.config.environments)
        print(f"gitops-bot: no environment {args.env!r}; the config has: {names}", file=sys.stderr)
        return EXIT_USAGE
    if settings.cluster(environment.cluster) is None:
        print(
            f"gitops-bot: environment {environment.name!r} deploys to cluster "
            f"{environment.cluster!r}, which the server settings do not define (add it to "
            "GITOPS_BOT_CLUSTERS or `clusters:` in the settings file); nothing was applied",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return await deploy_environment(
        repo, environment, checks, DeployContext(commit), clusters=clusters
    )
