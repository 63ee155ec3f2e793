"""Forge payloads -> one vocabulary of frozen events; workflows never see a vendor dict."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GITHUB = "github"
GITLAB = "gitlab"
COMMAND_PREFIX = "/gitops"
_PR_ACTIONS = frozenset({"opened", "synchronize", "reopened", "ready_for_review"})
_MAX_COMMAND_WORDS = 8
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class PayloadError(ValueError):
    """A signed payload lacks a field the bot needs; the message names the field."""


@dataclass(frozen=True)
class Repository:
    """A repository on a forge; `installation` is the App install that covers it, if any."""

    forge: str
    slug: str  # "owner/name" on GitHub, the project path on GitLab
    clone_url: str
    default_branch: str
    installation: int | None = None


@dataclass(frozen=True)
class PullRequestChanged:
    """A pull/merge request was opened or got new commits: preview it."""

    repo: Repository
    number: int
    base_sha: str  # "" when the forge's event names none (GitLab): the preview asks the forge
    head_sha: str
    author: str
    from_fork: bool
    url: str = ""


@dataclass(frozen=True)
class PushToDefaultBranch:
    """The default branch moved to `commit` (a merge): apply it."""

    repo: Repository
    commit: str
    pusher: str


@dataclass(frozen=True)
class CommentCommand:
    """Someone wrote `/gitops WORD ARGS...` on a pull/merge request; arguments are data only."""

    repo: Repository
    number: int
    author: str
    command: str
    args: tuple[str, ...] = ()


Event = PullRequestChanged | PushToDefaultBranch | CommentCommand
EVENT_TYPES: dict[str, type[Event]] = {
    t.__name__: t for t in (PullRequestChanged, PushToDefaultBranch, CommentCommand)
}


def parse_github(event_name: str, payload: Mapping[str, Any]) -> Event | None:
    """The event a GitHub delivery stands for, or None when the bot has nothing to do."""
    try:
        if event_name == "pull_request":
            return _pull_request(payload)
        if event_name == "push":
            return _push(payload)
        if event_name == "issue_comment":
            return _comment(payload)
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"{event_name} payload is missing or has a bad field: {exc}") from exc
    return None


def _repository(payload: Mapping[str, Any]) -> Repository:
    repo = payload["repository"]
    installation = payload.get("installation") or {}
    return Repository(
        forge=GITHUB,
        slug=str(repo["full_name"]),
        clone_url=str(repo["clone_url"]),
        default_branch=str(repo["default_branch"]),
        installation=int(installation["id"]) if "id" in installation else None,
    )


def _pull_request(payload: Mapping[str, Any]) -> PullRequestChanged | None:
    if payload.get("action") not in _PR_ACTIONS:
        return None
    pull = payload["pull_request"]
    head_repo = pull["head"].get("repo") or {}  # null when the fork was deleted
    repo = _repository(payload)
    return PullRequestChanged(
        repo=repo,
        number=int(pull["number"]),
        base_sha=_sha(pull["base"]["sha"]),
        head_sha=_sha(pull["head"]["sha"]),
        author=str(pull["user"]["login"]),
        from_fork=head_repo.get("full_name") != repo.slug,
        url=str(pull.get("html_url", "")),
    )


def _push(payload: Mapping[str, Any]) -> PushToDefaultBranch | None:
    repo = _repository(payload)
    if payload["ref"] != f"refs/heads/{repo.default_branch}" or payload.get("deleted"):
        return None
    pusher = payload.get("pusher") or {}
    return PushToDefaultBranch(
        repo, _sha(payload["after"]), str(pusher.get("name") or payload["sender"]["login"])
    )


def _comment(payload: Mapping[str, Any]) -> CommentCommand | None:
    issue, comment = payload["issue"], payload["comment"]
    if payload.get("action") != "created" or "pull_request" not in issue:
        return None
    if comment["user"].get("type") == "Bot":
        return None  # bots, the bot itself included, cannot drive the bot
    words = parse_command(str(comment.get("body") or ""))
    if words is None:
        return None
    return CommentCommand(
        repo=_repository(payload),
        number=int(issue["number"]),
        author=str(comment["user"]["login"]),
        command=words[0],
        args=words[1:],
    )


def parse_gitlab(event_name: str, payload: Mapping[str, Any]) -> Event | None:
    """The event a GitLab delivery (its X-Gitlab-Event name) stands for, or None."""
    try:
        if event_name == "Merge Request Hook":
            return _merge_request(payload)
        if event_name == "Push Hook":
            return _gitlab_push(payload)
        if event_name == "Note Hook":
            return _note(payload)
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"{event_name} payload is missing or has a bad field: {exc}") from exc
    return None


def _gitlab_repository(project: Mapping[str, Any]) -> Repository:
    return Repository(
        forge=GITLAB,
        slug=str(project["path_with_namespace"]),
        clone_url=str(project["git_http_url"]),
        default_branch=str(project["default_branch"]),
    )


def _merge_request(payload: Mapping[str, Any]) -> PullRequestChanged | None:
    """Opened, reopened, or updated WITH new commits (GitLab sets `oldrev` only then: a
    title or label edit is also an "update"). A merge is applied from the Push Hook the
    merge makes on the default branch; acting on both would apply the merge twice."""
    mr = payload["object_attributes"]
    action = mr.get("action")
    if not (action in ("open", "reopen") or (action == "update" and mr.get("oldrev"))):
        return None
    return PullRequestChanged(
        repo=_gitlab_repository(payload["project"]),
        number=int(mr["iid"]),
        base_sha="",  # GitLab's payload has no base commit; diff_refs come from the API
        head_sha=_sha(mr["last_commit"]["id"]),
        author=str(payload["user"]["username"]),
        from_fork=int(mr["source_project_id"]) != int(mr["target_project_id"]),
        url=str(mr.get("url") or ""),
    )


def _gitlab_push(payload: Mapping[str, Any]) -> PushToDefaultBranch | None:
    repo = _gitlab_repository(payload["project"])
    after = str(payload["after"])
    if payload["ref"] != f"refs/heads/{repo.default_branch}" or not after.strip("0"):
        return None  # another branch, or the default branch was deleted
    return PushToDefaultBranch(repo, _sha(after), str(payload["user_username"]))


def _note(payload: Mapping[str, Any]) -> CommentCommand | None:
    note = payload["object_attributes"]
    if note.get("noteable_type") != "MergeRequest" or note.get("system"):
        return None
    if note.get("action", "create") != "create":
        return None  # an edited note does not run its command again
    words = parse_command(str(note.get("note") or ""))
    if words is None:
        return None
    return CommentCommand(
        repo=_gitlab_repository(payload["project"]),
        number=int(payload["merge_request"]["iid"]),
        author=str(payload["user"]["username"]),
        command=words[0],
        args=words[1:],
    )


def parse_command(body: str) -> tuple[str, ...] | None:
    """`/gitops plan staging` -> ("plan", "staging"); words are checked, never run by a shell.

    Only the first line counts, and only when it starts with the prefix. A word that is
    not a plain name becomes "?", so the command is answered with the usage text.
    """
    first = body.strip().split("\n", 1)[0].split()
    if not first or first[0] != COMMAND_PREFIX:
        return None
    words = first[1 : 1 + _MAX_COMMAND_WORDS] or ["help"]
    return tuple(w.lower() if _WORD.match(w) else "?" for w in words)


def _sha(value: Any) -> str:
    text = str(value)
    if not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", text):
        raise ValueError(f"{text!r} is not a commit id")
    return text


def event_to_data(event: Event) -> dict[str, Any]:
    """A JSON-ready form of an event, for the job store."""
    return {"type": type(event).__name__, **dataclasses.asdict(event)}


def event_from_data(data: Mapping[str, Any]) -> Event:
    fields = dict(data)
    kind = EVENT_TYPES[fields.pop("type")]
    fields["repo"] = Repository(**fields["repo"])
    if "args" in fields:
        fields["args"] = tuple(fields["args"])
    return kind(**fields)
