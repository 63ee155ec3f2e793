"""The SQL both backends run alike, written once with SQLite's placeholders (`postgres`
gives psycopg's). What differs, such as how a job is picked or the ledger serialised,
stays with its backend."""

from __future__ import annotations

from functools import cache

from bot.store.ledger import COLUMNS

PING = "SELECT 1"
INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, forge, event, outcome, received_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"
)
CLAIM_JOB = (
    "UPDATE jobs SET state = 'running', attempts = attempts + 1, holder = ?, lease_until = ? "
    "WHERE id = ?"
)
RENEW_LEASE = "UPDATE jobs SET lease_until = ? WHERE id = ? AND holder = ? AND state = 'running'"
COMPLETE_JOB = (
    "UPDATE jobs SET state = ?, finished_at = ?, lease_until = NULL WHERE id = ? AND holder = "
    "? AND state = 'running'"
)
FAIL_JOB = (
    "UPDATE jobs SET state = ?, run_after = COALESCE(?, run_after), last_error = ?, "
    "finished_at = ?, lease_until = NULL WHERE id = ? AND holder = ? AND state = 'running'"
)
IS_SUPERSEDED = "SELECT 1 FROM jobs WHERE coalesce_key = ? AND id > ? AND supersedes LIMIT 1"
REQUEUE_DEAD_JOB = (
    "UPDATE jobs SET state = 'ready', attempts = 0, run_after = ?, finished_at = NULL WHERE "
    "id = ? AND state = 'dead'"
)
JOB_COUNTS = "SELECT state, COUNT(*) FROM jobs GROUP BY state"
TAKE_LOCK = (
    "INSERT INTO environment_locks (environment, holder, expires_at) VALUES (?, ?, ?) ON "
    "CONFLICT (environment) DO UPDATE SET holder = excluded.holder, expires_at = "
    "excluded.expires_at WHERE environment_locks.holder = excluded.holder OR "
    "environment_locks.expires_at < ?"
)
RELEASE_LOCK = "DELETE FROM environment_locks WHERE environment = ? AND holder = ?"
LAST_APPLIED = (
    "SELECT environment, commit_sha, position, applied_at FROM applied_commits WHERE "
    "environment = ?"
)
RECORD_APPLIED = (
    "INSERT INTO applied_commits (environment, commit_sha, position, applied_at) VALUES (?, "
    "?, ?, ?) ON CONFLICT (environment) DO UPDATE SET commit_sha = excluded.commit_sha, "
    "position = excluded.position, applied_at = excluded.applied_at WHERE "
    "applied_commits.position <= excluded.position"
)
CLAIM_MERGE = (
    "INSERT INTO merge_claims (environment, commit_sha, claimant, claimed_at) VALUES (?, ?, ?, "
    "?) ON CONFLICT (environment, commit_sha) DO NOTHING"
)
MERGE_CLAIMANT = "SELECT claimant FROM merge_claims WHERE environment = ? AND commit_sha = ?"
INSERT_AUDIT = (
    "INSERT INTO audit_ledger (sequence, environment, commit_sha, entry, previous_hash, hash, "
    "idempotency_key, recorded_at, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SCHEMA_VERSIONS = "SELECT version FROM schema_migrations"
RECORD_MIGRATION = (
    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)"
)
SUPERSEDE_WAITING = (
    "UPDATE jobs SET state = 'superseded', finished_at = ? WHERE coalesce_key = ? AND state = "
    "'ready'"
)

# The status page's bounded reads (bot.store.ports.StatusReads).
RECORD_DRIFT_CHECK = (
    "INSERT INTO drift_checks (environment, state, drifted_objects, failure, checked_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (environment) DO UPDATE SET state = excluded.state, "
    "drifted_objects = excluded.drifted_objects, failure = excluded.failure, "
    "checked_at = excluded.checked_at"
)
APPLIED_COMMITS = (
    "SELECT environment, commit_sha, position, applied_at FROM applied_commits "
    "ORDER BY applied_at DESC LIMIT ?"
)
HELD_LOCKS = (
    "SELECT environment, holder, expires_at FROM environment_locks WHERE expires_at >= ? "
    "ORDER BY environment LIMIT ?"
)
DRIFT_CHECKS = (
    "SELECT environment, state, drifted_objects, checked_at, failure FROM drift_checks "
    "ORDER BY checked_at DESC LIMIT ?"
)
RECENT_AUDIT = f"SELECT {COLUMNS} FROM audit_ledger ORDER BY sequence DESC LIMIT ?"  # noqa: S608
AUDIT_OF_COMMIT = (
    f"SELECT {COLUMNS} FROM audit_ledger WHERE environment = ? AND commit_sha = ? "  # noqa: S608
    "ORDER BY sequence DESC LIMIT ?"
)
AUDIT_AFTER = f"SELECT {COLUMNS} FROM audit_ledger WHERE sequence > ? ORDER BY sequence LIMIT ?"  # noqa: S608
RECENT_DEAD_JOBS = (
    "SELECT id, kind, payload, coalesce_key, attempts, holder, state, last_error FROM jobs "
    "WHERE state = 'dead' ORDER BY id DESC LIMIT ?"
)


@cache
def postgres(statement: str) -> str:
    """The statement with psycopg's placeholders (none of these holds a literal `?`)."""
    return statement.replace("?", "%s")
