"""Notifications as jobs: queued durably where something happens, delivered one per target.

A notification is a job of its own, one per target, recorded with a delivery id made from
what it is about: it survives a restart, a receiver that is down is retried with the
queue's backoff (and dead-lettered after GITOPS_BOT_JOB_MAX_ATTEMPTS) without holding up
the job that queued it, and the job that queued it can run again (after a crash) without
notifying twice. The target's URL and key are read from the settings at each attempt and
never stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.config.notifications import NotificationTarget, TargetKind
from bot.core.applies import ApplyResult
from bot.core.drifts import DriftState, EnvironmentDrift
from bot.core.notifications import (
    DeadJob,
    Notification,
    PullRequestRef,
    applied,
    dead_lettered,
    drift_found,
    drift_key,
    drift_resolved,
    notification_from_data,
    signature,
    slack_message,
    superseded,
    webhook_body,
)
from bot.events import CommentCommand, PullRequestChanged, PushToDefaultBranch, Repository
from bot.forges.ports import PullRequest
from bot.stages.drift_reports import DriftReport
from bot.store.ports import Delivery, Job, NewJob, StoreError
from bot.workflows.context import Failure, Services

log = logging.getLogger(__name__)
NOTIFY_KIND = "notify"
HEADER = "X-Gitops-Bot-"  # the generic webhook's headers: Event, Delivery, Timestamp, Signature


@dataclass(frozen=True)
class Outgoing:
    """One notification for one target, and the id its deliveries carry."""

    target: str
    delivery: str
    notification: Notification

    def payload(self) -> str:
        data = {"target": self.target, "delivery": self.delivery}
        return json.dumps({**data, "notification": self.notification.to_data()}, sort_keys=True)


class NotifyOutcome(StrEnum):
    SENT = "sent"  # the receiver answered 2xx
    DROPPED = "dropped"  # the target is no longer configured, or no longer wants the event


async def queue_notifications(services: Services, notification: Notification, about: str) -> None:
    """One job per target that wants the event. `about` names the occasion: the same
    occasion queued again (a job re-run) is stored once. Failing to queue is logged, not
    raised: the work that happened stays done, and redoing it would not be better."""
    for target in services.settings.notifications:
        if not target.wants(notification.event):
            continue
        outgoing = Outgoing(target.name, f"notify:{target.name}:{about}", notification)
        delivery = Delivery(outgoing.delivery, NOTIFY_KIND, str(notification.event), "queued")
        try:
            await services.store.record_delivery(delivery, NewJob(NOTIFY_KIND, outgoing.payload()))
        except StoreError as exc:
            log.warning("notification %s could not be queued: %s", outgoing.delivery, exc)


# --- where things happen -----------------------------------------------------------------


def _repository(repo: Repository) -> str:
    return f"{repo.forge}:{repo.slug}"


async def notify_applied(
    services: Services,
    job: Job,
    event: PushToDefaultBranch,
    pull: PullRequest | None,
    environment: str,
    result: ApplyResult | None,
) -> None:
    """An environment's apply of a merge (None: superseded by a newer commit)."""
    ref = PullRequestRef(pull.number, pull.url) if pull is not None else None
    repository = _repository(event.repo)
    if result is None:
        notification = superseded(environment, event.commit, repository, ref)
    else:
        notification = applied(result, repository, ref)
    await queue_notifications(services, notification, f"apply:{job.id}:{environment}")


async def notify_drift(
    services: Services, job: Job, repo: Repository, drift: EnvironmentDrift, report: DriftReport
) -> None:
    """Drift found (again only when it changed, or in a new tracking issue) and resolved."""
    repository = _repository(repo)
    if report.resolved:
        resolved = drift_resolved(drift.environment, drift.commit, repository)
        await queue_notifications(services, resolved, f"resolved:{job.id}:{drift.environment}")
    elif drift.state is DriftState.DRIFTED and report.issue_url:
        found = drift_found(drift, repository, report.issue_url)
        await queue_notifications(services, found, f"drift:{report.issue_url}:{drift_key(drift)}")


async def notify_dead_letter(services: Services, job: Job, error: str, work: object) -> None:
    """A job that failed too often; a notification job's own death is only logged (it
    would notify about itself)."""
    if job.kind == NOTIFY_KIND:
        return
    repo = getattr(work, "repo", None)  # every workflow's work names its repository
    commit, pull = _commit_and_pull(work)
    dead = DeadJob(
        job.id,
        job.kind,
        job.attempts,
        error,
        repository=_repository(repo) if isinstance(repo, Repository) else "",
        commit=commit,
        pull=pull,
    )
    when = int(services.clock())
    await queue_notifications(services, dead_lettered(dead), f"dead:{job.id}:{when}")


def _commit_and_pull(work: object) -> tuple[str | None, PullRequestRef | None]:
    """What a failed job was about: the merge it applied, the pull request it planned."""
    if isinstance(work, PushToDefaultBranch):
        return work.commit, None
    if isinstance(work, PullRequestChanged):
        return work.head_sha, PullRequestRef(work.number, work.url)
    if isinstance(work, CommentCommand):
        return None, PullRequestRef(work.number, "")
    return None, None


# --- delivering --------------------------------------------------------------------------


def request_for(
    target: NotificationTarget, outgoing: Outgoing, now: int
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt; a fresh timestamp and signature each time."""
    if target.kind is TargetKind.SLACK:
        return json.dumps(slack_message(outgoing.notification)).encode(), {}
    body = json.dumps(webhook_body(outgoing.notification, outgoing.delivery)).encode()
    if target.secret is None:  # the settings file refuses it; settings made in code may not
        raise ValueError(f"notification target {target.name} has no secret to sign with")
    return body, {
        HEADER + "Event": str(outgoing.notification.event),
        HEADER + "Delivery": outgoing.delivery,
        HEADER + "Timestamp": str(now),
        HEADER + "Signature": signature(target.secret.reveal().encode(), now, body),
    }


async def deliver(services: Services, outgoing: Outgoing) -> NotifyOutcome:
    target = next((t for t in services.settings.notifications if t.name == outgoing.target), None)
    if target is None or not target.wants(outgoing.notification.event):
        log.info(
            "notification %s dropped: its target is no longer configured for it", outgoing.delivery
        )
        return NotifyOutcome.DROPPED
    if services.notifier is None:
        raise RuntimeError("this process has no notifier: the server sends notifications")
    body, headers = request_for(target, outgoing, int(services.clock()))
    await services.notifier.post(target.url.reveal(), body, headers)
    return NotifyOutcome.SENT


class Notify:
    """Deliver one notification to one target; a failed attempt is retried by the queue."""

    kind = NOTIFY_KIND

    def decode(self, data: Mapping[str, Any]) -> Outgoing:
        notification = notification_from_data(data["notification"])
        return Outgoing(str(data["target"]), str(data["delivery"]), notification)

    def log_context(self, work: Outgoing) -> dict[str, Any]:
        return {"target": work.target, "notification": str(work.notification.event)}

    async def run(self, services: Services, work: Outgoing, job: Job) -> NotifyOutcome:
        return await deliver(services, work)

    async def report_failure(self, services: Services, work: Outgoing, failure: Failure) -> None:
        if failure.final:  # the dead-letter list and its metric carry it from here
            log.warning(
                "notification %s to %s given up: %s", work.delivery, work.target, failure.error
            )


WORKFLOW = Notify()
