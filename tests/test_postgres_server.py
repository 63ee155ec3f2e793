"""The PostgreSQL test server is real: it stores and returns data across connections."""

from __future__ import annotations

import psycopg


def test_each_test_gets_its_own_real_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (41), (1)")
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT sum(n), current_database() FROM t").fetchone()
    assert row is not None and row[0] == 42 and row[1] in postgres_url
