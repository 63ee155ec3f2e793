"""Catch-up inputs: a repository's config at the branch head, and what the store knows of
each apply-on-merge environment there."""

from __future__ import annotations

from collections.abc import Callable

from bot.core.catchup import EnvironmentState
from bot.core.repoconfig import CONFIG_PATH, RepoConfig, parse_config
from bot.events import Repository
from bot.git.repos import GitRepo
from bot.store.ports import ApplyRecords


async def config_at(mirror: GitRepo, commit: str) -> RepoConfig:
    """The `.gitops-bot.yaml` of `commit`; ConfigError when it is missing or unusable."""
    return parse_config(await mirror.read_file(commit, CONFIG_PATH))


async def environment_states(
    store: ApplyRecords,
    repo: Repository,
    config: RepoConfig,
    head: str,
    key: Callable[[Repository, str], str],
) -> list[EnvironmentState]:
    """Each apply-on-merge environment: its applied commit (under the store's `key` for
    it), and whether the ledger has a record of `head` there (environment names repeat
    across repositories, so records are matched on the repository too)."""
    repository = f"{repo.forge}:{repo.slug}"
    states = []
    for environment in config.environments:
        if not environment.apply_on_merge:
            continue
        applied = await store.last_applied(key(repo, environment.name))
        records = await store.audit_records(environment.name)
        recorded = any(r.entry.repository == repository and r.entry.commit == head for r in records)
        commit = applied.commit if applied is not None else None
        states.append(EnvironmentState(environment.name, commit, recorded))
    return states
