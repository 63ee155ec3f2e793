"""SQLite WAL checkpoints off the commit path: a thread of the store copies what was
committed into the database file, so the WAL starts again instead of growing; a store
killed meanwhile loses no acknowledged write, and replicas on one file share the work."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

from bot.store.ports import Delivery, NewJob
from bot.store.sqlite import SQLiteStore
from bot.store.sqlitecheckpoints import checkpoint

GUARD_SECONDS = 60  # a guard against a hang, not a timing claim
BIG = "x" * 30_000  # a job payload of about 8 pages: the WAL grows fast
WRITES = 1600  # about 50 MB of WAL if nothing were checkpointed
WAL_BOUND = 24 * 2**20  # above the checkpoints' bound of 16 MB, far below no checkpoints


def _delivery(delivery_id: str) -> Delivery:
    return Delivery(delivery_id, "github", "pull_request", "queued")


def _job(delivery_id: str) -> NewJob:
    return NewJob("plan", json.dumps({"id": delivery_id, "padding": BIG}))


def _wal_size(database: Path) -> int:
    try:
        return Path(f"{database}-wal").stat().st_size
    except FileNotFoundError:
        return 0


def _in_database_file(database: Path, copy: Path) -> int:
    """Deliveries in the database file alone (its WAL left out): what was checkpointed."""
    shutil.copyfile(database, copy)
    try:
        with closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM deliveries").fetchone()[0])
    except sqlite3.DatabaseError:  # copied while a checkpoint was writing pages: look again
        return 0


async def test_replicas_writing_on_one_file_keep_the_wal_bounded(tmp_path: Path) -> None:
    # The stores' own connections never checkpoint (wal_autocheckpoint=0): without the
    # checkpoint threads the WAL would hold every page written, about 50 MB.
    database = tmp_path / "store.sqlite3"
    stores = [SQLiteStore(database), SQLiteStore(database)]
    largest = 0
    for store in stores:
        await store.open()
    try:
        for n in range(WRITES // 2):
            pair = [
                store.record_delivery(_delivery(f"d-{r}-{n:04}"), _job(f"{r}-{n}"))
                for r, store in enumerate(stores)
            ]
            assert await asyncio.gather(*pair) == [True, True]
            largest = max(largest, _wal_size(database))
        # While both are still open, the database file itself fills (only the checkpoint
        # threads copy pages into it); the last writes reach it at the next checkpoint.
        deadline = time.monotonic() + GUARD_SECONDS
        while _in_database_file(database, tmp_path / "copy.sqlite3") < WRITES:
            assert time.monotonic() < deadline, "the committed writes were never checkpointed"
            await asyncio.sleep(0.05)
    finally:
        for store in stores:
            await store.close()

    assert largest < WAL_BOUND, f"the WAL grew to {largest} bytes"
    with closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


_WRITER = """
import asyncio, json, sys
from pathlib import Path
from bot.store.ports import Delivery, NewJob
from bot.store.sqlite import SQLiteStore
from bot.store.sqlitecheckpoints import checkpoint

async def main() -> None:
    store = SQLiteStore(Path(sys.argv[1]))
    await store.open()
    padding = "x" * 30_000

    async def writer(w: int) -> None:
        for n in range(100_000):
            key = f"d-{w}-{n}"
            job = NewJob("plan", json.dumps({"id": key, "padding": padding}))
            assert await store.record_delivery(Delivery(key, "github", "push", "queued"), job)
            print(key, flush=True)  # acknowledged: the 2xx a forge would get

    await asyncio.gather(*(writer(w) for w in range(8)))

asyncio.run(main())
"""


def test_sigkill_while_checkpointing_loses_no_acknowledged_write(tmp_path: Path) -> None:
    database = tmp_path / "store.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(database)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert writer.stdout is not None
    acknowledged: list[str] = []
    try:
        # Past several checkpoints (about 8 pages a write, one checkpoint per 0.1 s at
        # most), so the kill lands while pages are being copied as likely as not.
        while len(acknowledged) < 1500:
            line = writer.stdout.readline()
            assert line, "the writer stopped before it was killed"
            acknowledged.append(line.strip())
    finally:
        writer.send_signal(signal.SIGKILL)
        acknowledged += [line.strip() for line in writer.stdout if line.strip()]
        writer.wait(GUARD_SECONDS)

    with closing(sqlite3.connect(database)) as db:
        stored = {row[0] for row in db.execute("SELECT id FROM deliveries")}
        jobs = db.execute("SELECT count(*) FROM jobs WHERE delivery_id IS NOT NULL").fetchone()
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert set(acknowledged) <= stored
    assert jobs == (len(stored),)  # each delivery kept with its job, none half-written


def _wal_frames(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def test_past_the_limit_a_checkpoint_waits_for_readers_so_the_wal_starts_again(
    tmp_path: Path,
) -> None:
    # A reader on an old snapshot keeps a PASSIVE checkpoint from copying the frames
    # after it, and so the WAL from starting again; past the limit the checkpoint waits
    # for that reader instead (as a slow status read of a replica would end).
    database = tmp_path / "store.sqlite3"
    with (
        closing(sqlite3.connect(database, isolation_level=None)) as writer,
        closing(sqlite3.connect(database, isolation_level=None, check_same_thread=False)) as reader,
        closing(sqlite3.connect(database, isolation_level=None)) as checkpointer,
    ):
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        checkpointer.execute("PRAGMA busy_timeout=5000")
        writer.execute("CREATE TABLE t (x TEXT)")
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM t").fetchone()  # its snapshot: the table alone
        for n in range(20):
            writer.execute("INSERT INTO t VALUES (?)", (BIG[:n] + str(n),))
        grown = _wal_frames(writer)

        ending = threading.Timer(0.5, reader.execute, ("COMMIT",))
        ending.start()  # the reader ends while the checkpoint waits for it
        checkpoint(checkpointer, limit_frames=grown // 2)
        ending.join()
        writer.execute("INSERT INTO t VALUES ('after')")
        assert _wal_frames(writer) < grown // 2  # the WAL started again from its first frame
