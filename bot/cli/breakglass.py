"""What break-glass `gitops-bot apply` needs to be one of the server's applies: the
repository as the server names it, and the applied commit fetched for the ordering check."""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

from bot.config.settings import Settings
from bot.core.envkeys import parse_repository, repository_from_remote
from bot.forges.registry import KITS
from bot.git.repos import GitError, GitRepo

NO_REPOSITORY = (
    "cannot tell which repository {path} is as the server knows it (its `origin` remote "
    "names no GitHub or GitLab host of the settings); pass --repository FORGE:OWNER/NAME, "
    "for example --repository github:acme/shop, so the apply takes the server's lock"
)


async def server_repository(
    args: argparse.Namespace, settings: Settings, repo: GitRepo
) -> str | None:
    """`--repository` (ValueError when malformed), else what the checkout's `origin`
    remote points at on a forge of the settings, else None."""
    if args.repository:
        return parse_repository(args.repository, tuple(kit.name for kit in KITS))
    try:
        remote = (await repo.git("remote", "get-url", "origin")).decode().strip()
    except GitError:
        return None
    return repository_from_remote(remote, forge_hosts(settings))


def forge_hosts(settings: Settings) -> dict[str, str]:
    """Host -> forge, for the forges the settings point at (GitHub Enterprise Server's
    API lives on its web host, as does GitLab's)."""
    hosts = {"github.com": "github", "gitlab.com": "gitlab"}
    github = urlsplit(settings.github_api_url).hostname or ""
    if github and github != "api.github.com":
        hosts[github.lower()] = "github"
    gitlab = urlsplit(settings.gitlab_url).hostname or ""
    if gitlab:
        hosts[gitlab.lower()] = "gitlab"
    return hosts


class UnknownApplied(RuntimeError):
    """The environment runs a commit the checkout lacks: whether `--ref` is older than it
    cannot be told, so nothing is applied."""


async def fetch_from_origin(repo: GitRepo, commit: str) -> None:
    """Bring `commit` (what the environment runs) into the checkout for the ordering
    check. Unlike the server (whose mirror follows the forge), an operator's clone may be
    stale: when neither it nor its origin has the commit, UnknownApplied."""
    try:
        await repo.git("cat-file", "-e", f"{commit}^{{commit}}")
    except GitError:
        try:
            await repo.git("fetch", "--quiet", "origin", commit)
        except GitError:
            raise UnknownApplied(
                f"the environment runs {commit[:12]}, which {repo.path} does not have and "
                "could not fetch from its origin, so whether the ref is older cannot be "
                "told; fetch it (git fetch) and run again, or pass --allow-older"
            ) from None
