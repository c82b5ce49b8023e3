"""Schema migrations for the PostgreSQL store: numbered SQL files in `bot/store/postgres/migrations/`.

`tweetbot migrate` applies the ones a database lacks, each in its own transaction,
under a transaction-scoped advisory lock so two runs at once (two release phases)
cannot collide: the second waits, then finds nothing left to do. Nothing is kept in
the session, so it works through a transaction pooler too. Web and worker refuse to start on
a database whose schema is older than the code (`SchemaBehind`).
"""
from __future__ import annotations

import hashlib
import logging
import re
from importlib import resources

import psycopg

from bot.store.errors import SchemaBehind
from bot.store.postgres.connections import connect

log = logging.getLogger("tweetbot.migrate")

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_CREATE_LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks."""
    return int.from_bytes(hashlib.blake2b(f"tweetbot:{name}".encode(), digest_size=8).digest(), "big", signed=True)


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration in the package, in order."""
    found = []
    for entry in resources.files("bot.store.postgres").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def latest_version() -> int:
    return migrations()[-1][0]


def applied_version(conn: psycopg.Connection) -> int:
    """The newest migration the database has (0: none, not even the ledger)."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate(url: str) -> list[str]:
    """Apply every migration the database lacks; the names applied (empty: it was up to date).

    Each migration is one transaction that takes the migrations' transaction-scoped advisory
    lock and then looks at the ledger again, so two runs at once apply each version once, and
    a transaction pooler (which may hand each transaction to another session) changes nothing.
    """
    applied: list[str] = []
    with connect(url) as conn:
        with conn.transaction():
            _lock_migrations(conn)
            conn.execute(_CREATE_LEDGER)
        for version, name, sql in migrations():
            with conn.transaction():
                _lock_migrations(conn)
                if version <= applied_version(conn):
                    continue
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            log.info("applied migration %s", name)
            applied.append(name)
    return applied


def _lock_migrations(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("migrate"),))


def check_schema(conn: psycopg.Connection) -> None:
    """Raise `SchemaBehind` unless the database's schema is the one this code was written for."""
    have, want = applied_version(conn), latest_version()
    if have < want:
        raise SchemaBehind(f"the database schema is at version {have}, this tweetbot needs {want}: "
                           "run `tweetbot migrate`")
    if have > want:
        raise SchemaBehind(f"the database schema is at version {have}, newer than this tweetbot knows ({want}): "
                           "upgrade tweetbot")
