"""Outgoing notifications as data: what happened, and the bodies Slack and a JSON webhook get."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from bot.core.applies import ApplyResult, Outcome
from bot.core.controls import plain
from bot.core.drifts import EnvironmentDrift

MAX_CHANGES = 20  # lines of "what changed" a message lists; the rest is counted
MAX_LINE = 300  # characters of one line (an error, an object name)


class NotificationEvent(StrEnum):
    APPLY_SUCCEEDED = "apply-succeeded"
    APPLY_FAILED = "apply-failed"
    APPLY_SUPERSEDED = "apply-superseded"
    DRIFT_FOUND = "drift-found"
    DRIFT_RESOLVED = "drift-resolved"
    JOB_DEAD_LETTERED = "job-dead-lettered"


@dataclass(frozen=True)
class Notification:
    """One thing that happened, with what changed, the PR, the commit and where to read more."""

    event: NotificationEvent
    repository: str  # forge:owner/name
    summary: str  # one line
    environment: str | None = None
    commit: str | None = None
    pull_request: int | None = None
    pull_request_url: str | None = None
    link: str | None = None  # the PR, the drift issue: where a person goes next
    changes: tuple[str, ...] = ()

    def to_data(self) -> dict[str, Any]:
        return {**asdict(self), "changes": list(self.changes)}


def notification_from_data(data: Mapping[str, Any]) -> Notification:
    """The stored form back; ValueError or KeyError when it is not one."""
    values = dict(data)
    values["event"] = NotificationEvent(values["event"])
    values["changes"] = tuple(str(line) for line in values.get("changes", ()))
    return Notification(**values)


@dataclass(frozen=True)
class PullRequestRef:
    """The pull request behind a commit, when there is one."""

    number: int
    url: str


def applied(result: ApplyResult, repository: str, pull: PullRequestRef | None) -> Notification:
    """An environment's apply of a merge: what it did to each object, or why it failed."""
    event = (
        NotificationEvent.APPLY_SUCCEEDED if result.succeeded else NotificationEvent.APPLY_FAILED
    )
    mode = "dry apply" if result.dry_run else "apply"
    if result.succeeded:
        summary = f"{mode} of {result.commit[:12]} to {result.environment} succeeded"
    else:
        summary = f"{mode} of {result.commit[:12]} to {result.environment} failed"
        summary += f": {result.failure}" if result.failure else ""
    changes = [
        f"{o.key}: {o.action} ({o.outcome})" + (f": {o.message}" if o.message else "")
        for o in result.objects
        if o.outcome is not Outcome.UNCHANGED
    ]
    return _about(event, repository, summary, result.environment, result.commit, pull, changes)


def superseded(
    environment: str, commit: str, repository: str, pull: PullRequestRef | None
) -> Notification:
    summary = f"{commit[:12]} was not applied to {environment}: a newer commit already runs there"
    return _about(
        NotificationEvent.APPLY_SUPERSEDED, repository, summary, environment, commit, pull
    )


def drift_found(drift: EnvironmentDrift, repository: str, issue_url: str) -> Notification:
    """The drifted objects and fields; the link is the environment's tracking issue."""
    summary = (
        f"{len(drift.objects)} object(s) in {drift.environment} differ from {drift.commit[:12]}"
    )
    changes = [
        f"{item.change.key}: " + (", ".join(item.fields) or str(item.change.action))
        for item in drift.objects
    ]
    found = _about(
        NotificationEvent.DRIFT_FOUND,
        repository,
        summary,
        drift.environment,
        drift.commit,
        None,
        changes,
    )
    return replace(found, link=issue_url or None)


def drift_key(drift: EnvironmentDrift) -> str:
    """What identifies a drift: the commit, and each drifted object with its fields and
    diff (secret values already masked). A check that finds the same drift again is not
    news; a field changed by hand once more is."""
    objects = sorted(
        f"{item.change.key}:{','.join(item.fields)}:{item.change.diff}" for item in drift.objects
    )
    lines = [drift.commit, *objects]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def drift_resolved(environment: str, commit: str, repository: str) -> Notification:
    summary = f"{environment} matches {commit[:12]} again"
    return _about(NotificationEvent.DRIFT_RESOLVED, repository, summary, environment, commit, None)


@dataclass(frozen=True)
class DeadJob:
    """A job that failed too often, and what it was about (as far as its payload says)."""

    id: int
    kind: str
    attempts: int
    error: str
    repository: str = ""
    commit: str | None = None
    pull: PullRequestRef | None = None


def dead_lettered(job: DeadJob) -> Notification:
    summary = (
        f"{job.kind} job {job.id} failed {job.attempts} times and stopped; "
        f"run `gitops-bot retry {job.id}` once the cause is fixed"
    )
    return _about(
        NotificationEvent.JOB_DEAD_LETTERED,
        job.repository,
        summary,
        None,
        job.commit,
        job.pull,
        [f"last error: {job.error}"],
    )


def _about(
    event: NotificationEvent,
    repository: str,
    summary: str,
    environment: str | None,
    commit: str | None,
    pull: PullRequestRef | None,
    changes: list[str] | None = None,
) -> Notification:
    lines = [_line(text) for text in (changes or [])]
    if len(lines) > MAX_CHANGES:
        lines = [*lines[:MAX_CHANGES], f"and {len(lines) - MAX_CHANGES} more"]
    return Notification(
        event,
        repository,
        _line(summary),
        environment,
        commit,
        pull.number if pull else None,
        pull.url if pull else None,
        pull.url if pull else None,
        tuple(lines),
    )


def _line(text: str) -> str:
    """One line, controls made visible, bounded: text from repositories and clusters."""
    line = plain(text)
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


# --- what a receiver gets ------------------------------------------------------------------


def webhook_body(notification: Notification, delivery: str) -> dict[str, Any]:
    """The generic webhook's JSON: the notification, and its delivery id (stable across
    retries, so a receiver can drop a repeat)."""
    return {"delivery": delivery, **notification.to_data()}


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over `{timestamp}.` and the raw body: a receiver that checks the
    timestamp's age also refuses a replayed delivery."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


_TITLES = {
    NotificationEvent.APPLY_SUCCEEDED: "✅ Applied",
    NotificationEvent.APPLY_FAILED: "❌ Apply failed",
    NotificationEvent.APPLY_SUPERSEDED: "⏭️ Apply superseded",
    NotificationEvent.DRIFT_FOUND: "⚠️ Drift found",
    NotificationEvent.DRIFT_RESOLVED: "✅ Drift resolved",
    NotificationEvent.JOB_DEAD_LETTERED: "🛑 Job dead-lettered",
}


def slack_message(notification: Notification) -> dict[str, Any]:
    """Slack's message JSON: `text` (the notification fallback) and Block Kit `blocks`."""
    title = f"{_TITLES[notification.event]}: {slack_escape(notification.repository)}"
    text = f"{title}: {slack_escape(notification.summary)}"
    blocks: list[dict[str, Any]] = [_section(f"*{title}*\n{slack_escape(notification.summary)}")]
    if notification.changes:
        listed = "\n".join(f"• {slack_escape(line)}" for line in notification.changes)
        blocks.append(_section(listed[:2900]))  # a section's text holds 3,000 characters
    context = _slack_context(notification)
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": text, "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _slack_context(notification: Notification) -> str:
    parts = []
    if notification.environment:
        parts.append(f"environment `{slack_escape(notification.environment)}`")
    if notification.commit:
        parts.append(f"commit `{notification.commit[:12]}`")
    if notification.pull_request is not None:
        parts.append(_slack_link(notification.pull_request_url, f"PR #{notification.pull_request}"))
    if notification.link and notification.link != notification.pull_request_url:
        parts.append(_slack_link(notification.link, "details"))
    return " · ".join(parts)


def _slack_link(url: str | None, label: str) -> str:
    if not url or not url.startswith(("https://", "http://")) or "|" in url or ">" in url:
        return label
    return f"<{slack_escape(url)}|{label}>"


def slack_escape(text: str) -> str:
    """Slack's three control characters as entities: no link, mention or channel alert
    can come out of text from a repository."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
