"""Prometheus metrics, on a registry per app so tests and replicas never share counters."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # No more label sets than the counter itself keeps (unverified deliveries count as "-").
    _deliveries: dict[tuple[str, str, str], Counter] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        r = self.registry
        self.deliveries = Counter(
            "gitops_bot_webhook_deliveries",
            "Webhook deliveries by forge, event and outcome",
            ["forge", "event", "outcome"],
            registry=r,
        )
        self.job_seconds = Histogram(
            "gitops_bot_job_duration_seconds",
            "Time a job took, by kind and result",
            ["kind", "result"],
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.jobs = Gauge("gitops_bot_jobs", "Jobs in the store by state", ["state"], registry=r)
        self.dead_letter_jobs = Gauge(
            "gitops_bot_dead_letter_jobs",
            "Jobs that failed too often and wait for an operator (gitops-bot jobs --dead)",
            registry=r,
        )
        self.api_calls = Counter(
            "gitops_bot_github_api_calls",
            "GitHub API calls by method and response status",
            ["method", "status"],
            registry=r,
        )
        self.rate_limit_remaining = Gauge(
            "gitops_bot_github_rate_limit_remaining",
            "Requests left in the current GitHub rate-limit window, per installation",
            ["installation"],
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "gitops_bot_github_rate_limit_waits",
            "Times the bot waited because GitHub asked it to, by reason",
            ["reason"],
            registry=r,
        )
        self.plans = Counter("gitops_bot_plans", "Plans posted, by result", ["result"], registry=r)
        self.applies = Counter(
            "gitops_bot_applies", "Environment applies, by result", ["result"], registry=r
        )
        self._drift_metrics(r)

    def _drift_metrics(self, r: CollectorRegistry) -> None:
        """Per watched environment (workflows/check_drift); alert on drift_check_failed == 1."""
        where = ["repository", "environment"]
        self.drift_objects = Gauge(
            "gitops_bot_drift_objects",
            "Objects that differ from the default branch at the last check that could compare",
            where,
            registry=r,
        )
        self.drift_last_check = Gauge(
            "gitops_bot_drift_last_check_timestamp_seconds",
            "When the environment was last checked for drift, whatever the outcome",
            where,
            registry=r,
        )
        self.drift_last_success = Gauge(
            "gitops_bot_drift_last_success_timestamp_seconds",
            "When a drift check last compared every object of the environment",
            where,
            registry=r,
        )
        self.drift_check_failed = Gauge(
            "gitops_bot_drift_check_failed",
            "1 when the last drift check could not compare (cluster unreachable, ...), else 0",
            where,
            registry=r,
        )
        self.self_heals = Counter(
            "gitops_bot_self_heals",
            "Self-heal applies after drift, by result",
            ["result"],
            registry=r,
        )

    def count_delivery(self, forge: str, event: str, outcome: str) -> None:
        """One more webhook delivery. Each label set's counter is kept here once made:
        `labels()` takes a lock and builds its key on every call, on every delivery."""
        labels = (forge, event, outcome)
        counter = self._deliveries.get(labels)
        if counter is None:
            counter = self._deliveries[labels] = self.deliveries.labels(*labels)
        counter.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
