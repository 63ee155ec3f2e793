"""GitLab webhook payloads -> the bot's frozen events; nothing past here sees GitLab's dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.events import (
    GITLAB,
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
        head_sha=commit_id(mr["last_commit"]["id"]),
        author=str(payload["user"]["username"]),
        from_fork=int(mr["source_project_id"]) != int(mr["target_project_id"]),
        url=str(mr.get("url") or ""),
        replaced_head=commit_id(mr["oldrev"]) if mr.get("oldrev") else "",
    )


def _gitlab_push(payload: Mapping[str, Any]) -> PushToDefaultBranch | None:
    repo = _gitlab_repository(payload["project"])
    after = str(payload["after"])
    if payload["ref"] != f"refs/heads/{repo.default_branch}" or not after.strip("0"):
        return None  # another branch, or the default branch was deleted
    return PushToDefaultBranch(repo, commit_id(after), str(payload["user_username"]))


def _note(payload: Mapping[str, Any]) -> CommentCommand | None:
    note = payload["object_attributes"]
    on_issue = note.get("noteable_type") == "Issue"
    if not (on_issue or note.get("noteable_type") == "MergeRequest") or note.get("system"):
        return None
    if note.get("action", "create") != "create":
        return None  # an edited note does not run its command again
    words = parse_command(str(note.get("note") or ""))
    if words is None or (on_issue and words[0] not in ISSUE_COMMANDS):
        return None
    return CommentCommand(
        repo=_gitlab_repository(payload["project"]),
        number=int(payload["issue" if on_issue else "merge_request"]["iid"]),
        author=str(payload["user"]["username"]),
        command=words[0],
        args=words[1:],
        on_issue=on_issue,
    )


_PARSERS: dict[str, Parser] = {
    "Merge Request Hook": _merge_request,
    "Push Hook": _gitlab_push,
    "Note Hook": _note,
}


def parse_gitlab(event_name: str, payload: Mapping[str, Any]) -> Event | None:
    """The event a GitLab delivery (its X-Gitlab-Event name) stands for, or None."""
    return parse_payload(_PARSERS, event_name, payload)
