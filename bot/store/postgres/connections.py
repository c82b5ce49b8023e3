"""The PostgreSQL store's connections: a small pool that checks what it hands out, and says
in one line a minute when the database cannot be reached.

Why not psycopg_pool: while the database is down, its `getconn` waits out the whole
timeout however clearly the server refused, and its reconnection backs off to
minutes, so a web request took 10 s to say "unreachable" and the worker came back
long after the database did. Here a connection that cannot be made fails at once
(the server refused, or CONNECT_TIMEOUT passed), every checkout tries again, and
only a pool that is busy (all its connections in use) makes a caller wait.

What the pool promises:
- at most `max_size` connections for the process (DATABASE_POOL_SIZE), made on demand;
- a connection handed out is checked first, and a dead one is closed and replaced: a
  server that ended the session (a restart, `pg_terminate_backend`, a pooler closing it)
  has sent its goodbye or closed the socket, which a poll of the socket sees without a
  round trip; one that sat unused for `QUIET_CHECK` seconds (where a dropped network
  path sends nothing) must first answer an empty query;
- connections are in autocommit mode (a statement outside `transaction()` is its own
  transaction);
- statements are prepared on the server (parsed and planned once per connection, not on
  every call: a third of the server's work on a busy worker) only on a connection that
  reaches the server itself. Through a transaction pooler (pgbouncer in transaction
  mode: Supabase's and Neon's pooled URLs) the next transaction may run in another server
  session, where the statement does not exist. A connection prepares nothing unless
  everything says it reaches the server itself: no pooler in its host name, the server
  listening on the port it dialled, and its server process the one it was told of at
  connection (a pooler makes up that id, the key that cancels a query). Should a prepared
  statement ever go missing all the same, the pool prepares nothing more, for good: the
  call that found out fails as an unreachable database does (nothing of it ran), and its
  caller's next try works;
- a failure to reach the database raises `StoreUnreachable`; it is logged once, then
  once a minute while it lasts, and its end once.
"""
from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
from psycopg import pq

from bot.store.errors import StoreError, StoreUnreachable

log = logging.getLogger("tweetbot.store")
# A command that configured no logging prints its one-line error, not our outage warnings beside it
# (Python's last-resort handler would); a process that logs (the worker, the web) still gets them.
log.addHandler(logging.NullHandler())

CONNECT_TIMEOUT = 5  # seconds for one connection attempt (libpq's connect_timeout; its least is 2)
WAIT_TIMEOUT = 30.0  # seconds a caller waits for a connection while all are in use (load, not an outage)
MAX_IDLE = 300.0  # seconds an unused connection is kept before it is closed
QUIET_CHECK = 30.0  # seconds unused after which a connection must answer an empty query before it is handed out
REPORT_EVERY = 60.0  # seconds between two log lines about one outage


def database_url(url: str) -> str:
    """The URL as libpq wants it: Heroku and Render hand out `postgres://`; `sslmode` and the rest pass through."""
    return "postgresql://" + url[len("postgres://"):] if url.startswith("postgres://") else url


def describe(url: str) -> str:
    """Where the database is, for messages: host, port and name, never the password."""
    parts = urlsplit(database_url(url))
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


PREPARE_THRESHOLD = 2  # a statement is prepared on a connection's second run of it (psycopg's default: 5)
# What a prepared statement gone missing looks like: it does not exist in this session, or one of its
# name exists already (a transaction pooler switched the server sessions under the connection).
SESSION_SWITCHED = (psycopg.errors.InvalidSqlStatementName, psycopg.errors.DuplicatePreparedStatement,
                    psycopg.errors.ProtocolViolation)
POOLER_HOST_MARKS = ("pooler",)  # Supabase's *.pooler.supabase.com, Neon's *-pooler.* hosts


def connect(url: str, **kwargs: object) -> psycopg.Connection:
    """One connection as the store uses them: autocommit, no server-side prepared statements (until
    `reached_directly` says they work), a bounded wait."""
    conn = psycopg.connect(database_url(url), autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                           prepare_threshold=None, **kwargs)  # type: ignore[arg-type]
    return conn


def pooled(url: str, server_port: int | None) -> bool:
    """Whether the URL reaches the server through a pooler by its look: the host says so, or the server
    listens on another port than the one the URL names (pgbouncer's 6432, Supavisor's 6543 in front of
    PostgreSQL's 5432)."""
    parts = urlsplit(database_url(url))
    if any(mark in (parts.hostname or "") for mark in POOLER_HOST_MARKS):
        return True
    return server_port is not None and server_port != (parts.port or 5432)


def reached_directly(conn: psycopg.Connection, url: str) -> bool:
    """Whether `url` reaches the server itself: not `pooled` by its look, and the connection's statements
    run in the server process it was told of when it connected (a pooler makes up that id)."""
    row = conn.execute("SELECT pg_backend_pid(), current_setting('port')::int").fetchone()
    return row is not None and row[0] == conn.info.backend_pid and not pooled(url, row[1])


class Outage:
    """Says that the database cannot be reached: once when it starts, once a minute while it lasts,
    once when it ends (never a line per failed call)."""

    def __init__(self, where: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.where = where
        self.clock = clock
        self.since: float | None = None
        self._told_at = 0.0
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            now = self.clock()
            if self.since is None:
                self.since, self._told_at = now, now
                log.warning("the database at %s is unreachable: %s; retrying (said again once a minute)",
                            self.where, one_line(exc))
            elif now - self._told_at >= REPORT_EVERY:
                self._told_at = now
                log.warning("the database at %s is still unreachable after %.0f s: %s",
                            self.where, now - self.since, one_line(exc))

    def succeeded(self) -> None:
        if self.since is None:  # the usual case: no lock taken
            return
        with self._lock:
            if self.since is not None:
                log.warning("the database at %s is reachable again after %.0f s", self.where,
                            self.clock() - self.since)
                self.since = None

    @property
    def down(self) -> bool:
        return self.since is not None


class Connections:
    """Up to `max_size` checked, autocommit connections to one database, shared by a process's threads."""

    def __init__(self, url: str, max_size: int, configure: Callable[[psycopg.Connection], None] | None = None,
                 application_name: str = "tweetbot") -> None:
        self.url = database_url(url)
        self.max_size = max_size
        self.configure = configure
        self.application_name = application_name
        self.outage = Outage(describe(url))
        self.preparing = True  # until a prepared statement goes missing (see the module)
        self._idle: list[tuple[psycopg.Connection, float]] = []  # newest last: the warmest is reused first
        self._count = 0  # connections open, idle or handed out
        self._available = threading.Condition()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A checked connection for the block, given back after (a broken one is dropped)."""
        conn = self._checkout()
        try:
            yield conn
        except SESSION_SWITCHED as exc:  # nothing ran: the caller may try again at once, as after an outage
            self._stop_preparing(exc)
            raise StoreUnreachable(f"the database at {describe(self.url)} is behind a transaction pooler: "
                                   f"{one_line(exc)}; preparing no statement from now on") from exc
        finally:
            self._give_back(conn)

    def close(self) -> None:
        """Close the idle connections; those handed out are closed as they come back."""
        with self._available:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._available.notify_all()
        for conn, _ in idle:
            conn.close()

    @property
    def open_count(self) -> int:
        return self._count

    # -- handing out -------------------------------------------------------------------

    def _checkout(self) -> psycopg.Connection:
        while True:
            reserved = self._reserve()
            if reserved is None:
                return self._new()
            conn, idle_since = reserved
            if self._alive(conn, time.monotonic() - idle_since):
                if not self.preparing:
                    conn.prepare_threshold = None  # made while statements were prepared
                return conn
            self._discard(conn)  # dead (a restart, a terminated backend): its place is free again

    def _reserve(self) -> tuple[psycopg.Connection, float] | None:
        """An idle connection, or None when the caller may open a new one (its place is counted)."""
        deadline = time.monotonic() + WAIT_TIMEOUT
        with self._available:
            while True:
                if self._closed:
                    raise StoreError("the store was closed")
                self._drop_stale()
                if self._idle:
                    return self._idle.pop()
                if self._count < self.max_size:
                    self._count += 1
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreError(f"no database connection free within {WAIT_TIMEOUT:.0f} s (all "
                                     f"{self.max_size} in use: DATABASE_POOL_SIZE)")
                self._available.wait(left)

    def _drop_stale(self) -> None:
        """Close connections unused for MAX_IDLE (under the condition's lock)."""
        limit = time.monotonic() - MAX_IDLE
        while self._idle and self._idle[0][1] < limit:
            conn, _ = self._idle.pop(0)
            self._count -= 1
            conn.close()

    def _new(self) -> psycopg.Connection:
        try:
            conn = connect(self.url, application_name=self.application_name)
            if self.preparing and reached_directly(conn, self.url):
                conn.prepare_threshold = PREPARE_THRESHOLD
            if self.configure is not None:
                self.configure(conn)
        except psycopg.Error as exc:
            self._release_place()
            self.outage.failed(exc)
            raise StoreUnreachable(f"the database at {describe(self.url)} is unreachable: {one_line(exc)}") from exc
        except BaseException:
            self._release_place()
            raise
        self.outage.succeeded()
        return conn

    @staticmethod
    def _alive(conn: psycopg.Connection, idle_for: float) -> bool:
        """Whether the connection can be used: not broken, nothing unasked-for waiting on its socket
        (a server says goodbye before it closes), and, after a quiet spell, an empty query answered."""
        if conn.closed or conn.pgconn.status != pq.ConnStatus.OK:
            return False
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
            if readable or idle_for >= QUIET_CHECK:
                conn.execute("")  # a goodbye (or EOF) raises here; a stray notice is read and passes
        except (psycopg.Error, OSError, ValueError):
            return False
        return True

    def _stop_preparing(self, exc: BaseException) -> None:
        """A prepared statement went missing: a pooler stands between after all. Prepare nothing more."""
        with self._available:
            if not self.preparing:
                return
            self.preparing = False
        log.warning("a prepared statement went missing at %s (%s): a transaction pooler stands between; "
                    "preparing no statement from now on", describe(self.url), one_line(exc))

    # -- giving back ---------------------------------------------------------------------

    def _give_back(self, conn: psycopg.Connection) -> None:
        usable = not conn.closed and conn.pgconn.status == pq.ConnStatus.OK
        if usable and conn.info.transaction_status != pq.TransactionStatus.IDLE:
            try:
                conn.rollback()  # left inside a transaction by an error: never hand that on
            except psycopg.Error:
                usable = False
        with self._available:
            if usable and not self._closed:
                self._idle.append((conn, time.monotonic()))
                self._available.notify()
                return
        self._discard(conn)

    def _discard(self, conn: psycopg.Connection) -> None:
        conn.close()
        self._release_place()

    def _release_place(self) -> None:
        with self._available:
            self._count -= 1
            self._available.notify()
