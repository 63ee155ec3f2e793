"""Reach into a store's database with plain SQL, as an operator (or an attacker) could."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg


def execute_sql(url: str, sql: str, values: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the database a GITOPS_BOT_DATABASE_URL names; rows it returns."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return list(db.execute(sql.replace("%s", "?"), values).fetchall())
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql.encode(), values)
        return list(cursor.fetchall()) if cursor.description else []
