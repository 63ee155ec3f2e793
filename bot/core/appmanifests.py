"""GitHub App manifests: what the App asks for, the page that posts it, the settings it yields.

The permissions and events are the ones the README's "GitHub setup" lists, no more.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

PERMISSIONS = {
    "contents": "read",  # fetch commits
    "pull_requests": "read",  # the merged PR, its reviews
    "issues": "write",  # plan and apply comments, drift tracking issues
    "checks": "write",  # the gitops-bot check run
    "deployments": "write",  # one deployment and status per environment
    "metadata": "read",  # mandatory; collaborator permissions
}
EVENTS = ("pull_request", "push", "issue_comment")
_ORG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_HOST_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~/-]*)?$")
_PEM_LINE = re.compile(r"^[-A-Za-z0-9+/= ]*$")


class ManifestError(ValueError):
    """An argument the App cannot be created with; the message says what to give instead."""


@dataclass(frozen=True)
class AppRequest:
    """What the person running the command asked for."""

    bot_url: str  # https://HOST where `gitops-bot serve` is reached
    name: str = "gitops-bot"
    org: str | None = None  # create the App in this organisation, not the user's account
    github_url: str = "https://github.com"  # the web address (GitHub Enterprise: https://HOST)


def checked_request(request: AppRequest) -> AppRequest:
    """The request with its URLs normalised, or ManifestError naming what is wrong."""
    bot_url = request.bot_url.rstrip("/")
    if not _HOST_URL.match(bot_url):
        raise ManifestError(
            f"--url {request.bot_url!r}: give the https:// address where gitops-bot serve is "
            "reached, e.g. https://gitops-bot.example.com (GitHub sends webhooks there)"
        )
    if request.org is not None and not _ORG.match(request.org):
        raise ManifestError(f"--org {request.org!r} is not a GitHub organisation login")
    if not request.github_url.startswith(("https://", "http://")):
        raise ManifestError(f"--github-url {request.github_url!r}: give an https:// address")
    github_url = request.github_url.rstrip("/")
    return AppRequest(bot_url, request.name, request.org, github_url)


def app_manifest(request: AppRequest, redirect_url: str) -> dict[str, Any]:
    """GitHub's App manifest: webhooks to the bot, back to `redirect_url` with a code."""
    return {
        "name": request.name,
        "url": request.bot_url,
        "hook_attributes": {"url": f"{request.bot_url}/webhooks/github", "active": True},
        "redirect_url": redirect_url,
        "public": False,
        "default_permissions": dict(PERMISSIONS),
        "default_events": list(EVENTS),
    }


def creation_url(request: AppRequest, state: str) -> str:
    """Where the page posts the manifest: the user's new-App page, or the organisation's."""
    owner = f"/organizations/{request.org}" if request.org else ""
    return f"{request.github_url}{owner}/settings/apps/new?state={state}"


def manifest_page(manifest: dict[str, Any], action: str) -> str:
    """A page with one form that posts the manifest to GitHub (nothing is sent until the
    person presses the button, signed in to GitHub in the same browser)."""
    value = html.escape(json.dumps(manifest), quote=True)
    owner = html.escape(action.split("/settings/apps/new")[0])
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>gitops-bot: create the "
        "GitHub App</title></head><body>\n<h1>Create the gitops-bot GitHub App</h1>\n"
        f"<p>The App is created on {owner} with the permissions and events gitops-bot "
        "needs; GitHub then sends you back here, and its id, private key and webhook "
        "secret are written to the settings file.</p>\n"
        f'<form method="post" action="{html.escape(action, quote=True)}">\n'
        f'<input type="hidden" name="manifest" value="{value}">\n'
        '<button type="submit">Create the GitHub App</button>\n</form>\n</body></html>\n'
    )


def settings_text(app_id: int, slug: str, pem: str, webhook_secret: str, api_url: str) -> str:
    """The settings file `gitops-bot serve` reads (GITOPS_BOT_CONFIG), with the App's secrets."""
    lines = pem.strip().splitlines()
    if not lines or not all(_PEM_LINE.match(line) for line in lines):
        raise ManifestError("GitHub's answer holds no private key in PEM form")
    key = "\n".join(f"  {line}" for line in lines)
    return (
        f"# gitops-bot settings for the GitHub App {slug}, written by "
        "`gitops-bot github-app create`.\n"
        "# Keep this file secret. Serve with: GITOPS_BOT_CONFIG=THIS-FILE gitops-bot serve\n"
        f"github_app_id: {json.dumps(str(app_id))}\n"
        f"github_api_url: {json.dumps(api_url)}\n"
        f"github_webhook_secret: {json.dumps(webhook_secret)}\n"
        f"github_private_key: |\n{key}\n"
    )


def api_url_for(github_url: str) -> str:
    """The REST API of a GitHub web address: api.github.com, or GitHub Enterprise's /api/v3."""
    web = github_url.rstrip("/")
    return "https://api.github.com" if web == "https://github.com" else f"{web}/api/v3"
