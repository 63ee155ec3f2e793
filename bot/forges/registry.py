"""Every forge the bot serves, registered in one place: a new forge is one kit and one line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from bot.config.settings import Settings
from bot.events import GITHUB, GITLAB
from bot.forges.github.api import Pacing
from bot.forges.github.forge import GitHubForges, check_github_settings
from bot.forges.github.hooks import GitHubHooks
from bot.forges.gitlab.forge import GitLabForges
from bot.forges.gitlab.hooks import GitLabHooks, check_gitlab_settings
from bot.forges.ports import Forges, Hooks
from bot.telemetry.metrics import Metrics

Clock = Callable[[], float]


@dataclass(frozen=True)
class Resources:
    """What the app lends a kit for as long as it runs."""

    settings: Settings
    session: aiohttp.ClientSession  # one for every HTTP call the app makes
    metrics: Metrics
    clock: Clock
    sleep: Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class ForgeKit:
    """One forge: when it is served, what its settings need, its webhooks, its adapter."""

    name: str  # the Repository.forge value, and the route /webhooks/<name>
    configured: Callable[[Settings], bool]
    check_settings: Callable[[Settings], None]  # raises SettingsError
    hooks: Callable[[Settings, Clock], Hooks]
    forges: Callable[[Resources], Forges]


def _github_hooks(settings: Settings, clock: Clock) -> Hooks:
    assert settings.github_webhook_secret is not None  # the kit is configured only then
    return GitHubHooks(settings.github_webhook_secret)


def _github_forges(resources: Resources) -> Forges:
    pacing = Pacing(sleep=resources.sleep, clock=resources.clock)
    return GitHubForges(resources.settings, resources.session, resources.metrics, pacing)


KITS = (
    ForgeKit(
        GITHUB,
        lambda settings: bool(settings.github_webhook_secret),
        check_github_settings,
        _github_hooks,
        _github_forges,
    ),
    ForgeKit(
        GITLAB,
        lambda settings: bool(settings.gitlab_webhook_secret),
        check_gitlab_settings,
        GitLabHooks.from_settings,
        lambda resources: GitLabForges(resources.settings),
    ),
)


def configured_kits(settings: Settings) -> tuple[ForgeKit, ...]:
    """The kits of the forges whose webhook secret is set: only those are served."""
    return tuple(kit for kit in KITS if kit.configured(settings))
