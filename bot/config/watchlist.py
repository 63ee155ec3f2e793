"""The repositories the drift loop watches, as the server settings list them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from bot.events import GITHUB, GITLAB, Repository

_SLUG = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
_EXAMPLE = (
    'e.g. ["github:acme/deploy", {"forge": "github", "slug": "acme/infra", '
    '"installation": 1234, "default_branch": "main"}]'
)


class WatchlistError(ValueError):
    """The drift_repositories setting cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class WatchedRepository:
    forge: str
    slug: str  # "owner/name" on GitHub, the project path on GitLab
    default_branch: str = "main"
    clone_url: str = ""  # derived from the forge's address when empty
    installation: int | None = None  # the GitHub App installation that covers the repository


_KEYS = {f.name for f in fields(WatchedRepository)}


def parse_watchlist(value: Any) -> tuple[WatchedRepository, ...]:
    """Entries from a list (YAML), a JSON text, or a comma-separated text of forge:slug."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise WatchlistError(f"not valid JSON: {exc}") from None
        else:
            value = [item for item in re.split(r"[,\s]+", text) if item]
    if not isinstance(value, list):
        raise WatchlistError(f"expected a list of repositories, {_EXAMPLE}")
    return tuple(_entry(index, item) for index, item in enumerate(value))


def _entry(index: int, item: Any) -> WatchedRepository:
    where = f"entry {index + 1}"
    if isinstance(item, str):
        forge, _, slug = item.rpartition(":")
        item = {"forge": forge or GITHUB, "slug": slug}
    if not isinstance(item, Mapping):
        raise WatchlistError(f"{where}: expected forge:slug or a mapping, {_EXAMPLE}")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise WatchlistError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}"
        )
    watched = WatchedRepository(
        forge=str(item.get("forge") or GITHUB),
        slug=str(item.get("slug") or ""),
        default_branch=str(item.get("default_branch") or "main"),
        clone_url=str(item.get("clone_url") or ""),
        installation=int(item["installation"]) if item.get("installation") else None,
    )
    if watched.forge not in (GITHUB, GITLAB):
        raise WatchlistError(f"{where}: forge must be {GITHUB} or {GITLAB}, not {watched.forge!r}")
    if not _SLUG.match(watched.slug):
        raise WatchlistError(f"{where}: {watched.slug!r} is not owner/name (or a GitLab path)")
    return watched


def repository_for(watched: WatchedRepository, github_api_url: str, gitlab_url: str) -> Repository:
    """The repository as a webhook would have named it; the clone URL from the forge's host."""
    clone_url = watched.clone_url or f"{_web_url(watched.forge, github_api_url, gitlab_url)}/" + (
        f"{watched.slug}.git"
    )
    return Repository(
        watched.forge, watched.slug, clone_url, watched.default_branch, watched.installation
    )


def _web_url(forge: str, github_api_url: str, gitlab_url: str) -> str:
    if forge == GITLAB:
        return gitlab_url.rstrip("/")
    api = github_api_url.rstrip("/")
    if api == "https://api.github.com":
        return "https://github.com"
    return api.removesuffix("/api/v3")  # GitHub Enterprise Server serves git at its root
