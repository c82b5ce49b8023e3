"""The PostgreSQL store's connections prepare statements on the server only where that works: over a
connection that reaches the server itself, never through a transaction pooler, and never again once a
prepared statement has gone missing (`bot.store.postgres.connections`)."""
from __future__ import annotations

import pytest

from bot.store import StoreUnreachable
from bot.store.postgres.connections import Connections, reached_directly

from pg_servers import Pgbouncer

QUERY = "SELECT %s::int + 1"


def prepared_here(pool: Connections) -> list[str]:
    """Run QUERY three times on the pool's one connection; the statements prepared in its session then."""
    with pool.connection() as conn:
        for n in range(3):
            assert conn.execute(QUERY, (n,)).fetchone() == (n + 1,)
        return [row[0] for row in conn.execute("SELECT name FROM pg_prepared_statements").fetchall()]


def test_statements_are_prepared_directly_and_never_through_a_pooler(database_url: str, pgbouncer: Pgbouncer) -> None:
    direct, pooled = Connections(database_url, 1), Connections(pgbouncer.through(database_url), 1)
    try:
        with direct.connection() as conn:
            assert reached_directly(conn, direct.url)
        with pooled.connection() as conn:
            assert conn.info.backend_pid != conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # made up
            assert not reached_directly(conn, pooled.url)
        assert prepared_here(direct) != []
        assert prepared_here(pooled) == []
    finally:
        direct.close()
        pooled.close()


def test_a_prepared_statement_gone_missing_stops_preparing_and_the_next_try_works(database_url: str) -> None:
    """What a pooler that switched sessions does, made here: the statement deallocated behind the pool's back."""
    pool = Connections(database_url, 1)
    try:
        (name,) = prepared_here(pool)
        with pool.connection() as conn:
            conn.execute(f"DEALLOCATE {name}")
        with pytest.raises(StoreUnreachable, match="transaction pooler"), pool.connection() as conn:
            conn.execute(QUERY, (1,))
        assert not pool.preparing
        assert prepared_here(pool) == []  # the same connection, run again: nothing prepared
    finally:
        pool.close()
