"""`gitops-bot jobs --dead`: the dead-lettered jobs and how to re-run one."""

from __future__ import annotations

import argparse
import asyncio
import os

from bot.cli.exits import EXIT_OK
from bot.config.settings import load_settings
from bot.store.backends import store_for_url
from bot.store.operations import dead_letter_listing, using


def run(args: argparse.Namespace) -> int:
    store = store_for_url(load_settings(os.environ).database_url)
    print(asyncio.run(using(store, dead_letter_listing)), end="")
    return EXIT_OK
