"""Who a plan is for, as Argo CD and Flux objects name it: this repository's URLs and
branches, and the Argo CD clusters the settings describe.

Apart from the Argo CD and Flux machinery (`gitopsapps`, `appsets`): every plan takes
an identity, and a plan of a repository without such objects imports nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FOLLOWING = frozenset({"", "HEAD"})


@dataclass(frozen=True)
class ArgoCluster:
    """A cluster Argo CD knows, as the server settings describe it for the cluster generator."""

    name: str
    server: str
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RepoIdentity:
    """How the bot knows that a `repoURL` or a GitRepository `url` is the repository it plans.

    `urls` are this repository's clone URLs (the forge's, or `--repo-url`); `any_url`
    takes every URL as this repository (`--any-repo-url`, or `repo_urls: any` in the config).
    `branches` are the names a revision may use for the branch a pull request merges into.
    `clusters` are the Argo CD clusters the server settings describe (`argocd_clusters`).
    """

    urls: tuple[str, ...] = ()
    any_url: bool = False
    branches: tuple[str, ...] = ()
    clusters: tuple[ArgoCluster, ...] = ()  # what an ApplicationSet's clusters generator sees

    def owns(self, url: str) -> bool:
        return self.any_url or normalize_url(url) in {normalize_url(u) for u in self.urls}

    def follows(self, revision: str) -> bool:
        return revision in _FOLLOWING or revision in self.branches


NO_IDENTITY = RepoIdentity()


def normalize_url(url: str) -> str:
    """host/owner/name, whatever the scheme, user, `.git` suffix or trailing slash."""
    text = url.strip().lower().removesuffix("/").removesuffix(".git")
    text = re.sub(r"^[a-z+]+://", "", text)
    text = re.sub(r"^[^@/]*@", "", text)
    return re.sub(r"^([^/:]+):(?!\d)", r"\1/", text)
