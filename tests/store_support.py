"""Where a test's store lives: a TinyDB file or a PostgreSQL database of its own, opened
through `open_store` exactly as the bot opens it (one contract, every store)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet

from bot.settings import Settings, load_settings
from bot.store import Repository, open_store

FILE, POSTGRES, PGBOUNCER = "file", "postgres", "pgbouncer"
STORES = (FILE, POSTGRES)  # where real processes' stores live in most tests (`store_env`)
CONTRACT_STORES = (FILE, POSTGRES, PGBOUNCER)  # the store suite also runs through a transaction pooler
DATABASES = (POSTGRES, PGBOUNCER)


@dataclass
class StoreAt:
    """A store location: `location` is the file's path or the database's URL (through pgbouncer for
    PGBOUNCER; `admin` is then the direct URL, for the test's own SQL)."""

    kind: str
    location: str
    key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    admin: str = ""

    @property
    def database(self) -> bool:
        return self.kind != FILE

    @property
    def admin_url(self) -> str:
        """A URL for the test's own SQL: the server itself (statements a pooler would trip on are fine)."""
        return self.admin or self.location

    def env(self) -> dict[str, str]:
        """The variables that name this store."""
        return {"DATABASE_URL": self.location} if self.database else {"STORE_PATH": self.location}

    def settings(self, token_key: str | None = None) -> Settings:
        environ = {"SECRET_KEY": "s" * 32, "ADMIN_PASSWORD": "store-test-password",
                   "TOKEN_KEY": token_key or self.key, **self.env()}
        return load_settings(dotenv_path=None, environ=environ)

    def wait_until_settled(self, timeout: float = 30) -> None:
        """Until no other session of the database is in a transaction or a statement: a killed client's
        COMMIT, sent before it died, may still land after it died (through a pooler, a moment later), and
        a reader must not see half of the state before it and half after. Nothing to wait for in a file."""
        if not self.database:
            return
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                               "AND state <> 'idle'").fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline, f"sessions of {self.admin_url} still busy after {timeout} s"
                time.sleep(0.01)

    def open(self, token_key: str | None = None) -> Repository:
        return open_store(self.settings(token_key))

    def raw(self) -> bytes:
        """Everything the store holds, as it is at rest (files' bytes, the media folder's too, or every row
        as text)."""
        if self.kind == FILE:
            folder = Path(self.location).parent
            return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())
        with psycopg.connect(self.admin_url) as conn:
            tables = [row[0] for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
            return b"".join(str(conn.execute(f'SELECT t::text FROM "{name}" t ORDER BY 1').fetchall()).encode()
                            for name in tables)
