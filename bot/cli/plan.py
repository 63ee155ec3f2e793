"""`gitops-bot plan`: the preview a pull request gets, run locally."""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from bot.cli.exits import EXIT_FINDINGS, EXIT_OK
from bot.clusters.directory import ClusterDirectory
from bot.config.settings import Settings, load_settings
from bot.core.comments import render_plan
from bot.core.gitopsapps import RepoIdentity
from bot.core.markdown import GITHUB_COMMENT_LIMIT
from bot.core.plans import Plan
from bot.core.reports import plan_as_data, plan_as_text
from bot.git.repos import GitRepo
from bot.renderers import render_options
from bot.stages.live_preview import LivePreviewer
from bot.stages.plan import plan_change
from bot.stages.schema_sources import server_schemas


def run(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    plan = asyncio.run(_plan_live(args, settings))
    if args.format == "json":
        print(json.dumps(plan_as_data(plan), indent=2))
    elif args.format == "text":
        print(plan_as_text(plan), end="")
    else:
        print("\n".join(render_plan(plan, GITHUB_COMMENT_LIMIT)), end="")
    return EXIT_FINDINGS if plan.blocking else EXIT_OK


async def _plan_live(args: argparse.Namespace, settings: Settings) -> Plan:
    """The plan, with the live layer for every environment whose cluster is configured."""
    async with ClusterDirectory(() if args.no_cluster else settings.clusters) as clusters:
        live = LivePreviewer(clusters, settings.fingerprint_key)
        return await plan_change(
            GitRepo(args.repo),
            args.base,
            args.head,
            settings.fingerprint_key,
            args.env,
            render_options=render_options(settings),
            live=live,
            server_schemas=server_schemas(settings, None if args.no_cluster else clusters),
            relaxation=settings.policy_rules,
            identity=RepoIdentity(
                tuple(args.repo_url), args.any_repo_url, tuple(args.branch or [args.base])
            ),
        )
