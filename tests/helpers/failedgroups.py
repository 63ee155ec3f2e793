"""A burst of deliveries with one that cannot be stored, whose outcome shows the order
the others were stored in: the jobs' ids give it, and so do their states (each job that
supersedes ends the jobs of its key waiting before it)."""

from __future__ import annotations

from bot.store.ports import Delivery, NewJob

KEY = "plan:github:o/r#1"
_PLAN = NewJob("plan", "{}", KEY)
_NOTIFY = NewJob("notify", "{}", KEY, supersedes=False)
_BROKEN = NewJob(None, "{}", KEY)  # type: ignore[arg-type]  # jobs.kind is NOT NULL

# Arrival order: neither the ids' order nor its reverse, so that neither passes for it.
BURST: list[tuple[Delivery, NewJob]] = [
    (Delivery(delivery_id, "github", "pull_request", "queued"), job)
    for delivery_id, job in [
        ("d-3", _PLAN),
        ("d-1", _NOTIFY),
        ("broken", _BROKEN),
        ("d-4", _PLAN),
        ("d-0", _NOTIFY),
        ("d-2", _NOTIFY),
    ]
]
FAILING = 2  # the position of the delivery that cannot be stored
# (delivery id, job state) in the jobs' id order, when stored in arrival order.
STORED = [
    ("d-3", "superseded"),
    ("d-1", "superseded"),
    ("d-4", "ready"),
    ("d-0", "ready"),
    ("d-2", "ready"),
]
