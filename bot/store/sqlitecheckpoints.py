"""WAL checkpoints of the SQLite store, off the commit path: a connection of their own on
a thread of their own.

Left to SQLite, the checkpoint runs inside the COMMIT that takes the WAL past 1,000
pages: that commit (and every delivery waiting for the next one) also waits while the
pages are copied into the database file and it is synced. Here the store's connection
never checkpoints (wal_autocheckpoint=0); this thread copies in the background what the
store committed, without the write lock (PASSIVE), so commits go on meanwhile. When the
WAL has been copied in full, the store's next write starts it again from the beginning,
as after SQLite's own checkpoints. Should commits keep coming so fast that it never is,
the WAL stops growing at about LIMIT_FRAMES: a RESTART checkpoint then holds the writers
back once, while it copies what the last PASSIVE one left, until the WAL can start again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.1  # at most one checkpoint per interval: a few hundred commits at load
# A PASSIVE checkpoint leaves the WAL whole only when no commit lands while it runs; with
# commits back to back (replicas writing flat out) that may never happen. At 500
# deliveries/s the WAL started again on its own before 2,800 frames: the RESTART (which
# holds writers back while it waits for the commit under way) is for worse than that.
LIMIT_FRAMES = 4_000  # 16 MB of WAL with 4 KiB pages: four times where SQLite checkpoints


class Checkpointer:
    """Checkpoints the WAL of the database at `path` after writes, on its own thread."""

    def __init__(self, path: Path, interval: float = INTERVAL_SECONDS) -> None:
        self._path = path
        self._interval = interval
        self._due = threading.Event()  # the store committed since the last checkpoint
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the connection (the database exists and is in WAL mode) and start."""
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=5000")  # RESTART waits for writers and readers
            db.execute("PRAGMA synchronous=FULL")  # the file synced before the WAL starts again
        except BaseException:
            db.close()
            raise
        self._thread = threading.Thread(
            target=self._loop, args=(db,), name="sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def wrote(self) -> None:
        """The store committed: checkpoint soon (cheap; called on the store's thread)."""
        self._due.set()

    def stop(self) -> None:
        """Stop after the checkpoint under way, if any; the connection is closed."""
        if self._thread is None:
            return
        self._stopping.set()
        self._due.set()
        self._thread.join()
        self._thread = None

    def _loop(self, db: sqlite3.Connection) -> None:
        try:
            while True:
                self._due.wait()
                if self._stopping.is_set():
                    return
                self._due.clear()
                checkpoint(db)
                self._stopping.wait(self._interval)
        finally:
            db.close()


def checkpoint(db: sqlite3.Connection, limit_frames: int = LIMIT_FRAMES) -> None:
    """Copy what is committed into the database file without holding writers back; when
    the WAL has grown past `limit_frames`, hold them back until it can start again."""
    try:
        _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames > limit_frames:
            db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    except sqlite3.Error as exc:  # the WAL waits for the next one; the store works on
        log.warning("SQLite checkpoint failed: %s", exc)
