"""`gitops-bot github-app create`: create the bot's GitHub App from its manifest, in one step."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from bot.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from bot.core.appmanifests import (
    AppRequest,
    ManifestError,
    api_url_for,
    checked_request,
    settings_text,
)
from bot.forges.github.manifests import AppCredentials
from bot.server.appsetup import Setup, SetupFailed, create_app_interactively


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not args.force:
        print(
            f"gitops-bot: {out} exists; choose another --out, or --force to replace it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        request = checked_request(AppRequest(args.url, args.name, args.org, args.github_url))
    except ManifestError as exc:
        print(f"gitops-bot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    api_url = args.api_url or api_url_for(request.github_url)
    setup = Setup(request, api_url, _saver(out, api_url, args.force), args.port)
    try:
        said = asyncio.run(create_app_interactively(setup, _announce))
    except SetupFailed as exc:
        print(f"gitops-bot: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("gitops-bot: stopped; no App settings were written", file=sys.stderr)
        return EXIT_FAILED
    print(said)
    return EXIT_OK


def _announce(url: str) -> None:
    print(f"Open {url} in a browser signed in to GitHub, and create the App there.", flush=True)


def _saver(out: Path, api_url: str, force: bool) -> Callable[[AppCredentials], str]:
    def save(credentials: AppCredentials) -> str:
        text = settings_text(
            credentials.app_id,
            credentials.slug,
            credentials.pem.reveal(),
            credentials.webhook_secret.reveal(),
            api_url,
        )
        write_private(out, text, force)
        return (
            f"Wrote {out} (App {credentials.slug}, id {credentials.app_id}). Install the App on "
            f"the repositories to manage ({credentials.html_url}), then run: "
            f"GITOPS_BOT_CONFIG={out} gitops-bot serve"
        )

    return save


def write_private(path: Path, text: str, force: bool) -> None:
    """Write `text` readable by its owner only (0600), never through a moment of wider
    access; without `force` an existing file (even one made meanwhile) is kept."""
    if not force:
        _write_new(path, text)
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    _write_new(partial, text)
    partial.replace(path)


def _write_new(path: Path, text: str) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise OSError(f"{path} exists; nothing was written (use --force to replace it)") from None
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    path.chmod(0o600)  # exactly owner read and write, whatever the umask did
