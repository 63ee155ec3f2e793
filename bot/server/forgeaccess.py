"""Forge access outside the webhook server: the same adapters, for one command's run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from bot.config.settings import Settings
from bot.core.ledgerchain import Anchor
from bot.events import Repository
from bot.forges.ports import Forge, ForgeError
from bot.forges.registry import KITS, Resources
from bot.telemetry.metrics import Metrics


class CommandForges:
    """The forge adapter of each repository, built as the server builds them."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    def forge_for(self, repo: Repository) -> Forge:
        kit = next((k for k in KITS if k.name == repo.forge), None)
        if kit is None:
            raise ForgeError(f"no forge is named {repo.forge!r}")
        return kit.forges(self._resources).forge_for(repo)


@asynccontextmanager
async def command_forges(settings: Settings) -> AsyncIterator[CommandForges]:
    """Forge adapters sharing one HTTP session, closed when the block ends."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield CommandForges(Resources(settings, session, Metrics(), time.time, asyncio.sleep))


async def published_anchors(
    settings: Settings, repos: tuple[Repository, ...]
) -> tuple[Anchor, ...]:
    """The ledger anchors the repositories' forges hold; ForgeError when one cannot be read
    (an unreachable forge included)."""
    try:
        async with command_forges(settings) as forges:
            found = [await forges.forge_for(repo).ledger_anchors(repo) for repo in repos]
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise ForgeError(f"the forge did not answer ({exc or type(exc).__name__})") from exc
    return tuple(a for anchors in found for a in anchors)
