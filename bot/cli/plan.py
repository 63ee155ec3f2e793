"""`gitops-bot plan`: the preview a pull request gets, run locally."""

from __future__ import annotations

import argparse
import asyncio
import os

from bot import __version__
from bot.cli.exits import EXIT_FINDINGS, EXIT_OK
from bot.cli.reports import write_reports
from bot.clusters.directory import ClusterDirectory
from bot.config.settings import Settings, load_settings
from bot.core.formats import plan_output
from bot.core.identities import RepoIdentity
from bot.core.plans import Plan
from bot.git.repos import GitRepo
from bot.renderers import render_options
from bot.stages.checkpool import CheckPool
from bot.stages.live_preview import LivePreviewer
from bot.stages.plan import plan_change
from bot.stages.schema_sources import server_schemas
from bot.stages.unit_live import UnitLivePreviewer


def run(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    pool = CheckPool(check_workers(settings), settings.check_timeout_seconds)
    # Before any thread and after the imports: the workers are forks of this process,
    # ready at once with the checking code, instead of new interpreters importing it.
    pool.start_ahead()
    plan = asyncio.run(_plan_live(args, settings, pool))
    print(plan_output(args.format, plan, __version__), end="")
    write_reports(args.report, lambda format_: plan_output(format_, plan, __version__))
    return EXIT_FINDINGS if plan.blocking else EXIT_OK


async def _plan_live(args: argparse.Namespace, settings: Settings, pool: CheckPool) -> Plan:
    """The plan, with the live layer for every environment whose cluster is configured."""
    async with ClusterDirectory(() if args.no_cluster else settings.clusters) as clusters, pool:
        # Opening the clusters (the adapter's imports, discovery, a TLS connection) and
        # a worker's start overlap the reading of the commits.
        warming = asyncio.create_task(pool.warm(1))
        opening = asyncio.create_task(clusters.prepare())
        try:
            return await _plan(args, settings, clusters, pool)
        finally:  # a worker that cannot start fails the plan's own jobs too: said there
            opening.cancel()  # a cluster the plan did not need is not waited for
            await asyncio.gather(warming, opening, return_exceptions=True)


async def _plan(
    args: argparse.Namespace, settings: Settings, clusters: ClusterDirectory, pool: CheckPool
) -> Plan:
    live = LivePreviewer(clusters, settings.fingerprint_key)
    unit_live = UnitLivePreviewer(
        clusters, settings.fingerprint_key, settings.controller_clusters, settings.argocd_clusters
    )
    return await plan_change(
        GitRepo(args.repo),
        args.base,
        args.head,
        settings.fingerprint_key,
        args.env,
        render_options=render_options(settings, pool.run),
        live=live,
        server_schemas=server_schemas(settings, None if args.no_cluster else clusters),
        relaxation=settings.policy_rules,
        identity=RepoIdentity(
            tuple(args.repo_url),
            args.any_repo_url,
            tuple(args.branch or [args.base]),
            settings.argocd_clusters,
        ),
        unit_live=None if args.no_cluster else unit_live,
    )


def check_workers(settings: Settings) -> int:
    """Processes for parsing and checks: the settings' number, or one per core."""
    return settings.check_workers or os.cpu_count() or 1
