"""`gitops-bot init`: a starter `.gitops-bot.yaml` for the repository's working tree."""

from __future__ import annotations

import argparse
import sys

from bot.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from bot.cli.starter import StarterError, write_starter


def run(args: argparse.Namespace) -> int:
    try:
        target, found = write_starter(args.repo, args.force)
    except StarterError as exc:
        print(f"gitops-bot: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.exists else EXIT_FAILED
    for environment in found:
        print(f"{environment.name}: {environment.path} ({environment.source})")
    print(f"wrote {target}: check each environment, then commit it", file=sys.stderr)
    return EXIT_OK
