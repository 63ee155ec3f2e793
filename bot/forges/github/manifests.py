"""The last step of GitHub's App manifest flow: a one-time code becomes the App's credentials."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.config.secrets import Secret
from bot.forges.github.api import GitHubError

_CODE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


@dataclass(frozen=True)
class AppCredentials:
    """What GitHub hands over once, when the App is created from the manifest."""

    app_id: int
    slug: str
    html_url: str
    pem: Secret
    webhook_secret: Secret


async def convert_manifest(
    session: aiohttp.ClientSession, api_url: str, code: str
) -> AppCredentials:
    """POST /app-manifests/{code}/conversions (no authentication: the code is the proof;
    it works once and for an hour)."""
    if not _CODE.match(code):
        raise GitHubError("GitHub's redirect carried no usable code; start again")
    url = f"{api_url.rstrip('/')}/app-manifests/{code}/conversions"
    headers = {"Accept": "application/vnd.github+json", "User-Agent": "gitops-bot"}
    try:
        async with session.post(url, headers=headers) as response:
            data = await response.json(content_type=None) if response.status < 500 else None
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise GitHubError(f"could not reach {api_url}: {type(exc).__name__}") from None
    if status != 201 or not isinstance(data, dict):
        message = data.get("message", "") if isinstance(data, dict) else ""
        raise GitHubError(
            f"GitHub refused the code (HTTP {status}{': ' + str(message) if message else ''}); "
            "a code works once and for an hour: run the command again"
        )
    return _credentials(data)


def _credentials(data: dict[str, Any]) -> AppCredentials:
    pem, secret, app_id = data.get("pem"), data.get("webhook_secret"), data.get("id")
    if not (isinstance(pem, str) and pem and isinstance(secret, str) and secret):
        raise GitHubError("GitHub's answer lacks the App's private key or webhook secret")
    if not isinstance(app_id, int):
        raise GitHubError("GitHub's answer lacks the App's id")
    slug, html_url = str(data.get("slug") or ""), str(data.get("html_url") or "")
    return AppCredentials(app_id, slug, html_url, Secret(pem), Secret(secret))
