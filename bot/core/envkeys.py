"""The one name an environment goes by in the store, for the server and break-glass alike."""

from __future__ import annotations

import re
from collections.abc import Mapping

# scheme://[user@]host[:port]/path, or scp-like [user@]host:path (what `git clone` takes)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?(?P<host>[^/:]+)(?::\d+)?/(?P<path>.+)$")
_SCP = re.compile(r"^(?:[^@/]+@)?(?P<host>[^/:]+):(?P<path>[^/].*)$")


def repository_name(forge: str, slug: str) -> str:
    """ "github:acme/shop": how the ledger and the store name a repository."""
    return f"{forge}:{slug}"


def environment_key(repository: str, environment: str) -> str:
    """The store's name for an environment of a repository (its lock, its applied commit,
    its merge claims): environments of the same name in two repositories are two."""
    return f"{repository}:{environment}"


def parse_repository(text: str, forges: tuple[str, ...]) -> str:
    """`--repository` as the server names it; ValueError saying what to write instead."""
    forge, _, slug = text.strip().partition(":")
    if forge not in forges or not slug.strip("/") or slug != slug.strip("/ "):
        known = " or ".join(f"{f}:OWNER/NAME" for f in forges)
        raise ValueError(
            f"--repository {text!r} is not a repository as the server names it: write {known} "
            "(the path as the forge shows it, for example github:acme/shop)"
        )
    return repository_name(forge, slug)


def repository_from_remote(url: str, hosts: Mapping[str, str]) -> str | None:
    """The server's name of the repository a clone's remote URL points at, when its host
    is one of `hosts` (host -> forge); None when the URL names another host."""
    found = _URL.match(url.strip()) or _SCP.match(url.strip())
    if found is None:
        return None
    forge = hosts.get(found["host"].lower())
    slug = found["path"].strip("/").removesuffix(".git").strip("/")
    if forge is None or not slug:
        return None
    return repository_name(forge, slug)
