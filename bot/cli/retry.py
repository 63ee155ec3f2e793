"""`gitops-bot retry JOB_ID`: queue a dead-lettered job again."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bot.cli.exits import EXIT_OK, EXIT_USAGE
from bot.config.settings import load_settings
from bot.server.worker import requeue_dead_job
from bot.store.backends import store_for_url


def run(args: argparse.Namespace) -> int:
    store = store_for_url(load_settings(os.environ).database_url)
    if asyncio.run(requeue_dead_job(store, args.job_id)):
        print(f"job {args.job_id} is queued again")
        return EXIT_OK
    print(f"gitops-bot: no dead-lettered job {args.job_id}", file=sys.stderr)
    return EXIT_USAGE
