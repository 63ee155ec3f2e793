"""The durable store behind small ports: deliveries, jobs, apply locks, audit ledger.

Every backend keeps the same semantics (the SQLite one is the reference;
tests/test_store.py pins them down and runs against each backend):

- A delivery is recorded at most once, together with its job, in one transaction.
- A job is claimed under a lease; an expired lease makes it claimable again. Jobs that
  share a coalescing key run one at a time, oldest first. A new job that `supersedes`
  marks the key's jobs still waiting as superseded, so only the newest state (a PR's
  newest head) is worked on; one that does not (a merge: every merge must be applied or
  recorded as superseded in the ledger) just waits its turn.
- A failed job is retried at the time the caller gives, or dead-lettered when it gives
  none; a dead job stays until an operator re-queues it.
- A running job's holder may renew its lease; a job taken over cannot be renewed.
- An environment lock has one holder until it expires or is released.
- The last applied commit of an environment only moves forward (by job position).
- A merge commit is claimed for one claimant per environment: the first claim holds,
  every later one (another delivery of the same merge) learns who holds it.
- "Now" (leases, lock expiry, retry times, ledger times) is the store's time: the local
  clock for SQLite, which one host serves; the database server's for PostgreSQL, so a
  replica whose clock is off can neither take over a live lease nor keep a dead one.
- The audit ledger is one hash chain (bot.core.ledgerchain), each record sealed with the
  ledger key and stamped with the time the store wrote it: appends are serialized, so
  replicas writing at once still build one unbroken chain; an append with a key that
  is already in the ledger returns the record written first (a job re-run after a
  crash does not record its apply twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # named in signatures only; every command imports this module at start
    from bot.core.audit import AuditEntry, AuditRecord
    from bot.core.ledgerchain import LedgerKey, LedgerRow


class StoreError(RuntimeError):
    """The store could not do what was asked (unreachable, corrupt, wrong schema)."""


class UnreadableRecord(StoreError):
    """An audit ledger record that cannot be read back: edited outside the bot."""

    def __init__(self, sequence: int, message: str) -> None:
        super().__init__(message)
        self.sequence = sequence


class JobState(StrEnum):
    READY = "ready"  # waiting, maybe until a retry time
    RUNNING = "running"  # claimed under a lease
    DONE = "done"
    SUPERSEDED = "superseded"  # a newer job for the same key made it pointless
    DEAD = "dead"  # failed too often; waits for an operator


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery, as the forge identified it."""

    id: str
    forge: str
    event: str
    outcome: str  # "queued" or why it was ignored


@dataclass(frozen=True)
class NewJob:
    kind: str
    payload: str  # JSON text
    coalesce_key: str | None = None
    supersedes: bool = True  # with a key: whether it makes the key's waiting jobs pointless


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: str
    coalesce_key: str | None
    attempts: int  # including the current one
    holder: str
    state: JobState = JobState.RUNNING
    last_error: str | None = None


@dataclass(frozen=True)
class AppliedCommit:
    environment: str
    commit: str
    position: int
    applied_at: float


@dataclass(frozen=True)
class HeldLock:
    """An environment's apply lock, while it is held."""

    environment: str
    holder: str
    expires_at: float


@dataclass(frozen=True)
class DriftCheckRecord:
    """The last drift check of one environment (its store key), as the status page shows it."""

    environment: str
    state: str  # a bot.core.drifts.DriftState text
    drifted_objects: int
    checked_at: float
    failure: str | None = None


class Connection(Protocol):
    """Opening and closing the store, and whether it answers."""

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreError when the store cannot serve requests."""


class StoreClock(Protocol):
    """The time every stored moment is measured in (see the module's docstring)."""

    async def now(self) -> float:
        """Seconds since the epoch, as the store counts them."""


class Intake(Protocol):
    """Webhook deliveries, stored with the job they ask for in one step."""

    async def record_delivery(self, delivery: Delivery, job: NewJob | None) -> bool:
        """Durably store a delivery and its job; False (and nothing stored) for a duplicate."""


class JobQueue(Protocol):
    """Jobs: queued, leased to one worker, retried, dead-lettered."""

    async def add_job(self, job: NewJob) -> int:
        """Queue a job (superseding waiting jobs with its key); returns its id."""

    async def claim_job(self, holder: str, lease_seconds: float) -> Job | None:
        """The oldest runnable job, now leased to `holder`, or None."""

    async def renew_lease(self, job: Job, lease_seconds: float) -> bool:
        """Extend the lease of a job its holder still runs; False when it was taken over."""

    async def complete_job(self, job: Job, state: JobState = JobState.DONE) -> None: ...

    async def fail_job(self, job: Job, error: str, retry_at: float | None) -> JobState:
        """Record a failure: READY again at `retry_at`, or DEAD when it is None."""

    async def is_superseded(self, job: Job) -> bool:
        """True when a newer job with the same coalescing key exists."""

    async def requeue(self, job_id: int) -> bool:
        """Make a dead job runnable again with a fresh attempt count."""

    async def job_counts(self) -> dict[JobState, int]: ...

    async def job(self, job_id: int) -> Job | None: ...

    async def dead_jobs(self) -> list[Job]:
        """The dead-letter list, oldest first."""


class EnvironmentLocks(Protocol):
    """Per environment: the apply lock, and the commit it runs (which only moves forward)."""

    async def lock_environment(self, environment: str, holder: str, seconds: float) -> bool:
        """Take (or renew) the apply lock; False when someone else holds it."""

    async def unlock_environment(self, environment: str, holder: str) -> None: ...

    async def last_applied(self, environment: str) -> AppliedCommit | None: ...

    async def record_applied(self, environment: str, commit: str, position: int) -> bool:
        """Move the environment to `commit`; False when a later position is recorded."""

    async def claim_merge(self, environment: str, commit: str, claimant: str) -> str:
        """Claim the one apply of merge `commit` to the environment for `claimant`; the
        claimant holding it: `claimant`, or whoever claimed it first."""


class AuditLedger(Protocol):
    """The append-only, hash-chained audit ledger."""

    async def add_audit(
        self, entry: AuditEntry, key: str | None = None, sealing: LedgerKey | None = None
    ) -> AuditRecord:
        """Chain `entry` onto the ledger, sealed with `sealing` (unkeyed without one, which
        `audit --verify` never trusts); a `key` already in it returns that first record."""

    async def audit_records(
        self, environment: str | None = None, since: float | None = None
    ) -> list[AuditRecord]:
        """The ledger in chain order, or the records of one environment recorded since."""

    async def audit_rows(self) -> list[LedgerRow]:
        """Every ledger row as stored, in sequence order, unparsed: what verification reads."""


class DriftRecords(Protocol):
    """The outcome of each environment's last drift check, kept for the status page."""

    async def record_drift_check(self, check: DriftCheckRecord) -> None:
        """Replace the environment's last check with this one."""


class StatusReads(Protocol):
    """Bounded reads for the status page: none returns more than `limit` rows, however
    long the ledger or the job table has grown."""

    async def applied_commits(self, limit: int) -> list[AppliedCommit]:
        """The commit each environment runs, most recently applied first."""

    async def held_locks(self, limit: int) -> list[HeldLock]:
        """The apply locks held now (not expired)."""

    async def drift_checks(self, limit: int) -> list[DriftCheckRecord]:
        """Each environment's last drift check, most recent first."""

    async def recent_audit_records(self, limit: int) -> list[AuditRecord]:
        """The newest ledger records, newest first."""

    async def audit_records_of(
        self, environment: str, commit: str, limit: int
    ) -> list[AuditRecord]:
        """The newest records of one environment name at one commit, newest first."""

    async def audit_rows_after(self, sequence: int, limit: int) -> list[LedgerRow]:
        """The rows that follow `sequence` in chain order, as stored: the ledger checked
        page by page."""

    async def recent_dead_jobs(self, limit: int) -> list[Job]:
        """The dead-letter list, newest first."""


class ApplyRecords(StoreClock, EnvironmentLocks, AuditLedger, Protocol):
    """What an audited apply writes: the lock, the applied commit, the ledger record."""


class Store(
    Connection,
    StoreClock,
    Intake,
    JobQueue,
    EnvironmentLocks,
    AuditLedger,
    DriftRecords,
    StatusReads,
    Protocol,
):
    """The whole store, as a backend implements it (SQLite, PostgreSQL). Code that uses
    one part asks for that port only."""
