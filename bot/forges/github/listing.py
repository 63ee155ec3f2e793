"""The repositories a GitHub App's installations (or a token) can see, listed with
conditional requests: the clients given here carry their lane's ETag cache, so an
unchanged listing is answered 304 Not Modified and costs no rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import gidgethub

from bot.events import GITHUB, Repository
from bot.forges.github.api import GitHubClient, GitHubError

INSTALLATIONS = "/app/installations?per_page=100"
INSTALLATION_REPOSITORIES = "/installation/repositories?per_page=100"
USER_REPOSITORIES = "/user/repos?per_page=100"


async def installation_ids(client: GitHubClient, jwt: str) -> list[int]:
    """The App's installations (GET /app/installations, as the App itself)."""
    items = client.getiter(INSTALLATIONS, jwt=jwt)
    return [int(item["id"]) async for item in _listed(items, f"GET {INSTALLATIONS}")]


async def installation_repositories(client: GitHubClient, installation: int) -> list[Repository]:
    """What one installation covers (GET /installation/repositories, its own token)."""
    items = client.getiter(INSTALLATION_REPOSITORIES, iterable_key="repositories")
    what = f"GET {INSTALLATION_REPOSITORIES} (installation {installation})"
    return [_repository(item, installation) async for item in _listed(items, what)]


async def token_repositories(client: GitHubClient) -> list[Repository]:
    """What a personal access token can see (GET /user/repos)."""
    items = client.getiter(USER_REPOSITORIES)
    return [_repository(item, None) async for item in _listed(items, f"GET {USER_REPOSITORIES}")]


def _repository(data: dict[str, Any], installation: int | None) -> Repository:
    return Repository(
        GITHUB,
        str(data["full_name"]),
        str(data["clone_url"]),
        str(data.get("default_branch") or "main"),
        installation,
    )


async def _listed(items: AsyncIterator[Any], what: str) -> AsyncIterator[dict[str, Any]]:
    try:
        async for item in items:
            yield item
    except gidgethub.GitHubException as exc:
        raise GitHubError(f"GitHub API {what} failed: {exc}") from exc
