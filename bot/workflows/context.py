"""What workflows act through (store, forges, mirrors, metrics), and how events become jobs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from bot.clusters.directory import ClusterDirectory
from bot.config.settings import Settings
from bot.core.credentials import mask_credentials
from bot.core.envkeys import environment_key as envkey
from bot.core.envkeys import repository_name
from bot.events import (
    CommentCommand,
    Event,
    PullRequestChanged,
    PushToDefaultBranch,
    Repository,
    event_from_data,
    event_to_masked_data,
)
from bot.forges.ports import Forges
from bot.git.mirrors import Mirrors
from bot.notifiers.ports import Notifier
from bot.renderers import Offload
from bot.schemas.catalog import catalog_for
from bot.stages.apply.audited import Ledger
from bot.stages.plan import CatalogFactory
from bot.store.ports import Job, NewJob, Store
from bot.telemetry.logs import event_context
from bot.telemetry.metrics import Metrics

_JOB_JSON = json.JSONEncoder(sort_keys=True)  # json.dumps(..., sort_keys=True), built once
W = TypeVar("W")
E = TypeVar("E", PullRequestChanged, PushToDefaultBranch, CommentCommand)


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    forges: Forges
    mirrors: Mirrors
    metrics: Metrics
    catalogs: CatalogFactory = catalog_for
    clock: Callable[[], float] = time.time  # this host's (metrics); the store keeps its own
    clusters: ClusterDirectory | None = None  # None or unknown cluster: a dry apply
    offload: Offload | None = None  # where parsing and checks run (None: a thread here)
    notifier: Notifier | None = None  # how notification jobs are sent (None: they fail)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # waits on the store's clock
    # Catch-up, in this process: "forge:slug" -> the branch head last caught up on, so an
    # idle repository costs one conditional request an interval and nothing more.
    caught_up: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """One failed attempt of a job: its error (secrets masked), and whether it was the last."""

    job: Job
    error: str
    final: bool  # no retry follows: the job is dead-lettered


class Workflow(Protocol[W]):
    """One kind of job: how its payload becomes work, how it runs, how it reports a failure."""

    kind: str

    def decode(self, data: Mapping[str, Any]) -> W:
        """The work a job's payload describes; ValueError, KeyError or TypeError if unreadable."""

    def log_context(self, work: W) -> dict[str, Any]:
        """What each log line of the job says it is about."""

    async def run(self, services: Services, work: W, job: Job) -> StrEnum:
        """Do the work; the outcome is one of the workflow's own closed set."""

    async def report_failure(self, services: Services, work: W, failure: Failure) -> None:
        """Tell the people concerned that an attempt failed, and how to retry it."""


class EventWorkflow(Generic[E]):
    """The decoding and log context every workflow started by a forge event shares."""

    event_type: type[E]

    def decode(self, data: Mapping[str, Any]) -> E:
        event = event_from_data(data)
        if not isinstance(event, self.event_type):
            raise TypeError(f"a {type(event).__name__} is not a {self.event_type.__name__}")
        return event

    def log_context(self, work: E) -> dict[str, Any]:
        return event_context(work)


def ledger(services: Services) -> Ledger:
    """What the one audited apply needs of the services: the store, clusters, lease."""
    lease = services.settings.job_lease_seconds
    sealing = services.settings.ledger_keys.current
    return Ledger(services.store, services.clusters, lease, sealing)


def job_for(event: Event) -> NewJob:
    """The job an event asks for. Only the newest head of a PR is planned. Merges of a
    repository are applied one at a time and none is dropped: pushes can arrive out of
    order, and the apply itself records an older merge as superseded by a newer one.
    Anything shaped like a credential is masked before the job is stored."""
    where = mask_credentials(f"{event.repo.forge}:{event.repo.slug}")
    payload = _JOB_JSON.encode(event_to_masked_data(event, mask_credentials))
    if isinstance(event, PullRequestChanged):
        return NewJob("plan", payload, f"plan:{where}#{event.number}")
    if isinstance(event, PushToDefaultBranch):
        return NewJob("apply", payload, apply_queue(event.repo), supersedes=False)
    if isinstance(event, CommentCommand):
        return NewJob("command", payload)
    raise TypeError(f"no job for {type(event).__name__}")


def apply_queue(repo: Repository) -> str:
    """The coalescing key of a repository's applies: they run one at a time, in order."""
    return "apply:" + mask_credentials(f"{repo.forge}:{repo.slug}")


def environment_key(event: Event, environment: str) -> str:
    """The store's name for an environment: environments belong to one repository."""
    return repository_environment_key(event.repo, environment)


def repository_environment_key(repo: Repository, environment: str) -> str:
    """The same key break-glass `gitops-bot apply` uses (core.envkeys)."""
    return envkey(repository_name(repo.forge, repo.slug), environment)
