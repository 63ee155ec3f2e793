"""`gitops-bot apply`: break-glass, one environment at one ref, now, audited."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import socket
import sys
import time

from bot.cli.exits import EXIT_FAILED, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, store_configured
from bot.clusters.directory import ClusterDirectory
from bot.config.settings import Settings, load_settings
from bot.core.applies import ApplyResult
from bot.core.audit import Authority, Trigger
from bot.core.repoconfig import ConfigError, Environment
from bot.core.reports import apply_as_data, apply_as_text
from bot.git.repos import GitRepo
from bot.renderers import render_options
from bot.schemas.catalog import catalog_for
from bot.stages.apply.audited import AuditedApply, EnvironmentBusy, Ledger, apply_audited
from bot.stages.apply.deploy import FINDINGS_REFUSAL, DeployContext, deploy_environment
from bot.stages.checkpool import CheckPool
from bot.stages.plan import Checks, load_checks
from bot.stages.schema_sources import server_schemas
from bot.store.backends import store_for_url
from bot.store.operations import using
from bot.store.ports import Store


def run(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    try:
        result = asyncio.run(_apply_now(args, settings))
    except EnvironmentBusy as exc:
        print(f"gitops-bot: {exc}; nothing was applied, try again shortly", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(result, int):
        return result
    if args.format == "json":
        print(json.dumps(apply_as_data(result), indent=2))
    else:
        print(apply_as_text(result), end="")
    if result.failure == FINDINGS_REFUSAL:
        return EXIT_FINDINGS
    return EXIT_OK if result.succeeded else EXIT_FAILED


async def _apply_now(args: argparse.Namespace, settings: Settings) -> ApplyResult | int:
    """Apply `--env` at `--ref` to its cluster; an exit code when it cannot even start."""
    async with (
        ClusterDirectory(settings.clusters) as clusters,
        CheckPool(1, settings.check_timeout_seconds) as pool,
    ):
        return await _apply_through(args, settings, clusters, pool)


async def _apply_through(
    args: argparse.Namespace, settings: Settings, clusters: ClusterDirectory, pool: CheckPool
) -> ApplyResult | int:
    repo = GitRepo(args.repo)
    commit = await repo.resolve(args.ref)
    try:
        schemas = server_schemas(settings, clusters)
        options, rules = render_options(settings, pool.run), settings.policy_rules
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
    if not store_configured(settings):  # no ledger here: nothing to lock or record
        context = DeployContext(commit)
        return await deploy_environment(repo, environment, checks, context, clusters=clusters)
    store = store_for_url(settings.database_url)
    audited = _break_glass(args, repo, commit, environment, checks)
    return await using(store, lambda s: _audited(s, clusters, settings, audited))


def _break_glass(
    args: argparse.Namespace, repo: GitRepo, commit: str, environment: Environment, checks: Checks
) -> AuditedApply:
    """Under the operator's name, and the environment's lock: the server's own when
    --repository names the repository as the server knows it."""
    operator = getpass.getuser()
    repository = args.repository or f"local:{args.repo.resolve()}"
    return AuditedApply(
        repo,
        commit,
        environment,
        checks,
        Authority(Trigger.BREAK_GLASS, repository=repository, author=operator),
        key=f"{repository}:{environment.name}",
        holder=f"break-glass:{operator}@{socket.gethostname()}",
    )


async def _audited(
    store: Store, clusters: ClusterDirectory, settings: Settings, apply: AuditedApply
) -> ApplyResult:
    """A break-glass apply may go back to an older commit on purpose (a rollback), so it
    has no ordering check; it is in the ledger like every other apply."""
    sealing = settings.ledger_keys.current
    ledger = Ledger(store, clusters, time.time, settings.job_lease_seconds, sealing)
    applied = await apply_audited(ledger, apply, newer=None)
    assert applied is not None  # only an ordering check can skip an apply
    sequence = applied.record.sequence
    print(f"recorded as audit record {sequence} (break-glass)", file=sys.stderr)
    return applied.result
