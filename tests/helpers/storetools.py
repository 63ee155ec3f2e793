"""Reach into a store's database as an operator (or an attacker) could, and watch its queue."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bot.core.ledgerchain import LedgerKey, LedgerKeys
from bot.store.backends import store_for_url
from bot.store.ports import JobState

# The ledger key every test bot seals its audit records with (GITOPS_BOT_LEDGER_KEY).
LEDGER_KEY = "test-ledger-key-7f3a9c2e41b8d056"
LEDGER_KEY_ID = "k1"  # the settings' default id
TEST_KEY = LedgerKey(LEDGER_KEY_ID, LEDGER_KEY.encode())
TEST_KEYS = LedgerKeys(TEST_KEY)


async def audit_verify(settings: dict[str, str], *args: str) -> tuple[int, str]:
    """`gitops-bot audit --verify` in its own process, with these GITOPS_BOT_* settings and
    the test ledger key; the event loop keeps serving the fake forges meanwhile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    env |= {f"GITOPS_BOT_{k.upper()}": v for k, v in {"ledger_key": LEDGER_KEY, **settings}.items()}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "audit", "--verify", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


def execute_sql(url: str, sql: str, values: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the database a GITOPS_BOT_DATABASE_URL names; rows it returns."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return list(db.execute(sql.replace("%s", "?"), values).fetchall())
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql.encode(), values)
        return list(cursor.fetchall()) if cursor.description else []


async def wait_until_idle(database_url: str, guard_seconds: float, poll: float = 0.5) -> None:
    """Wait until no job is waiting or running (jobs of killed workers included).

    `guard_seconds` only stops a hang; it is never a claim about how fast the bot is.
    """
    store = store_for_url(database_url)
    await store.open()
    deadline = time.monotonic() + guard_seconds
    try:
        while True:
            counts = await store.job_counts()
            if counts[JobState.READY] + counts[JobState.RUNNING] == 0:
                return
            assert time.monotonic() < deadline, f"jobs never finished: {counts}"
            await asyncio.sleep(poll)
    finally:
        await store.close()


def let_time_pass(url: str, clock: Any, seconds: float) -> None:
    """Let `seconds` pass for a store's leases and locks. SQLite reads the test's clock,
    which moves; PostgreSQL reads the database server's, which a test cannot move, so the
    moments its jobs and locks hold move back by as much instead."""
    clock.advance(seconds)
    if url.startswith("sqlite:///"):
        return
    for sql in (
        "UPDATE jobs SET run_after = run_after - %s, lease_until = lease_until - %s",
        "UPDATE environment_locks SET expires_at = expires_at - %s",
    ):
        execute_sql(url, sql, (seconds,) * sql.count("%s"))


def database_for(request: Any, tmp_path: Path, name: str = "store.sqlite3") -> str:
    """The database URL a test parametrized over ["sqlite", "postgres"] runs on: a SQLite
    file under `tmp_path`, or a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / name}"
    return str(request.getfixturevalue("postgres_url"))
