"""python-gitlab, off the event loop: one client per worker thread, failures as GitLabError.

python-gitlab is synchronous (requests). Every call runs in a thread through
`asyncio.to_thread`, so a slow GitLab never blocks webhook deliveries; each thread keeps
its own client because a requests session is not meant to be shared between threads.
python-gitlab itself waits as GitLab's `Retry-After` asks on 429; any other failure (5xx,
no connection) fails the call, and the job queue retries the job with its backoff.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

import gitlab
import requests

from bot.config.secrets import Secret
from bot.forges.ports import ForgeError

T = TypeVar("T")
TIMEOUT_SECONDS = 60.0


class GitLabError(ForgeError):
    """A GitLab API request failed after python-gitlab's own retries."""


class GitLabClients:
    """Hands each worker thread its own python-gitlab client for one GitLab instance."""

    def __init__(self, url: str, token: Secret) -> None:
        self.url, self._token = url.rstrip("/"), token
        self._local = threading.local()

    def _client(self) -> gitlab.Gitlab:
        client: gitlab.Gitlab | None = getattr(self._local, "client", None)
        if client is None:
            client = gitlab.Gitlab(
                self.url,
                private_token=self._token.reveal(),
                timeout=TIMEOUT_SECONDS,
                retry_transient_errors=False,  # the job queue retries, with backoff
                per_page=100,
                user_agent="gitops-bot",
            )
            self._local.client = client
        return client

    async def run(self, what: str, work: Callable[[gitlab.Gitlab], T]) -> T:
        """Do `work` with a client on a worker thread; `what` names it in errors."""

        def call() -> T:
            try:
                return work(self._client())
            except gitlab.exceptions.GitlabError as exc:
                raise GitLabError(f"GitLab API {what} failed: {describe(exc)}") from exc
            except requests.RequestException as exc:
                raise GitLabError(
                    f"GitLab API {what} failed: cannot reach {self.url} ({type(exc).__name__})"
                ) from exc

        return await asyncio.to_thread(call)


def describe(exc: gitlab.exceptions.GitlabError) -> str:
    """Status and GitLab's message; never the request, which carries the token header."""
    status = f"{exc.response_code} " if exc.response_code else ""
    return f"{status}{exc.error_message}".strip()[:500]


def is_not_found(exc: gitlab.exceptions.GitlabError) -> bool:
    return exc.response_code == 404
