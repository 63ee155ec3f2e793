"""The forge adapters outside the server: for a command that talks to one forge and exits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from bot.config.settings import Settings, SettingsError
from bot.forges.ports import Forges
from bot.forges.registry import KITS, Resources
from bot.telemetry.metrics import Metrics


@asynccontextmanager
async def forge_clients(settings: Settings, forge: str) -> AsyncIterator[Forges]:
    """The adapter of `forge` with the server's own credentials, for as long as the block runs."""
    kit = next((k for k in KITS if k.name == forge), None)
    if kit is None:
        known = ", ".join(k.name for k in KITS)
        raise SettingsError(f"no forge {forge!r}; the bot knows: {known}")
    kit.check_settings(settings)  # says which credential is missing
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield kit.forges(Resources(settings, session, Metrics(), time.time, asyncio.sleep))
