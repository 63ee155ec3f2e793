"""`gitops-bot serve`: the webhook server, with settings from GITOPS_BOT_* variables."""

from __future__ import annotations

import argparse
import os

from bot.cli.exits import EXIT_OK
from bot.config.settings import load_settings
from bot.server.serving import run_server


def run(args: argparse.Namespace) -> int:
    run_server(load_settings(os.environ))
    return EXIT_OK
