"""Database servers a test starts for itself: a private PostgreSQL (initdb in a temporary folder, its
own port) that a fault test may stop, restart and cut off, and Debian's pgbouncer in transaction mode
(what the pooled URLs of Supabase and Neon are) in front of a server.

Both run as the `postgres` user when the tests run as root (initdb and pgbouncer refuse root), in a
folder that user owns. The shared server at TEST_DATABASE_URL is never stopped or restarted: other
tests use it at the same time.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bot.store.postgres.migrate import migrate

from ports import free_port

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def pg_tool(name: str) -> str:
    """A PostgreSQL program: Debian keeps the server's under /usr/lib/postgresql/N/bin."""
    for folder in PG_BIN_CANDIDATES:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install PostgreSQL's server package")
    return found


def _as_postgres(folder: Path) -> dict[str, object]:
    """subprocess arguments that run a program as the postgres user when we are root, in `folder`."""
    return {"user": "postgres", "group": "postgres", "cwd": folder} if os.geteuid() == 0 else {"cwd": folder}


def owned_folder(prefix: str) -> Path:
    """A fresh folder the server's user owns (0700), outside pytest's root-only tmp folders."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    return folder


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


class PrivateServer:
    """A PostgreSQL server of the test's own, which it may stop, restart and cut off."""

    def __init__(self) -> None:
        self.folder = owned_folder("tweetbot-pg-")
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run([pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
                        "-E", "UTF8"], check=True, capture_output=True, **_as_postgres(self.folder))  # type: ignore[call-overload]
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=100")
        self._options = options

    def _ctl(self, *args: str) -> None:
        subprocess.run([pg_tool("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-o", self._options,
                        "-w", "-t", "60", *args], check=True, capture_output=True,
                       **_as_postgres(self.folder))  # type: ignore[call-overload]

    def start(self) -> None:
        self._ctl("start")
        wait_ready(self.url)

    def stop(self) -> None:
        """A fast shutdown: every session is cut, as a maintenance restart does."""
        self._ctl("-m", "fast", "stop")

    def start_if_stopped(self) -> None:
        """Start it unless it runs (a test that failed mid-outage leaves it stopped)."""
        status = subprocess.run([pg_tool("pg_ctl"), "-D", str(self.data), "status"], capture_output=True,
                                **_as_postgres(self.folder))  # type: ignore[call-overload]
        if status.returncode != 0:
            self.start()

    def restart(self) -> None:
        self._ctl("-m", "fast", "restart")
        wait_ready(self.url)

    def create_database(self, name: str) -> str:
        """A new, migrated database on this server; its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = with_database(self.url, name)
        migrate(url)
        return url

    def terminate_backends(self, database: str) -> int:
        """Cut every session of `database` (pg_terminate_backend); how many."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchall()
        return len(rows)

    def close(self) -> None:
        try:
            self._ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.folder, ignore_errors=True)


class Pgbouncer:
    """Debian's pgbouncer in transaction mode in front of the server at `server_url` (every database)."""

    def __init__(self, server_url: str, pool_size: int = 20) -> None:
        server = urlsplit(server_url)
        self.folder = owned_folder("tweetbot-pgbouncer-")
        self.port = free_port()
        config = self.folder / "pgbouncer.ini"
        users = self.folder / "users.txt"
        users.write_text(f'"{server.username or "postgres"}" ""\n')
        config.write_text(f"""[databases]
* = host={server.hostname} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
pool_mode = transaction
max_client_conn = 1000
default_pool_size = {pool_size}
ignore_startup_parameters = extra_float_digits,options
logfile = {self.folder / "pgbouncer.log"}
pidfile = {self.folder / "pgbouncer.pid"}
""")
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (config, users):
                os.chown(path, user.pw_uid, user.pw_gid)
        self.process = subprocess.Popen([PGBOUNCER, str(config)], stdout=subprocess.DEVNULL,  # type: ignore[call-overload]
                                        stderr=subprocess.STDOUT, **_as_postgres(self.folder))
        self.server_url = server_url
        wait_ready(self.url_of(server.path.lstrip("/") or "postgres"))

    def url_of(self, database: str) -> str:
        """A URL that reaches `database` through the pooler."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def through(self, direct_url: str) -> str:
        """`direct_url`'s database, reached through the pooler."""
        return self.url_of(urlsplit(direct_url).path.lstrip("/"))

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class ConnectionPeak:
    """The most connections held at once to `database`, or by `role`, sampled every `every` seconds by
    the server's superuser on a connection of its own (which does not count)."""

    def __init__(self, admin_url: str, database: str | None = None, role: str | None = None,
                 every: float = 0.05) -> None:
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(admin_url, database, role, every), daemon=True)
        self._thread.start()

    def _sample(self, admin_url: str, database: str | None, role: str | None, every: float) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            while not self._stop.wait(every):
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                   "AND (%(database)s::text IS NULL OR datname = %(database)s) "
                                   "AND (%(role)s::text IS NULL OR usename = %(role)s)",
                                   {"database": database, "role": role}).fetchone()
                self.most = max(self.most, int(row[0]) if row else 0)

    def stop(self) -> int:
        """Stop sampling; the peak."""
        self._stop.set()
        self._thread.join(timeout=5)
        return self.most
