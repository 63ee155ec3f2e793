"""The notification port over HTTP: one POST per attempt, bounded in time, never followed."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from bot.notifiers.ports import NotifyError


class HttpNotifier:
    """Posts through the app's one ClientSession; each attempt has its own time limit, so a
    receiver that never answers costs one job worker that long and no more."""

    def __init__(self, session: aiohttp.ClientSession, timeout_seconds: float) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            async with self._session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", **headers},
                timeout=self._timeout,
                allow_redirects=False,  # a redirect could carry the body somewhere else
            ) as response:
                status = response.status
        except TimeoutError:
            raise NotifyError(f"no answer within {self._timeout.total:g} seconds") from None
        except aiohttp.ClientError as exc:
            raise NotifyError(f"could not reach the receiver: {type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise NotifyError(f"the receiver answered HTTP {status}")
