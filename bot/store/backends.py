"""Pick the Store backend a database URL names."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bot.store.ports import Store, StoreError
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")


def store_for_url(url: str, clock: Callable[[], float] = time.time) -> Store:
    """`sqlite:///relative.db`, `sqlite:////absolute/path.db`, or a PostgreSQL URL
    (`postgresql://user:password@host:5432/name?sslmode=require`; `postgres://` too).
    `clock` is SQLite's time; PostgreSQL reads the database server's (see store/ports)."""
    if url.startswith(_SQLITE) and len(url) > len(_SQLITE):
        return SQLiteStore(Path(url[len(_SQLITE) :]), clock)
    if url.startswith(_POSTGRES) and len(url) > len("postgres://"):
        return PostgresStore(url)
    raise StoreError(
        f"unsupported database URL {url.split('@')[-1]!r}: use sqlite:///PATH "
        "(for example sqlite:///gitops-bot.sqlite3) or postgresql://USER@HOST:PORT/DATABASE"
    )
