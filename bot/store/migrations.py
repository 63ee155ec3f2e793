"""The schema, as numbered migrations: applied in order, each exactly once, never edited.

The SQL is kept portable between SQLite and PostgreSQL; the one dialect difference is
the self-numbering key, written here as `{serial}` and filled in per backend
(SQLite: INTEGER PRIMARY KEY; PostgreSQL: BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY).

The audit ledger is a hash chain of bot.core.audit entries: `entry` is the entry's
canonical JSON; environment and commit are copied out for queries and are part of what
`audit --verify` checks, as are `recorded_at` and `key_id` (the ledger key that sealed the
record; NULL for records written before the ledger was keyed, see bot.core.ledgerchain).

`merge_claims` holds, per environment and merge commit, the one job that applies it: a
second delivery of the same merge finds the claim under the environment's lock and stops.
"""

from __future__ import annotations

from bot.store.ports import StoreError

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "deliveries, jobs, apply locks, applied commits, the audit ledger",
        """
        CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            forge TEXT NOT NULL,
            event TEXT NOT NULL,
            outcome TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE jobs (
            id {serial},
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            coalesce_key TEXT,
            supersedes BOOLEAN NOT NULL DEFAULT TRUE,
            delivery_id TEXT REFERENCES deliveries (id),
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            run_after DOUBLE PRECISION NOT NULL,
            holder TEXT,
            lease_until DOUBLE PRECISION,
            last_error TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            finished_at DOUBLE PRECISION
        );
        CREATE INDEX jobs_by_state ON jobs (state, run_after);
        CREATE INDEX jobs_by_key ON jobs (coalesce_key, state);
        CREATE TABLE environment_locks (
            environment TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE applied_commits (
            environment TEXT PRIMARY KEY,
            commit_sha TEXT NOT NULL,
            position BIGINT NOT NULL,
            applied_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE audit_ledger (
            sequence BIGINT PRIMARY KEY,
            environment TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            entry TEXT NOT NULL,
            previous_hash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            idempotency_key TEXT UNIQUE,
            recorded_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX audit_ledger_by_environment ON audit_ledger (environment, sequence);
        CREATE INDEX audit_ledger_by_time ON audit_ledger (recorded_at);
        """,
    ),
    (
        2,
        "the last drift check of each environment; ledger lookups by commit",
        """
        CREATE TABLE drift_checks (
            environment TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            drifted_objects INTEGER NOT NULL,
            failure TEXT,
            checked_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX drift_checks_by_time ON drift_checks (checked_at);
        CREATE INDEX audit_ledger_by_commit ON audit_ledger (environment, commit_sha, sequence);
        CREATE INDEX applied_commits_by_time ON applied_commits (applied_at);
        """,
    ),
    (
        3,
        "one apply of a merge commit per environment",
        """
        CREATE TABLE merge_claims (
            environment TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            claimant TEXT NOT NULL,
            claimed_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (environment, commit_sha)
        );
        """,
    ),
    (
        4,
        "audit ledger records name the key that sealed them",
        """
        ALTER TABLE audit_ledger ADD COLUMN key_id TEXT
        """,
    ),
)

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)
"""


def statements(sql: str, serial: str) -> list[str]:
    """The single statements of a migration, with the backend's serial key filled in."""
    return [s.strip() for s in sql.replace("{serial}", serial).split(";") if s.strip()]


def refuse_unknown(done: set[int]) -> None:
    """Stop before touching a database a newer bot has migrated further than this one knows."""
    unknown = done - {version for version, _, _ in MIGRATIONS}
    if unknown:
        raise StoreError(
            f"the database has schema versions {sorted(unknown)} that this bot does not "
            "know; it was written by a newer gitops-bot, run that version"
        )
