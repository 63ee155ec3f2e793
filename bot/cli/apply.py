"""`gitops-bot apply`: break-glass, one environment at one ref, now, through the server's
one audited apply (its lock, environment key, ordering check, applied commit, ledger)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import socket
import sys
from dataclasses import dataclass
from functools import partial

from bot.cli.breakglass import (
    NO_REPOSITORY,
    UnknownApplied,
    fetch_from_origin,
    server_repository,
)
from bot.cli.exits import EXIT_FAILED, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, store_configured
from bot.clusters.directory import ClusterDirectory
from bot.config.settings import Settings, load_settings
from bot.core.applies import ApplyResult
from bot.core.audit import Authority, Trigger
from bot.core.envkeys import environment_key
from bot.core.repoconfig import ConfigError, Environment
from bot.core.reports import apply_as_data, apply_as_text
from bot.git.repos import GitRepo
from bot.renderers import render_options
from bot.schemas.catalog import catalog_for
from bot.stages.apply.audited import (
    AuditedApply,
    EnvironmentBusy,
    EnvironmentLockLost,
    Ledger,
    Skipped,
    apply_audited,
    runs_newer,
)
from bot.stages.apply.deploy import FINDINGS_REFUSAL, DeployContext, deploy_environment
from bot.stages.checkpool import CheckPool
from bot.stages.plan import Checks, load_checks
from bot.stages.schema_sources import server_schemas
from bot.store.backends import store_for_url
from bot.store.operations import using
from bot.store.ports import Store


@dataclass(frozen=True)
class Found:
    """The environment to apply, at the commit `--ref` names, with that commit's checks."""

    repo: GitRepo
    commit: str
    environment: Environment
    checks: Checks


def run(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    try:
        result = asyncio.run(_apply_now(args, settings))
    except EnvironmentBusy as exc:
        print(f"gitops-bot: {exc}; nothing was applied, try again shortly", file=sys.stderr)
        return EXIT_FAILED
    except EnvironmentLockLost as exc:
        print(f"gitops-bot: {exc}; nothing was recorded, run it again", file=sys.stderr)
        return EXIT_FAILED
    except UnknownApplied as exc:
        print(f"gitops-bot: {exc}; nothing was applied", file=sys.stderr)
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
        found = await _find(args, settings, clusters, pool)
        if isinstance(found, int):
            return found
        if not store_configured(settings):  # no ledger here: nothing to lock or record
            context = DeployContext(found.commit)
            return await deploy_environment(
                found.repo, found.environment, found.checks, context, clusters=clusters
            )
        try:
            repository = await server_repository(args, settings, found.repo)
        except ValueError as exc:
            print(f"gitops-bot: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if repository is None:
            print("gitops-bot: " + NO_REPOSITORY.format(path=args.repo), file=sys.stderr)
            return EXIT_USAGE
        work = partial(_audited, clusters=clusters, settings=settings, args=args, found=found)
        return await using(store_for_url(settings.database_url), partial(work, repository))


async def _find(
    args: argparse.Namespace, settings: Settings, clusters: ClusterDirectory, pool: CheckPool
) -> Found | int:
    """The environment at `--ref`; an exit code (the cause on stderr) when there is none."""
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
    return Found(repo, commit, environment, checks)


def _break_glass(repository: str, found: Found) -> AuditedApply:
    """Under the operator's name, and the environment's key as the server names it: the
    same lock, applied commit and merge ordering as the server's applies."""
    operator = getpass.getuser()
    return AuditedApply(
        found.repo,
        found.commit,
        found.environment,
        found.checks,
        Authority(Trigger.BREAK_GLASS, repository=repository, author=operator),
        key=environment_key(repository, found.environment.name),
        holder=f"break-glass:{operator}@{socket.gethostname()}",
        record_in_place=True,
    )


async def _audited(
    repository: str,
    store: Store,
    *,
    clusters: ClusterDirectory,
    settings: Settings,
    args: argparse.Namespace,
    found: Found,
) -> ApplyResult | int:
    """Through the one audited apply. Going back to an older commit than the environment
    runs is refused (and audited as superseded) unless --allow-older says it is meant."""
    apply = _break_glass(repository, found)
    sealing = settings.ledger_keys.current
    ledger = Ledger(store, clusters, settings.job_lease_seconds, sealing)
    fetch = partial(fetch_from_origin, found.repo)
    newer = (
        None if args.allow_older else partial(runs_newer, store, apply.key, found.repo, fetch=fetch)
    )
    applied = await apply_audited(ledger, apply, newer)
    if isinstance(applied, Skipped):  # break-glass claims no merge: a newer commit runs
        return await _refused_older(store, apply)
    sequence = applied.record.sequence
    print(f"recorded as audit record {sequence} (break-glass)", file=sys.stderr)
    return applied.result


async def _refused_older(store: Store, apply: AuditedApply) -> int:
    last = await store.last_applied(apply.key)
    running = last.commit[:12] if last else "a newer commit"
    print(
        f"gitops-bot: {apply.environment.name} runs {running}, which already contains "
        f"{apply.commit[:12]}; nothing was applied (audited as superseded). To go back on "
        "purpose, run it again with --allow-older",
        file=sys.stderr,
    )
    return EXIT_FAILED
