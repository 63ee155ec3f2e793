"""What the status page shows, as data: environments, recent applies, dead letters, the ledger."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
_SLUG = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")  # what the forges allow
_WEB_URL = re.compile(r"^https?://[^\s\"'<>]+$")


@dataclass(frozen=True)
class Pull:
    """The pull request behind an apply, as the ledger names it."""

    number: int | None = None
    url: str | None = None  # only an http(s) address, anything else is dropped
    author: str | None = None


@dataclass(frozen=True)
class Commit:
    sha: str
    url: str | None = None  # its page on the forge, when the bot knows where that is


@dataclass(frozen=True)
class DriftStatus:
    state: str  # in-sync, drifted, unknown
    drifted_objects: int
    checked_at: str  # when, as the page prints it
    failure: str | None = None


@dataclass(frozen=True)
class EnvironmentStatus:
    """One environment of one repository: what it runs, since when, who holds its lock."""

    repository: str  # "github:owner/name"; "" for ledger records older than the field
    environment: str
    commit: Commit | None = None
    result: str | None = None  # the ledger's result for that commit (succeeded, dry-run, ...)
    applied_at: str | None = None
    pull: Pull = Pull()
    drift: DriftStatus | None = None
    lock_holder: str | None = None
    lock_until: str | None = None


@dataclass(frozen=True)
class ApplyLine:
    """One ledger record among the newest."""

    sequence: int
    repository: str
    environment: str
    commit: Commit
    result: str
    trigger: str
    finished_at: str
    pull: Pull = Pull()
    message: str | None = None


@dataclass(frozen=True)
class DeadJob:
    id: int
    kind: str
    attempts: int
    error: str | None
    subject: str = ""  # what the job was about: repository, pull request, commit, branch


@dataclass(frozen=True)
class LedgerCheck:
    """How far the ledger's chain has been verified, and whether it holds."""

    verified: int  # records verified
    complete: bool  # the check reached the newest record
    checked_at: str  # when that check started
    problem: str | None = None  # the first broken record and why


@dataclass(frozen=True)
class StatusPage:
    generated_at: str
    environments: tuple[EnvironmentStatus, ...]
    applies: tuple[ApplyLine, ...]
    dead_jobs: tuple[DeadJob, ...]
    dead_total: int  # may exceed the dead jobs listed
    ledger: LedgerCheck
    problems: tuple[str, ...] = ()  # what could not be read, shown above everything


def web_link(url: str | None) -> str | None:
    """`url` when it is a plain http(s) address: nothing else becomes a link."""
    return url if url and _WEB_URL.match(url) else None


def commit_of(repository: str, sha: str, pull_url: str | None, web: Mapping[str, str]) -> Commit:
    """A commit and its page: beside the pull request's page when the ledger names one
    (it knows the forge's host), else under the forge's web address from `web`."""
    if not _COMMIT.match(sha):
        return Commit(sha)
    pull = web_link(pull_url)
    if pull and "/-/merge_requests/" in pull:
        return Commit(sha, pull.rsplit("/-/merge_requests/", 1)[0] + f"/-/commit/{sha}")
    if pull and "/pull/" in pull:
        return Commit(sha, pull.rsplit("/pull/", 1)[0] + f"/commit/{sha}")
    forge, _, slug = repository.partition(":")
    base = web.get(forge)
    if not base or not _SLUG.match(slug):
        return Commit(sha)
    page = f"-/commit/{sha}" if forge == "gitlab" else f"commit/{sha}"
    return Commit(sha, f"{base}/{slug}/{page}")
