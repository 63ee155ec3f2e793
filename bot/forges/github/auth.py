"""GitHub credentials: a personal access token, or a GitHub App's installation tokens."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gidgethub
import gidgethub.apps

from bot.config.secrets import Secret
from bot.forges.github.api import GitHubClient
from bot.forges.ports import ForgeError

REFRESH_MARGIN = 300.0  # seconds before expiry when a cached installation token is renewed
ClientFactory = Callable[[Secret | None, str], GitHubClient]  # (token, lane) -> client


class GitHubAuthError(ForgeError):
    """GitHub would not give the bot a credential; the message says what to fix."""


class Credentials(Protocol):
    is_app: bool
    app_id: str | None  # the App's id (its check runs carry it); None for a token

    async def token(self, installation: int | None) -> Secret:
        """A token for API calls and git fetches in the installation's repositories."""

    async def login(self) -> str:
        """The bot's own login, to tell its comments from everyone else's."""


class PersonalToken:
    """A personal access token (or a fine-grained token): no check runs, commit statuses."""

    is_app = False
    app_id: str | None = None

    def __init__(self, token: Secret, clients: ClientFactory, login: str | None = None) -> None:
        self._token, self._clients, self._login = token, clients, login

    async def token(self, installation: int | None) -> Secret:
        return self._token

    async def login(self) -> str:
        if self._login is None:
            user = await _call(self._clients(self._token, "token").getitem("/user"), "GET /user")
            self._login = str(user["login"])
        return self._login


@dataclass(frozen=True)
class _Cached:
    token: Secret
    expires_at: float


class AppCredentials:
    """A GitHub App: a short JWT buys installation tokens, cached until shortly before expiry."""

    is_app = True

    def __init__(
        self,
        app_id: str,
        private_key: Secret,
        clients: ClientFactory,
        clock: Callable[[], float] = time.time,
        login: str | None = None,
    ) -> None:
        self._app_id, self._key, self._clients, self._clock = app_id, private_key, clients, clock
        self.app_id: str | None = app_id
        self._login = login
        self._cache: dict[int, _Cached] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def app_jwt(self) -> str:
        """A fresh JWT of the App itself (listing its installations)."""
        return self._jwt()

    def _jwt(self) -> str:
        try:
            return gidgethub.apps.get_jwt(app_id=self._app_id, private_key=self._key.reveal())
        except ValueError as exc:  # PyJWT: the key is not an RSA private key in PEM form
            raise GitHubAuthError(
                "GITOPS_BOT_GITHUB_PRIVATE_KEY cannot sign a GitHub App token; set it to the "
                "App's private key (the .pem file's content)"
            ) from exc

    async def token(self, installation: int | None) -> Secret:
        if installation is None:
            raise GitHubAuthError(
                "the delivery names no App installation: install the GitHub App on the "
                "repository (or run the bot with a token instead)"
            )
        async with self._locks.setdefault(installation, asyncio.Lock()):
            cached = self._cache.get(installation)
            if cached is None or cached.expires_at - self._clock() < REFRESH_MARGIN:
                cached = await self._new_token(installation)
                self._cache[installation] = cached
            return cached.token

    async def _new_token(self, installation: int) -> _Cached:
        url = f"/app/installations/{installation}/access_tokens"
        client = self._clients(None, f"app-{installation}")
        data = await _call(client.post(url, data={}, jwt=self._jwt()), f"POST {url}")
        expires = datetime.datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
        return _Cached(Secret(str(data["token"])), expires.timestamp())

    async def login(self) -> str:
        if self._login is None:
            app = await _call(
                self._clients(None, "app").getitem("/app", jwt=self._jwt()), "GET /app"
            )
            self._login = f"{app['slug']}[bot]"
        return self._login


async def _call(request: Awaitable[Any], what: str) -> dict[str, Any]:
    try:
        data = await request
    except gidgethub.GitHubException as exc:
        raise GitHubAuthError(
            f"GitHub refused {what}: {exc}; check the App id, private key and installation"
        ) from exc
    if not isinstance(data, dict):
        raise GitHubAuthError(f"GitHub answered {what} with something that is not an object")
    return data
