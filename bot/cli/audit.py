"""`gitops-bot audit`: list the audit ledger, or verify its whole chain."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bot.cli.exits import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from bot.config.settings import load_settings
from bot.store.backends import store_for_url
from bot.store.ledger import since_timestamp
from bot.store.operations import audit_check, audit_listing, using


def run(args: argparse.Namespace) -> int:
    store = store_for_url(load_settings(os.environ).database_url)
    if args.verify:
        intact, text = asyncio.run(using(store, audit_check))
        print(text, end="", file=sys.stdout if intact else sys.stderr)
        return EXIT_OK if intact else EXIT_FINDINGS
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
