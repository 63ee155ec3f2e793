"""What workflows act through (store, forges, mirrors, metrics), and how events become jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.clusters.directory import ClusterDirectory
from bot.events import (
    CommentCommand,
    Event,
    PullRequestChanged,
    PushToDefaultBranch,
    Repository,
    event_to_data,
)
from bot.forges import Forges
from bot.metrics import Metrics
from bot.mirrors import Mirrors
from bot.renderers import Offload
from bot.schemacatalog import catalog_for
from bot.settings import Settings
from bot.store import NewJob, Store
from bot.workflows import CatalogFactory


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    forges: Forges
    mirrors: Mirrors
    metrics: Metrics
    catalogs: CatalogFactory = catalog_for
    clock: Callable[[], float] = time.time  # the store's clock: retry times are in it
    clusters: ClusterDirectory | None = None  # None or unknown cluster: a dry apply
    offload: Offload | None = None  # where parsing and checks run (None: a thread here)


def job_for(event: Event) -> NewJob:
    """The job an event asks for. Only the newest head of a PR is planned. Merges of a
    repository are applied one at a time and none is dropped: pushes can arrive out of
    order, and the apply itself records an older merge as superseded by a newer one."""
    where = f"{event.repo.forge}:{event.repo.slug}"
    payload = json.dumps(event_to_data(event), sort_keys=True)
    if isinstance(event, PullRequestChanged):
        return NewJob("plan", payload, f"plan:{where}#{event.number}")
    if isinstance(event, PushToDefaultBranch):
        return NewJob("apply", payload, f"apply:{where}", supersedes=False)
    if isinstance(event, CommentCommand):
        return NewJob("command", payload)
    raise TypeError(f"no job for {type(event).__name__}")


def environment_key(event: Event, environment: str) -> str:
    """The store's name for an environment: environments belong to one repository."""
    return repository_environment_key(event.repo, environment)


def repository_environment_key(repo: Repository, environment: str) -> str:
    return f"{repo.forge}:{repo.slug}:{environment}"
