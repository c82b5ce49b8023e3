"""Where a bench keeps its store: a TinyDB file (the default) or a PostgreSQL database of its own.

`--store postgres` creates a database on TEST_DATABASE_URL's server (default
postgresql://postgres@127.0.0.1:5432/test), as the test fixtures do: CREATE DATABASE,
`bot.store.postgres.migrate.migrate(url)`, and DROP at the end, whatever happens.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from psycopg import sql

from bot.store.postgres.migrate import migrate

FILE, POSTGRES = "file", "postgres"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
_names = itertools.count(1)


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", choices=(FILE, POSTGRES), default=FILE,
                        help="file: a TinyDB file in a temporary folder (default); postgres: a database of its "
                             "own on TEST_DATABASE_URL's server, dropped at the end")


def server_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER


def _admin(statement: sql.Composed, server: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def bench_database(prefix: str = "tweetbot_bench", server: str | None = None) -> Iterator[str]:
    """The URL of a new, migrated database of this run's own on `server` (TEST_DATABASE_URL's unless given);
    dropped after."""
    server = server or server_url()
    name = f"{prefix}_{os.getpid()}_{next(_names)}"
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)), server)
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)), server)
    try:
        url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
        migrate(url)
        yield url
    finally:
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)), server)


@contextmanager
def store_env(kind: str, prefix: str = "tweetbot_bench") -> Iterator[dict[str, str]]:
    """Variables for `tweetbot_env` that put the store where `kind` says: nothing for a file
    (STORE_PATH in the bench's folder), DATABASE_URL of a new database for postgres."""
    if kind == FILE:
        yield {}
        return
    with bench_database(prefix) as url:
        yield {"DATABASE_URL": url}
