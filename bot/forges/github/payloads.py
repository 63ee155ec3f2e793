"""GitHub webhook payloads -> the bot's frozen events; nothing past here sees GitHub's dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.events import (
    GITHUB,
    ISSUE_COMMANDS,
    CommentCommand,
    Event,
    Parser,
    PullRequestChanged,
    PushToDefaultBranch,
    Repository,
    commit_id,
    parse_command,
    parse_payload,
)

_PR_ACTIONS = frozenset({"opened", "synchronize", "reopened", "ready_for_review"})


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
        base_sha=commit_id(pull["base"]["sha"]),
        head_sha=commit_id(pull["head"]["sha"]),
        author=str(pull["user"]["login"]),
        from_fork=head_repo.get("full_name") != repo.slug,
        url=str(pull.get("html_url", "")),
        replaced_head=commit_id(payload["before"]) if payload.get("before") else "",
    )


def _push(payload: Mapping[str, Any]) -> PushToDefaultBranch | None:
    repo = _repository(payload)
    if payload["ref"] != f"refs/heads/{repo.default_branch}" or payload.get("deleted"):
        return None
    pusher = payload.get("pusher") or {}
    return PushToDefaultBranch(
        repo, commit_id(payload["after"]), str(pusher.get("name") or payload["sender"]["login"])
    )


def _comment(payload: Mapping[str, Any]) -> CommentCommand | None:
    issue, comment = payload["issue"], payload["comment"]
    if payload.get("action") != "created":
        return None
    if comment["user"].get("type") == "Bot":
        return None  # bots, the bot itself included, cannot drive the bot
    words = parse_command(str(comment.get("body") or ""))
    on_issue = "pull_request" not in issue
    if words is None or (on_issue and words[0] not in ISSUE_COMMANDS):
        return None
    return CommentCommand(
        repo=_repository(payload),
        number=int(issue["number"]),
        author=str(comment["user"]["login"]),
        command=words[0],
        args=words[1:],
        on_issue=on_issue,
    )


_PARSERS: dict[str, Parser] = {
    "pull_request": _pull_request,
    "push": _push,
    "issue_comment": _comment,
}


def parse_github(event_name: str, payload: Mapping[str, Any]) -> Event | None:
    """The event a GitHub delivery stands for, or None when the bot has nothing to do."""
    return parse_payload(_PARSERS, event_name, payload)
