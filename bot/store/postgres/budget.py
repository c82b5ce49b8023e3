"""What `tweetbot check` says of a PostgreSQL database: reached directly or through a pooler,
and how many connections the deploy takes against what the server allows.

Each process keeps at most DATABASE_POOL_SIZE connections (`bot.store.postgres.connections`):
the web's two gunicorn processes (the Procfile's line) each that many, every worker
that many, the release phase's `tweetbot migrate` one, and a command one. Small plans
cap connections (Heroku's smallest: 20), so the sum is printed beside the server's
and the role's limits.
"""
from __future__ import annotations

from dataclasses import dataclass

import psycopg

from bot.settings import Settings
from bot.store.postgres.connections import connect, describe, one_line, reached_directly

WEB_PROCESSES = 2  # gunicorn --workers in the Procfile, render.yaml and `tweetbot web`
WORKERS = 2  # the deploy the budget is worked out for: web + two workers


@dataclass(frozen=True)
class Budget:
    """Connections each part of a deploy takes at most."""

    pool_size: int
    web_processes: int = WEB_PROCESSES
    workers: int = WORKERS

    @property
    def web(self) -> int:
        return self.web_processes * self.pool_size

    @property
    def total(self) -> int:
        """Web, the workers, the release phase's migrate and one command."""
        return self.web + self.workers * self.pool_size + 1 + 1

    def line(self) -> str:
        return (f"Connections: at most {self.pool_size} per process (DATABASE_POOL_SIZE): web {self.web} "
                f"({self.web_processes} gunicorn processes), each worker {self.pool_size}, migrate 1, a command 1; "
                f"{self.total} with {self.workers} workers")


def describe_database(settings: Settings) -> list[str]:
    """The lines `tweetbot check` prints about DATABASE_URL (one line if it cannot be reached)."""
    assert settings.database_url
    budget = Budget(settings.database_pool_size)
    try:
        with connect(settings.database_url) as conn:
            port, max_connections, reserved, role_limit = _limits(conn)
            direct = reached_directly(conn, settings.database_url)
    except psycopg.Error as exc:
        return [f"Database: unreachable: {one_line(exc)}", budget.line()]
    kind = ("pooled: a pooler stands between (the server listens on port "
            f"{port}, or its process is not the one named at connection); the store keeps nothing in a "
            "session and prepares no statement there, so a transaction pooler works"
            if not direct else "direct")
    allowed = max_connections - reserved
    lines = [f"Database: {describe(settings.database_url)}, {kind}", budget.line(),
             f"The server allows {allowed} connections (max_connections {max_connections} less {reserved} "
             f"reserved)" + (f", this role {role_limit} (CONNECTION LIMIT)" if role_limit >= 0 else "")]
    limit = min(allowed, role_limit) if role_limit >= 0 else allowed
    if budget.total > limit:
        lines.append(f"warning: {budget.total} connections may be wanted but {limit} are allowed: "
                     "lower DATABASE_POOL_SIZE")
    return lines


def _limits(conn: psycopg.Connection) -> tuple[int | None, int, int, int]:
    """The server's port, max_connections, the connections reserved for superusers, and the role's limit."""
    row = conn.execute(
        "SELECT current_setting('port')::int, current_setting('max_connections')::int, "
        "current_setting('superuser_reserved_connections')::int, "
        "(SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user)").fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]
