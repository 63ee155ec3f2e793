"""A gidgethub client that waits when GitHub says so, retries 5xx, and paces writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import gidgethub
import gidgethub.aiohttp

from bot.forges.ports import ForgeError
from bot.telemetry.metrics import Metrics

SECONDARY_LIMIT_MINIMUM = 60.0  # GitHub: "wait for at least one minute", then exponentially
_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class GitHubError(ForgeError):
    """A GitHub API request failed after the client's own retries and waits."""


@dataclass
class Pacing:
    """How the client waits; tests pass a recording `sleep` and a fixed `clock`."""

    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.time
    max_attempts: int = 6
    server_error_backoff: float = 2.0
    max_inline_wait: float = 900.0  # longer waits go back to the job queue instead


@dataclass
class Lane:
    """Per-installation state shared by every client: content-creating requests go one at
    a time, and a secondary-limit pause holds back every request of the installation."""

    writes: asyncio.Lock = field(default_factory=asyncio.Lock)
    paused_until: float = 0.0
    secondary_hits: int = 0
    # gidgethub's cache of conditional GETs: URL -> (ETag, Last-Modified, data, next page).
    # Only the requests catch-up repeats go through it (branch heads, repository listings).
    etags: dict[str, Any] = field(default_factory=dict)


def rate_limit_wait(
    status: int, headers: Mapping[str, str], message: str, now: float, secondary_hits: int
) -> tuple[float, str] | None:
    """How long GitHub asks us to wait before retrying, and why; None when it does not."""
    if status not in (403, 429):
        return None
    retry_after = headers.get("retry-after")
    if retry_after is not None and retry_after.strip().isdigit():
        return float(retry_after), "retry-after"
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        return max(float(headers["x-ratelimit-reset"]) - now, 1.0), "primary"
    if status == 429 or "secondary rate limit" in message.lower():
        return SECONDARY_LIMIT_MINIMUM * 2**secondary_hits, "secondary"
    return None  # a plain "forbidden"


class GitHubClient(gidgethub.aiohttp.GitHubAPI):
    """gidgethub's aiohttp client with the bot's waiting, retry and metrics rules."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        token: str | None,
        base_url: str,
        lane: Lane,
        pacing: Pacing,
        metrics: Metrics,
        installation: str,
        cache: MutableMapping[str, Any] | None = None,
    ) -> None:
        super().__init__(session, "gitops-bot", oauth_token=token, base_url=base_url, cache=cache)
        self._lane, self._pacing, self._metrics = lane, pacing, metrics
        self._installation = installation

    async def sleep(self, seconds: float) -> None:
        await self._pacing.sleep(seconds)

    async def manage_rate_limit(self, *, method: str, url: str) -> None:
        pause = self._lane.paused_until - self._pacing.clock()
        if pause > 0:
            await self.sleep(pause)

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        if method in _WRITE_METHODS:
            async with self._lane.writes:
                return await self._send(method, url, headers, body)
        return await self._send(method, url, headers, body)

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes]:
        status, reply_headers, data = await super()._request(method, url, headers, body)
        self._metrics.api_calls.labels(method, str(status)).inc()
        remaining = reply_headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.isdigit():
            self._metrics.rate_limit_remaining.labels(self._installation).set(int(remaining))
        return status, reply_headers, data

    async def handle_rate_limit_error(
        self, *, method: str, url: str, exception: gidgethub.HTTPException, attempt: int
    ) -> bool:
        wait = self._wait_for(exception, attempt)
        if wait is None or attempt >= self._pacing.max_attempts:
            return False
        seconds, reason = wait
        if seconds > self._pacing.max_inline_wait:  # the queue retries the job, not a worker
            raise GitHubError(
                f"GitHub asks to wait {seconds:.0f} s ({reason} limit) before {method} {url}",
                retry_in=seconds,
            ) from exception
        self._metrics.rate_limit_waits.labels(reason).inc()
        if reason == "secondary":
            self._lane.secondary_hits += 1
            self._lane.paused_until = self._pacing.clock() + seconds
        await self.sleep(seconds)
        return True

    def _wait_for(
        self, exception: gidgethub.HTTPException, attempt: int
    ) -> tuple[float, str] | None:
        status = int(exception.status_code)
        if status >= 500:
            return self._pacing.server_error_backoff * 2 ** (attempt - 1), "server-error"
        return rate_limit_wait(
            status,
            exception.headers,
            str(exception),
            self._pacing.clock(),
            self._lane.secondary_hits,
        )

    async def _make_request(self, *args: Any, **kwargs: Any) -> Any:
        result = await super()._make_request(*args, **kwargs)
        self._lane.secondary_hits = 0  # a success ends the exponential series
        return result
