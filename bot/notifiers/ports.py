"""The notification port: post one body to a receiver, or say why it was not taken."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class NotifyError(RuntimeError):
    """The receiver did not take the notification (no answer in time, refused, unreachable)."""


class Notifier(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Send `body` as JSON; returns once the receiver answered 2xx, else NotifyError."""
