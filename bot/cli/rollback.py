"""`gitops-bot rollback`: open (and with --merge, merge) a rollback pull request from a shell."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from bot.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, store_configured
from bot.config.settings import Settings, load_settings
from bot.core.repoconfig import ConfigError
from bot.core.rollbacks import ProposalRefused, rollback_target
from bot.events import Repository
from bot.forges.ports import Forge, ForgeError
from bot.git.repos import GitRepo
from bot.server.forgeclients import forge_clients
from bot.stages.proposals import environment_named, open_proposal, read_config, rollback_proposal
from bot.store.backends import store_for_url
from bot.store.operations import using


def run(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    forge, _, slug = args.repository.partition(":")
    if not (forge and slug):
        print("gitops-bot: --repository takes FORGE:OWNER/NAME (github:acme/shop)", file=sys.stderr)
        return EXIT_USAGE
    if not store_configured(settings):
        print(
            "gitops-bot: a rollback reads the ledger: set GITOPS_BOT_DATABASE_URL to the "
            "server's store",
            file=sys.stderr,
        )
        return EXIT_FAILED
    clone = args.repo.resolve().as_uri()
    repo = Repository(forge, slug, clone, args.branch, args.installation)
    try:
        return asyncio.run(_roll_back(args, settings, repo))
    except (ProposalRefused, ConfigError, ForgeError) as exc:
        print(f"gitops-bot: no rollback was opened: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def _roll_back(args: argparse.Namespace, settings: Settings, repo: Repository) -> int:
    store = store_for_url(settings.database_url)
    records = await using(store, lambda s: s.audit_records(args.env))
    async with forge_clients(settings, repo.forge) as forges:
        forge = forges.forge_for(repo)
        head = await forge.branch_head(repo, repo.default_branch)
        git = GitRepo(args.repo)
        await git.resolve(head)  # the checkout must hold the branch's head: fetch first
        environment_named(await read_config(git, head), args.env)
        target = rollback_target(records, args.env, f"{repo.forge}:{repo.slug}", args.to)
        proposal = await rollback_proposal(git, head, target, str(int(time.time())))
        pull = await open_proposal(forge, repo, head, proposal)
        print(f"opened #{pull.number}: {proposal.title} {pull.url}".rstrip())
        for warning in proposal.warnings:
            print(f"gitops-bot: {warning}", file=sys.stderr)
        if args.merge:
            return await _break_glass(forge, repo, pull.number, args.env)
    return EXIT_OK


async def _break_glass(forge: Forge, repo: Repository, number: int, environment: str) -> int:
    """Merge now, still through a merge commit: the push it makes applies it as any merge."""
    message = f"Break-glass rollback of {environment} (#{number})"
    try:
        merge = await forge.merge_pull_request(repo, number, message)
    except ForgeError as exc:
        print(
            f"gitops-bot: #{number} is open but could not be merged: {exc}; merge it on the "
            "forge (with a merge commit)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"merged #{number} as {merge}; the bot applies it from the push")
    return EXIT_OK
