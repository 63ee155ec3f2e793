"""The environment lock of the one audited apply, on SQLite and a real PostgreSQL: renewed
while the apply runs, and an apply whose lock was taken away stops instead of going on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers.storetools import database_for, execute_sql

from bot.stages.apply.audited import EnvironmentBusy, EnvironmentLockLost, Ledger, while_locked
from bot.store.backends import store_for_url
from bot.store.ports import Store

KEY = "github:acme/shop:prod"
LEASE_SECONDS = 0.6  # renewed every 0.2 s
GUARD_SECONDS = 60  # stops a hang; never a claim about speed


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_for(request, tmp_path)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = store_for_url(store_url)  # the real clock: leases run out as time passes
    await opened.open()
    yield opened
    await opened.close()


def _expiry(store_url: str) -> float:
    sql = "SELECT expires_at FROM environment_locks WHERE environment = %s"
    [(expires,)] = execute_sql(store_url, sql, (KEY,))
    return float(expires)


async def _renewals(store_url: str, count: int) -> None:
    """Wait until the lock's expiry has moved forward `count` times."""
    deadline = time.monotonic() + GUARD_SECONDS
    seen = [_expiry(store_url)]
    while len(set(seen)) <= count:
        assert time.monotonic() < deadline, "the lock was never renewed"
        await asyncio.sleep(0.05)
        seen.append(_expiry(store_url))


async def test_the_lock_outlives_its_lease_while_the_apply_runs(
    store: Store, store_url: str
) -> None:
    ledger = Ledger(store, None, LEASE_SECONDS)

    async def apply() -> str:
        await _renewals(store_url, 3)  # far past the first lease
        with pytest.raises(EnvironmentBusy):  # still held: no one else gets in
            await while_locked(ledger, KEY, "job-2", _nothing)
        return "applied"

    assert await while_locked(ledger, KEY, "job-1", apply) == "applied"
    assert execute_sql(store_url, "SELECT * FROM environment_locks") == []  # released


async def test_an_apply_whose_lock_was_taken_stops(store: Store, store_url: str) -> None:
    ledger = Ledger(store, None, LEASE_SECONDS)
    stopped = asyncio.Event()

    async def apply() -> None:
        try:
            await _renewals(store_url, 1)
            # Another replica takes over, as after this one froze longer than the lease.
            execute_sql(store_url, "UPDATE environment_locks SET holder = %s", ("job-9",))
            await asyncio.Event().wait()  # an apply that would go on for ever
        except asyncio.CancelledError:
            stopped.set()
            raise

    with pytest.raises(EnvironmentLockLost, match="taken over while job-1 applied it"):
        await while_locked(ledger, KEY, "job-1", apply)
    assert stopped.is_set()
    [(holder,)] = execute_sql(store_url, "SELECT holder FROM environment_locks")
    assert holder == "job-9"  # the new holder keeps it


async def _nothing() -> None:
    return None
