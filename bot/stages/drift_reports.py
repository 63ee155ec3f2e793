"""Where a drift check's result goes: metrics per environment, the store (for the status
page) and one tracking issue."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.driftreports import drift_resolved, render_drift
from bot.core.drifts import DriftState, EnvironmentDrift, issue_title, tracking_key
from bot.events import Repository
from bot.forges.ports import Forge
from bot.store.ports import DriftCheckRecord, DriftRecords
from bot.telemetry.metrics import Metrics


def record_metrics(metrics: Metrics, repo: Repository, drift: EnvironmentDrift, now: float) -> None:
    """A check that could not compare everything is an alert (drift_check_failed 1), and
    leaves the last count of drifted objects as it was rather than reporting zero."""
    labels = (f"{repo.forge}:{repo.slug}", drift.environment)
    complete = drift.failure is None and not drift.unknown
    metrics.drift_last_check.labels(*labels).set(now)
    metrics.drift_check_failed.labels(*labels).set(0 if complete else 1)
    if drift.failure is None:
        metrics.drift_objects.labels(*labels).set(len(drift.objects))
    if complete:
        metrics.drift_last_success.labels(*labels).set(now)


async def record_in_store(
    store: DriftRecords, key: str, drift: EnvironmentDrift, now: float
) -> None:
    """Keep the check's outcome under the environment's store key, for the status page."""
    failure = drift.failure
    if failure is None and drift.unknown:
        failure = f"{len(drift.unknown)} objects could not be compared"
    check = DriftCheckRecord(key, str(drift.state), len(drift.objects), now, failure)
    await store.record_drift_check(check)


@dataclass(frozen=True)
class DriftReport:
    """What the report did: the tracking issue it opened or edited, or that it closed one."""

    issue_url: str | None = None
    resolved: bool = False


async def report_to_forge(forge: Forge, repo: Repository, drift: EnvironmentDrift) -> DriftReport:
    """Open or edit the environment's tracking issue; close it once the cluster matches."""
    key = tracking_key(drift.environment)
    if drift.state is DriftState.IN_SYNC:
        closed = await forge.close_tracking_issue(repo, key, drift_resolved(drift))
        return DriftReport(resolved=closed)
    parts = render_drift(drift, forge.comment_limit, key)
    return DriftReport(await forge.upsert_tracking_issue(repo, key, issue_title(drift), parts))
