"""The forge port: the few things the bot asks of GitHub or GitLab, as one small Protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.config.secrets import Secret
from bot.core.ledgerchain import Anchor
from bot.core.mergepreviews import Mergeability
from bot.core.proposalresume import BranchTip
from bot.events import Event, Repository

CHECK_NAME = "gitops-bot"


class ForgeError(RuntimeError):
    """The forge refused or failed a request; the message is safe to show a user.

    `retry_in` is the forge's own word on when to try again (seconds), when it gave one.
    """

    def __init__(self, message: str, retry_in: float | None = None) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class BranchMissing(ForgeError):
    """The branch does not exist (an empty repository has no default branch yet)."""


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    author: str
    base_sha: str
    head_sha: str
    from_fork: bool
    merged: bool = False
    merge_commit: str | None = None
    # Whether the forge has a merge result of the open PR, and the git ref that holds it
    # (GitHub's test merge commit at refs/pull/N/merge, GitLab's refs/merge-requests/N/merge).
    mergeability: Mergeability = Mergeability.UNKNOWN
    merge_ref: str | None = None


class CheckState(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"  # no verdict: superseded by a newer head, or a plan missing units


@dataclass(frozen=True)
class Annotation:
    """A note pinned to file:line in the forge's diff view."""

    path: str
    line: int
    level: str  # "failure", "warning" or "notice"
    title: str
    message: str


@dataclass(frozen=True)
class CheckReport:
    state: CheckState
    title: str
    summary: str
    annotations: tuple[Annotation, ...] = ()


class DeploymentState(StrEnum):
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILURE = "failure"  # the apply ran and failed
    ERROR = "error"  # the apply could not run


@dataclass(frozen=True)
class DeploymentReport:
    environment: str
    state: DeploymentState
    description: str
    anchor: Anchor | None = None  # the apply's audit record, published where the forge allows


@dataclass(frozen=True)
class FileChange:
    """One file of a commit the bot makes: its new content, or None to delete it."""

    path: str
    content: bytes | None
    new_file: bool = False  # absent at the parent (GitLab names creations apart from updates)


class Forge(Protocol):
    """One forge, as seen from one repository's workflows."""

    comment_limit: int  # characters in one comment
    command_permission: str  # who may run /gitops commands, in the forge's own words

    async def upsert_comment(
        self, repo: Repository, number: int, kind: str, parts: Sequence[str]
    ) -> None:
        """Make the bot's `kind` comment on PR `number` read `parts`: found by the marker
        of each part AND the bot's own author, edited in place, extra old parts removed."""

    async def reply(self, repo: Repository, number: int, text: str, on_issue: bool = False) -> None:
        """Post a new comment (answers to commands) on a PR, or on an issue."""

    async def report_check(self, repo: Repository, commit: str, report: CheckReport) -> None:
        """Make the `gitops-bot` check run (or commit status) of `commit` read `report`;
        nothing is written when it already does."""

    async def open_check(self, repo: Repository, commit: str, report: CheckReport) -> None:
        """Open a pending check on `commit` unless it has one of the bot's already: a
        re-plan leaves the last result in place until its own is ready."""

    async def conclude_open_check(self, repo: Repository, commit: str, report: CheckReport) -> bool:
        """Conclude the bot's checks of `commit` that are still pending with `report`
        (a head that is no longer the PR's); False when none was pending."""

    async def pull_request(self, repo: Repository, number: int) -> PullRequest: ...

    async def pull_request_for_commit(self, repo: Repository, commit: str) -> PullRequest | None:
        """The merged PR whose merge made `commit`, if any."""

    async def approvers(self, repo: Repository, number: int) -> tuple[str, ...]:
        """Users whose latest review of the PR approves it."""

    async def can_write(self, repo: Repository, user: str) -> bool:
        """Whether `user` may push to the repository (and so may command the bot)."""

    async def record_deployment(
        self, repo: Repository, commit: str, report: DeploymentReport
    ) -> None:
        """Create (or reuse) the deployment of `commit` to the environment; add a status."""

    async def ledger_anchors(self, repo: Repository) -> tuple[Anchor, ...]:
        """The audit ledger anchors the bot published with its recent applies to the
        repository (in its own deployment statuses or apply comments), for `audit --verify`."""

    async def git_auth_header(self, repo: Repository) -> Secret | None:
        """The HTTP header that lets git fetch the repository, or None for public access."""

    async def branch_head(self, repo: Repository, branch: str) -> str:
        """The commit `branch` points at now (drift checks compare with the default branch).
        A conditional request: while the branch stays put the forge answers 304 Not Modified.
        BranchMissing when there is no such branch."""

    async def has_file(self, repo: Repository, commit: str, path: str) -> bool:
        """Whether `path` exists at `commit` (catch-up skips repositories without a config)."""

    async def upsert_tracking_issue(
        self, repo: Repository, key: str, title: str, parts: Sequence[str]
    ) -> str:
        """Make the bot's open issue for `key` read `title` and `parts` (the first part is
        the description, later ones comments); found by the marker of part 1 AND the bot's
        own author, opened when there is none. Returns the issue's web address."""

    async def close_tracking_issue(self, repo: Repository, key: str, comment: str) -> bool:
        """Comment on and close the bot's open issue for `key`; False when none is open."""

    async def create_branch(self, repo: Repository, branch: str, commit: str) -> None:
        """Make a new branch `branch` at `commit`; ForgeError when it exists already."""

    async def commit_files(
        self,
        repo: Repository,
        branch: str,
        parent: str,
        message: str,
        files: Sequence[FileChange],
    ) -> str:
        """Commit `files` on top of `parent` (the head of `branch`) and move the branch
        there; returns the new commit."""

    async def open_pull_request(
        self, repo: Repository, head: str, base: str, title: str, body: str
    ) -> PullRequest:
        """Open a pull (merge) request from branch `head` into branch `base`."""

    async def branch_tip(self, repo: Repository, branch: str) -> BranchTip | None:
        """The commit `branch` points at, its parents and message; None without the branch."""

    async def open_pull_request_from(
        self, repo: Repository, head: str, base: str
    ) -> PullRequest | None:
        """The open pull (merge) request from branch `head` into `base`, if there is one."""

    async def merge_pull_request(self, repo: Repository, number: int, message: str) -> str:
        """Merge PR `number` through a merge commit (never a squash or rebase); returns it."""


@dataclass(frozen=True)
class Received:
    """A verified delivery: the forge's id for it, its event name, and what it asks for."""

    delivery_id: str
    event_name: str
    event: Event | None  # None: nothing for the bot to do


@dataclass(frozen=True)
class Refused:
    """Why a delivery is not taken: the HTTP status, and the words the answer and metric use."""

    status: int
    event_name: str  # "-" until the delivery is verified: a forger must not create labels
    outcome: str  # forged | malformed
    text: str


class Hooks(Protocol):
    """One forge's webhook deliveries: checked on the headers, then on the raw body."""

    too_large: str  # the answer to a body over the size cap

    def before_body(self, headers: Mapping[str, str]) -> Refused | None:
        """A refusal that needs no body (a wrong token), so a forger's body is never read."""

    def receive(self, headers: Mapping[str, str], body: bytes) -> Received | Refused:
        """Verify the delivery on its raw bytes, then parse it into an event."""


class Forges(Protocol):
    """Hands out the Forge for a repository (its installation, token, API endpoint)."""

    def forge_for(self, repo: Repository) -> Forge: ...

    async def served_repositories(self) -> tuple[Repository, ...]:
        """Every repository the bot's credentials can see (App installations, token), asked
        with conditional requests so an unchanged listing costs no rate limit."""
