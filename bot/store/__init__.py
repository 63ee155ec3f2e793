"""The durable store: ports, the shared ledger rows, SQLite and PostgreSQL backends."""
