"""`gitops-bot audit`: list the audit ledger, or verify it (against the forge's anchors)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bot.cli.exits import EXIT_FAILED, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from bot.config.settings import Settings, load_settings
from bot.config.watchlist import WatchlistError, parse_watchlist, repository_for
from bot.core.ledgerchain import parse_anchor
from bot.events import Repository
from bot.forges.ports import ForgeError
from bot.server.forgeaccess import published_anchors
from bot.store.backends import store_for_url
from bot.store.ledger import since_timestamp
from bot.store.operations import audit_check, audit_listing, using


def run(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    if args.verify:
        return _verify(args, settings)
    store = store_for_url(settings.database_url)
    try:
        since = since_timestamp(args.since) if args.since else None
    except ValueError as exc:
        print(f"gitops-bot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    listing = asyncio.run(
        using(store, lambda s: audit_listing(s, args.env, since, args.format == "json"))
    )
    print(listing, end="")
    return EXIT_OK


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    noted = [parse_anchor(text) for text in args.anchor]
    if None in noted:
        print("gitops-bot: --anchor takes SEQUENCE:HASH (a 64-digit hex hash)", file=sys.stderr)
        return EXIT_USAGE
    try:
        repos = _repositories(args.repository, settings)
    except WatchlistError as exc:
        print(f"gitops-bot: --repository: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        published = asyncio.run(published_anchors(settings, repos)) if repos else ()
    except ForgeError as exc:
        print(f"gitops-bot: cannot read the ledger anchors from the forge: {exc}", file=sys.stderr)
        return EXIT_FAILED
    anchors = (*published, *(a for a in noted if a)) if repos or noted else None
    store = store_for_url(settings.database_url)
    keys = settings.ledger_keys
    intact, text = asyncio.run(using(store, lambda s: audit_check(s, keys, anchors)))
    print(text, end="", file=sys.stdout if intact else sys.stderr)
    return EXIT_OK if intact else EXIT_FINDINGS


def _repositories(named: list[str], settings: Settings) -> tuple[Repository, ...]:
    """The repositories whose forge holds anchors: those named, else the drift watch list."""
    watched = parse_watchlist(",".join(named)) if named else settings.drift_repositories
    return tuple(repository_for(w, settings.github_api_url, settings.gitlab_url) for w in watched)
