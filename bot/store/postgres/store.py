"""The server store: PostgreSQL through psycopg 3, chosen when DATABASE_URL is set.

It keeps what the file store keeps, for platforms whose web and worker processes
share no disk, and for more than one worker. Nothing that matters lives in a database
session, because managed databases restart, drop connections and are often reached
through a transaction pooler. How it keeps the contract:
- `transaction()` is a database transaction on one connection (`bot.store.postgres.connections`:
  checked as it is handed out, autocommit outside transactions, statements prepared on the
  server only where no pooler stands between), held by the thread for the whole block
  (re-entrant); every row read inside it is locked (`FOR UPDATE`), so a check-then-update
  never acts on a row another process changes;
- due posts are claimed in one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`
  under the account's transaction-scoped advisory lock (tried, never waited for), and only
  while the account has nothing `sending` (SQL functions of migration 0003, one call a
  claim): any number of workers share the posting, never hold the same post, and one
  account's posts go out in order, one batch at a time. Each claim carries a token; an
  outcome is written only under the claim that still holds the post;
- an account's lock and a lease are rows of `leases` (`bot.store.postgres.leases`), renewed while
  held, so a dropped connection or a pooler does not free them;
- tokens are sealed with TOKEN_KEY exactly as in the file store (the same documents).
"""
from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb, set_json_loads

from bot.crypto import TokenCipher
from bot.models import ACTIVE, FINISHED, SENDING, Account, Post, to_iso, utcnow
from bot.store.digests import checked_bytes, checked_digest, digest_of, is_digest
from bot.store.errors import ClaimLost, RecordMissing, StoreError, StoreUnreachable
from bot.store.locks import Lock, SharedTurn
from bot.store.postgres.connections import Connections, database_url, describe, one_line
from bot.store.postgres.leases import LeaseKeeper, RowLease, take_free
from bot.store.postgres.migrate import advisory_key, check_schema
from bot.store.records import (
    KEPT_DELIVERIES,
    TAKE_OVER_EVENT,
    TOKENS,
    BackupSummary,
    Claim,
    Delivery,
    Event,
    KeptAnswer,
    Reading,
    StoreContents,
    Webhook,
    account_patch,
    changed_account,
    changed_delivery,
    changed_post,
    first_sealed_token,
    replace_pair_in,
    seal_account,
    seal_webhook,
    stamped_if_finished,
    take_over_detail,
    unseal_account,
    unseal_webhook,
    update_account_in,
)

# psycopg warns through logging (e.g. "error ignored terminating <psycopg.Pipeline …>" after the
# error we already turn into a StoreError). Where nothing configured logging (a CLI command), Python
# would print that to stderr beside our one line; a process that logs still gets it, as a warning.
logging.getLogger("psycopg").addHandler(logging.NullHandler())

# Connections a process keeps at most (DATABASE_POOL_SIZE). No transaction waits on X, so a few
# serve the worker's posting threads; small plans cap connections (Heroku's smallest: 20 for
# the web's two processes, the workers, the release phase and a command): see the README.
POOL_SIZE = 4
CHUNK = 1 << 20  # media are kept in pieces of 1 MiB, never one huge value

__all__ = ["POOL_SIZE", "PostgresStore", "database_url", "describe"]


# What a restore with --force empties (the schema's ledger and the leases stay).
_DATA_TABLES = ("accounts", "posts", "schedules", "events", "meta", "media", "media_chunks", "generator_runs",
                "api_answers", "webhooks", "webhook_deliveries", "readings")
_UPDATE_CLAIMED = """
WITH merged AS (
    SELECT id, doc || %(patch)s AS doc FROM posts
     WHERE id = %(id)s AND status = 'sending' AND claim_token = %(claim)s FOR UPDATE),
updated AS (
UPDATE posts p
   SET doc = m.doc, status = m.doc->>'status', due_at = (m.doc->>'due_at')::timestamptz,
       ready_at = greatest((m.doc->>'due_at')::timestamptz,  -- bot.models.ready_time
                           coalesce((m.doc->>'next_attempt_at')::timestamptz, (m.doc->>'due_at')::timestamptz)),
       sending_since = (m.doc->>'sending_since')::timestamptz, claimed_by = m.doc->>'claimed_by',
       claim_token = m.doc->>'claim_token', claimed_at = (m.doc->>'claimed_at')::timestamptz,
       finished_seq = CASE WHEN m.doc->>'status' IN ('posted', 'failed', 'canceled')
                           THEN nextval('posts_finished_seq') END
  FROM merged m WHERE p.id = m.id
RETURNING p.doc),
logged AS (
    INSERT INTO events (at, kind, account_id, post_id, detail)
    SELECT %(at)s::timestamptz, %(kind)s::text, %(account)s::text, %(post)s::bigint, %(detail)s::text
      FROM updated WHERE %(event)s::boolean)
SELECT doc FROM updated"""
# A refresh's new pair, merged in only while the stored refresh token is the one the refresh spent, with
# its event, and the account's lock freed as it lands: one statement, for every account is refreshed every
# two hours (`Repository.replace_pair`).
_REPLACE_PAIR = """
WITH updated AS (
    UPDATE accounts SET doc = doc || %(patch)s WHERE user_id = %(user)s AND doc->>'refresh_token' = %(spent)s
    RETURNING doc),
logged AS (
    INSERT INTO events (at, kind, account_id, post_id, detail)
    SELECT %(at)s, %(kind)s, %(account)s, %(post)s, %(detail)s FROM updated),
released AS (
    UPDATE leases SET holder = '' WHERE name = %(lease)s AND holder = %(holder)s AND EXISTS (SELECT FROM updated))
SELECT doc FROM updated"""
# Due deliveries, claimed in one statement: rows another worker is claiming are skipped, never waited for.
_CLAIM_DELIVERIES = """
UPDATE webhook_deliveries
   SET claimed_until = %(until)s, doc = doc || jsonb_build_object('claim_token', %(token)s::text,
                                                                  'claimed_until', %(until_iso)s::text)
 WHERE id IN (
    SELECT d.id FROM webhook_deliveries d
     WHERE NOT d.finished AND d.next_attempt_at <= %(now)s
       AND (d.claimed_until IS NULL OR d.claimed_until <= %(now)s)
       AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.doc->>'paused_at' IS NOT NULL)
     ORDER BY d.next_attempt_at, d.id
     LIMIT %(limit)s
       FOR UPDATE OF d SKIP LOCKED)
RETURNING doc"""
_INSERT_POST = ("INSERT INTO posts (id, account_id, status, due_at, ready_at, sending_since, claimed_by, "
                "claim_token, claimed_at, finished_seq, doc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "CASE WHEN %s THEN nextval('posts_finished_seq') END, %s)")


def _configure(conn: psycopg.Connection) -> None:
    """Each pooled connection reads jsonb with orjson (the queue's documents are read by the thousand)."""
    set_json_loads(orjson.loads, conn)


# The whole queue, each row with the fingerprint of the rows it was read with (one snapshot):
# how many there are and the sum of a hash of each one's id and xmin, which every insert,
# update and finish changes (an update writes a new row version with a new xmin).
_ROW_HASH = "hashtextextended(id::text || ':' || xmin::text, 0)::numeric"
_QUEUE_FINGERPRINT = f"SELECT count(*), coalesce(sum({_ROW_HASH}), 0) FROM posts WHERE finished_seq IS NULL"
_WHOLE_QUEUE = (f"SELECT doc, count(*) OVER (), sum({_ROW_HASH}) OVER () FROM posts WHERE finished_seq IS NULL "
                "ORDER BY due_at, id")


class _QueueCache:
    """The whole queue as last read, parsed, and the fingerprint of the rows it came from.

    The dashboard, the calendar and /metrics each want every queued post; with ten thousand
    queued that read was most of their time. Asking the fingerprint scans the queue's rows
    without sending or parsing a document; only a changed queue is read again. Posts are
    frozen, so readers share them.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fingerprint: tuple[int, Decimal] | None = None
        self.posts: list[Post] = []

    def get(self, fingerprint: tuple[int, Decimal]) -> list[Post] | None:
        with self.lock:
            return self.posts if fingerprint == self.fingerprint else None

    def keep(self, fingerprint: tuple[int, Decimal], posts: list[Post]) -> None:
        with self.lock:
            self.fingerprint, self.posts = fingerprint, posts


class PostgresStore:
    """The repository over PostgreSQL; see `bot.store.Repository` for the contract."""


    def __init__(self, url: str, cipher: TokenCipher, pool_size: int = POOL_SIZE) -> None:
        self.url = database_url(url)
        self._cipher = cipher
        self._connections = Connections(self.url, pool_size, configure=_configure)
        self._local = threading.local()
        self._queue = _QueueCache()
        self._leases = LeaseKeeper(self._run)

    # -- connections and transactions -------------------------------------------------

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """psycopg's errors become the store's, with what to do: one line, never a traceback."""
        try:
            yield
        except psycopg.errors.UndefinedTable as exc:
            raise StoreError(f"the database at {describe(self.url)} has no tweetbot schema: "
                             "run `tweetbot migrate`") from exc
        except psycopg.OperationalError as exc:  # the connection or the server went away
            self._connections.outage.failed(exc)
            raise StoreUnreachable(f"the database at {describe(self.url)} is unreachable: {one_line(exc)}") from exc
        except psycopg.DataError as exc:  # a value it cannot keep (a NUL in a text)
            raise StoreError(f"the database at {describe(self.url)} refused a value: {one_line(exc)}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"the database at {describe(self.url)} failed: {one_line(exc)}") from exc

    @property
    def _conn(self) -> psycopg.Connection | None:
        return getattr(self._local, "conn", None)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One database transaction for the block, on this thread's connection (re-entrant).

        Rows read inside are locked until it ends. Exclusive per row, not per store:
        two transactions that touch different posts run at once.
        """
        if self._conn is not None:
            yield
            return
        with self._translated(), self._connections.connection() as conn, conn.transaction():
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    def _rows(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = (),
              binary: bool = False) -> list[tuple[Any, ...]]:
        """Run one statement (in the thread's transaction, if any; else as its own) and fetch what it
        returns (`binary`: in PostgreSQL's binary format, so bytea comes back as it is, not as hex text)."""
        if self._conn is not None:
            cursor = self._conn.execute(sql, params, binary=binary)
            return cursor.fetchall() if cursor.description else []
        with self._translated(), self._connections.connection() as conn:
            cursor = conn.execute(sql, params, binary=binary)
            return cursor.fetchall() if cursor.description else []

    def _run(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One statement of its own, outside any transaction of the thread (a lease is not rolled back)."""
        with self._translated(), self._connections.connection() as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def _read_locking(self, sql: str, table: str, key: object) -> list[tuple[Any, ...]]:
        """The rows of `sql` (whose one parameter is `key`), locked when inside a transaction (check-then-
        update): the row itself, or, while there is none, its key, so that a row that does not exist
        yet is not created twice by two transactions. Writers of a key lock it here too: whoever holds
        the row then never asks for the key's lock, so the two locks never wait on each other in a circle."""
        if self._conn is None:
            return self._rows(sql, (key,))
        rows = self._rows(sql + " FOR UPDATE", (key,))
        if rows:
            return rows
        self._lock_key(table, key)
        return self._rows(sql + " FOR UPDATE", (key,))  # one made while we waited is seen now

    def _lock_key(self, table: str, key: object) -> None:
        """Hold the key of `table` until the transaction ends (a row there or not)."""
        self._rows("SELECT pg_advisory_xact_lock(%s)", (advisory_key(f"{table}:{key}"),))

    # -- health -----------------------------------------------------------------------

    def verify(self) -> None:
        """Raise `StoreError` (unreachable, schema missing or old) or `TokenKeyError` (TOKEN_KEY wrong)."""
        with self._translated(), self._connections.connection() as conn:
            check_schema(conn)
            docs = [row[0] for row in conn.execute("SELECT doc FROM accounts LIMIT 20").fetchall()]
        self._cipher.decrypt(first_sealed_token(docs))

    def close(self) -> None:
        self._leases.close()
        self._connections.close()

    @property
    def open_connections(self) -> int:
        """Connections this process holds open now (idle or in use)."""
        return self._connections.open_count

    def backup(self, target: Path) -> BackupSummary:
        """Write the store as of one repeatable-read snapshot to the archive `target` (the file store's format)."""
        from bot.store.file.backup import write_contents_backup

        self.verify()
        return write_contents_backup(self.dump(), target, self._cipher)

    # -- copying ----------------------------------------------------------------------------

    def dump(self) -> StoreContents:
        """Everything the store holds, in one repeatable-read snapshot."""
        with self._translated(), self._connections.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return StoreContents(
                accounts=[row[0] for row in conn.execute("SELECT doc FROM accounts ORDER BY user_id")],
                queue=[Post.from_doc(row[0]) for row in conn.execute(
                    "SELECT doc FROM posts WHERE finished_seq IS NULL ORDER BY due_at, id")],
                history=[Post.from_doc(row[0]) for row in conn.execute(
                    "SELECT doc FROM posts WHERE finished_seq IS NOT NULL ORDER BY finished_seq")],
                schedules={row[0]: row[1] for row in conn.execute("SELECT account_id, doc FROM schedules")},
                events=[Event(*row) for row in conn.execute(
                    "SELECT at, kind, account_id, post_id, detail FROM events ORDER BY id")],
                meta={row[0]: row[1] for row in conn.execute("SELECT key, value FROM meta")},
                media={row[0]: _utc(row[1]) for row in conn.execute(
                    "SELECT digest, stored_at FROM media ORDER BY stored_at, digest")},
                read_media=self.get_media,
                webhooks=[row[0] for row in conn.execute("SELECT doc FROM webhooks ORDER BY id")],
                deliveries=[Delivery.from_doc(row[0]) for row in conn.execute(
                    "SELECT doc FROM webhook_deliveries ORDER BY id")],
                readings=[Reading.from_doc(row[0]) for row in conn.execute(
                    "SELECT doc FROM readings ORDER BY post_id")])

    def load(self, contents: StoreContents, replace: bool = False) -> None:
        """Fill an empty store with `contents`, ids kept, in one transaction (`StoreError` if not empty;
        with `replace`, what it holds is deleted first, in the same transaction: a restore's --force)."""
        with self.transaction():
            self._rows(f"LOCK TABLE {', '.join(_DATA_TABLES)} IN EXCLUSIVE MODE")
            if replace:
                self._rows(f"TRUNCATE {', '.join(_DATA_TABLES)}")
            if any(self._rows(f"SELECT 1 FROM {table} LIMIT 1")
                   for table in ("accounts", "posts", "schedules", "events")):
                raise StoreError(f"the database at {describe(self.url)} is not empty: copy only into an empty store")
            conn = self._conn
            assert conn is not None
            with conn.cursor() as cursor:
                cursor.executemany("INSERT INTO accounts (user_id, username_lower, doc) VALUES (%s, %s, %s)",
                                   [(d["user_id"], str(d["username"]).lower(), Jsonb(d)) for d in contents.accounts])
                cursor.executemany("INSERT INTO schedules (account_id, doc) VALUES (%s, %s)",
                                   [(key, Jsonb(doc)) for key, doc in contents.schedules.items()])
                cursor.executemany(_INSERT_POST, [_columns(post) for post in [*contents.history, *contents.queue]])
                cursor.executemany("INSERT INTO events (at, kind, account_id, post_id, detail) "
                                   "VALUES (%s, %s, %s, %s, %s)",
                                   [(e.at, e.kind, e.account_id, e.post_id, e.detail) for e in contents.events])
                cursor.executemany("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                                   "SET value = EXCLUDED.value", [(k, Jsonb(v)) for k, v in contents.meta.items()])
            self._rows("SELECT setval(pg_get_serial_sequence('posts', 'id'), "
                       "coalesce((SELECT max(id) FROM posts), 0) + 1, false)")
            self._load_webhooks(contents)
            self.add_readings(contents.readings)
            for digest, stored_at in contents.media.items():  # one file at a time, in the same transaction
                self._put_media(contents.read_media(digest), stored_at)

    def forget_deliveries(self, before: datetime) -> int:
        return len(self._rows(
            "DELETE FROM webhook_deliveries WHERE finished AND (doc->>'created_at')::timestamptz < %s AND id NOT IN "
            "(SELECT id FROM webhook_deliveries WHERE finished ORDER BY id DESC LIMIT %s) RETURNING 1",
            (before, KEPT_DELIVERIES)))

    def _load_webhooks(self, contents: StoreContents) -> None:
        """The subscriptions (secrets still sealed) and their outbox, ids kept, in the open transaction."""
        conn = self._conn
        assert conn is not None
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO webhooks (id, doc) VALUES (%s, %s)",
                               [(doc["id"], Jsonb(doc)) for doc in contents.webhooks])
            cursor.executemany("INSERT INTO webhook_deliveries (id, webhook_id, finished, next_attempt_at, "
                               "claimed_until, doc) VALUES (%s, %s, %s, %s, %s, %s)",
                               [(d.id, *_delivery_columns(d)) for d in contents.deliveries])
        for table in ("webhooks", "webhook_deliveries"):
            self._rows(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                       f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")

    # -- locks --------------------------------------------------------------------------

    def posting_turn(self) -> SharedTurn:
        """Every worker posts at once: they share the due posts through claims (`claim_next`)."""
        return SharedTurn()

    def lease(self, name: str, stop: Callable[[], bool] | None = None) -> RowLease:
        """A lease row (see `bot.store.postgres.leases`); `stop` ends a wait for it early."""
        return RowLease(self._run, self._leases, f"lease:{name}", stop=stop)

    def account_lock(self, user_id: str, timeout: float = -1, stop: Callable[[], bool] | None = None) -> RowLease:
        return RowLease(self._run, self._leases, f"account:{user_id}", timeout, stop)

    def take_free_account_locks(self, user_ids: Iterable[str]) -> dict[str, Lock]:
        """One statement for them all (`bot.store.postgres.leases.take_free`)."""
        wanted = {user_id: self.account_lock(user_id) for user_id in user_ids}
        taken = {lease.name for lease in take_free(self._run, list(wanted.values()))}
        return {user_id: lease for user_id, lease in wanted.items() if lease.name in taken}

    # -- meta -----------------------------------------------------------------------------

    def schema_version(self) -> int:
        rows = self._rows("SELECT coalesce(max(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._read_locking("SELECT value FROM meta WHERE key = %s", "meta", key)
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction():  # after any read-modify-write of the key in flight, not under it
            self._read_locking("SELECT 1 FROM meta WHERE key = %s", "meta", key)
            self._rows("INSERT INTO meta (key, value) VALUES (%s, %s) "
                       "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, Jsonb(value)))

    # -- accounts ---------------------------------------------------------------------------

    def get_account(self, user_id: str) -> Account | None:
        rows = self._read_locking("SELECT doc FROM accounts WHERE user_id = %s", "accounts", user_id)
        return unseal_account(rows[0][0], self._cipher) if rows else None

    def find_account(self, handle: str) -> Account | None:
        """An account by user id, username or @username (case-insensitive)."""
        name = handle.lstrip("@").lower()
        rows = self._rows("SELECT doc FROM accounts WHERE user_id = %s OR username_lower = %s "
                          "ORDER BY user_id = %s DESC LIMIT 1", (name, name, name))
        return unseal_account(rows[0][0], self._cipher) if rows else None

    def get_accounts(self, user_ids: Iterable[str]) -> list[Account]:
        rows = self._rows("SELECT doc FROM accounts WHERE user_id = ANY(%s)", (list(user_ids),))
        return [unseal_account(row[0], self._cipher) for row in rows]

    def expiring_accounts(self, by: datetime, among: Iterable[str] | None = None) -> list[Account]:
        rows = self._rows("SELECT doc FROM accounts WHERE doc->>'status' = %(active)s AND "
                          "(doc->>'expires_at' IS NULL OR (doc->>'expires_at')::timestamptz <= %(by)s) AND "
                          "(%(among)s::text[] IS NULL OR user_id = ANY(%(among)s::text[]))",
                          {"active": ACTIVE, "by": by, "among": None if among is None else list(among)})
        return [unseal_account(row[0], self._cipher) for row in rows]

    def list_accounts(self) -> list[Account]:
        rows = self._rows("SELECT doc FROM accounts ORDER BY username_lower, user_id")
        return [unseal_account(row[0], self._cipher) for row in rows]

    def save_account(self, account: Account) -> None:
        self._rows("INSERT INTO accounts (user_id, username_lower, doc) VALUES (%s, %s, %s) "
                   "ON CONFLICT (user_id) DO UPDATE SET username_lower = EXCLUDED.username_lower, doc = EXCLUDED.doc",
                   (account.user_id, account.username.lower(), Jsonb(seal_account(account, self._cipher))))

    def update_account(self, user_id: str, **changes: Any) -> Account:
        """Change some fields of an account in one transaction (its row locked); it as stored."""
        return update_account_in(self, user_id, changes)

    def replace_pair(self, spent: Account, event: Event, release: Lock | None = None,
                     **changes: Any) -> Account | None:
        """One statement while the stored refresh token is the very ciphertext `spent` was read with (the
        usual case), freeing `release` too; else the check on the tokens themselves, in a transaction
        (re-sealed meanwhile)."""
        sealed = spent.sealed("refresh_token")
        lease = release if isinstance(release, RowLease) and release.fence is not None else None
        if sealed is not None and self._conn is None:
            rows: list[tuple[Any, ...]] = []
            if lease is not None:
                lease.freeing_write()
            try:
                rows = self._rows(_REPLACE_PAIR, {
                    "user": spent.user_id, "spent": sealed.ciphertext,
                    "patch": Jsonb(account_patch(changes, self._cipher)), "at": event.at, "kind": event.kind,
                    "account": event.account_id, "post": event.post_id, "detail": event.detail,
                    "lease": lease.name if lease else None, "holder": lease.holder if lease else None})
            finally:
                if lease is not None:
                    lease.freed_by_write(bool(rows))
            if rows:
                tokens = {name: changes[name] for name in TOKENS if name in changes}
                return changed_account(unseal_account(rows[0][0], self._cipher), tokens)  # known: no decrypting
        return replace_pair_in(self, spent, event, changes)

    def delete_account(self, user_id: str) -> None:
        self._rows("DELETE FROM accounts WHERE user_id = %s", (user_id,))

    # -- posts ----------------------------------------------------------------------------------

    def add_posts(self, posts: list[Post], run_key: str | None = None) -> list[Post]:
        """Queue posts in one transaction, all or none; ids are assigned here (finished ones go to the history).
        With `run_key`, only if no earlier call used that key (none queued: []); the key is kept with them."""
        if not posts:
            return []
        with self.transaction():
            if run_key is not None and not self._rows(
                    "INSERT INTO generator_runs (key, queued_at) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                    (run_key, utcnow())):
                return []
            ids = [row[0] for row in self._rows(
                "SELECT nextval(pg_get_serial_sequence('posts', 'id')) FROM generate_series(1, %s)", (len(posts),))]
            stored = [stamped_if_finished(replace(post, id=post_id, created_at=post.created_at or utcnow()))
                      for post, post_id in zip(posts, sorted(ids), strict=True)]
            conn = self._conn
            assert conn is not None
            with conn.cursor() as cursor:
                cursor.executemany(_INSERT_POST, [_columns(post) for post in stored])
            if run_key is not None:
                self._rows("UPDATE generator_runs SET post_id = %s WHERE key = %s", (stored[0].id, run_key))
            return stored

    def forget_runs(self, before: datetime) -> int:
        """Forget the keys of generator runs queued before `before`; how many."""
        return len(self._rows("DELETE FROM generator_runs WHERE queued_at < %s RETURNING 1", (before,)))

    def get_post(self, post_id: int) -> Post | None:
        """A post, queued or finished."""
        # Its row is locked inside a transaction; posts are never created by a check-then-insert
        # (their ids come from a sequence), so no key lock is needed.
        sql = "SELECT doc FROM posts WHERE id = %s" + (" FOR UPDATE" if self._conn is not None else "")
        rows = self._rows(sql, (int(post_id),))
        return Post.from_doc(rows[0][0]) if rows else None

    def queued_posts(self, account_id: str | None = None, due_by: datetime | None = None) -> list[Post]:
        """Unfinished posts, earliest due first; with `due_by`, only scheduled ones whose time has come.
        The whole queue (no account, no `due_by`, outside a transaction) comes from `_QueueCache` while
        it is unchanged; one account's posts are read alone (the worker asks for them after each change)."""
        if due_by is None and account_id is None and self._conn is None:
            return list(self._whole_queue())
        where, params = ["finished_seq IS NULL"], list[Any]()
        if due_by is not None:
            where += ["status = 'scheduled'", "ready_at <= %s"]
            params.append(due_by)
        if account_id is not None:
            where.append("account_id = %s")
            params.append(account_id)
        rows = self._rows(f"SELECT doc FROM posts WHERE {' AND '.join(where)} ORDER BY due_at, id", tuple(params))
        return [Post.from_doc(row[0]) for row in rows]

    def _whole_queue(self) -> list[Post]:
        [(count, total)] = self._rows(_QUEUE_FINGERPRINT)
        kept = self._queue.get((int(count), Decimal(total)))
        if kept is not None:
            return kept
        rows = self._rows(_WHOLE_QUEUE)
        posts = [Post.from_doc(row[0]) for row in rows]
        self._queue.keep((int(rows[0][1]), Decimal(rows[0][2])) if rows else (0, Decimal(0)), posts)
        return posts

    def sending_posts(self, account_id: str | None = None) -> list[Post]:
        """Posts `sending` (by any worker), earliest due first."""
        if account_id is None:
            rows = self._rows("SELECT doc FROM posts WHERE status = 'sending' ORDER BY due_at, id")
        else:
            rows = self._rows("SELECT doc FROM posts WHERE status = 'sending' AND account_id = %s "
                              "ORDER BY due_at, id", (account_id,))
        return [Post.from_doc(row[0]) for row in rows]

    def claim_due(self, account_id: str, now: datetime, limit: int, claimer: str,
                  post_id: int | None = None) -> list[Post]:
        """Mark the account's earliest due posts `sending` by `claimer` under one new claim (only `post_id`,
        if given), in due order; none while any post of the account is `sending` or another worker is
        claiming it. One call of `tweetbot_claim_account` (migration 0003), which says how."""
        rows = self._rows("SELECT * FROM tweetbot_claim_account(%s, %s, %s, %s, %s, %s)",
                          (account_id, now, claimer, limit, post_id, secrets.token_hex(8)))
        return _in_due_order(rows)

    def claim_next(self, now: datetime, claimer: str, limit: int, skip: Iterable[str] = ()) -> Claim:
        """The due posts of the next account that can post, claimed as `claim_due` claims them (one call
        of `tweetbot_claim_next`), and their account, read by the same statement."""
        rows = self._rows("SELECT claimed.doc, (SELECT doc FROM accounts WHERE user_id = claimed.doc->>'account_id') "
                          "FROM tweetbot_claim_next(%s, %s, %s, %s, %s) AS claimed(doc)",
                          (now, claimer, limit, sorted(skip), secrets.token_hex(8)))
        account = unseal_account(rows[0][1], self._cipher) if rows and rows[0][1] is not None else None
        return Claim(_in_due_order(rows), account)

    def due_accounts(self, now: datetime, limit: int | None = None) -> set[str]:
        """The accounts that can post (active, not held) with a scheduled post whose time has come (with
        `limit`: those of the `limit` posts that have waited longest)."""
        rows = self._rows(
            "SELECT DISTINCT d.account_id FROM (SELECT account_id FROM posts WHERE status = 'scheduled' "
            "AND ready_at <= %(now)s ORDER BY ready_at, id LIMIT %(limit)s) d JOIN accounts a ON a.user_id = "
            "d.account_id WHERE a.doc->>'status' = 'active' "
            "AND coalesce((a.doc->>'hold_until')::timestamptz <= %(now)s, true)", {"now": now, "limit": limit})
        return {row[0] for row in rows}

    def take_over(self, post: Post, claimer: str, now: datetime, claimed_before: datetime) -> Post | None:
        """Claim for `claimer` a post left `sending` under `post.claim_token`, if that claim is still its claim and
        was made before `claimed_before` (one statement decides); the post under the new claim, or None."""
        claim = secrets.token_hex(8)
        with self.transaction():
            rows = self._rows(
                "UPDATE posts SET claimed_by = %(claimer)s, claim_token = %(claim)s, claimed_at = %(now)s,"
                " doc = doc || jsonb_build_object('claimed_by', %(claimer)s::text, 'claim_token', %(claim)s::text,"
                "                                 'claimed_at', %(now_iso)s::text)"
                " WHERE id = %(id)s AND status = 'sending' AND claim_token IS NOT DISTINCT FROM %(old)s"
                " AND coalesce(claimed_at, sending_since) < %(before)s RETURNING doc",
                {"claimer": claimer, "claim": claim, "now": now, "now_iso": to_iso(now), "id": post.id,
                 "old": post.claim_token, "before": claimed_before})
            if not rows:
                return None
            self._rows("INSERT INTO events (at, kind, account_id, post_id, detail) VALUES (%s, %s, %s, %s, %s)",
                       (now, TAKE_OVER_EVENT, post.account_id, post.id, take_over_detail(post, claimer, now)))
            return Post.from_doc(rows[0][0])

    def update_post(self, post_id: int, under_claim: str | None = None, event: Event | None = None,
                    **changes: Any) -> Post:
        """Change a queued post (its row locked); one that becomes finished joins the history. With
        `under_claim`, only while it is `sending` under that claim (else `ClaimLost`, nothing changed):
        one statement, for a worker writes an outcome per post it sends."""
        if under_claim is not None:
            return self._update_claimed(post_id, under_claim, changes, event)
        with self.transaction():
            rows = self._rows("SELECT doc FROM posts WHERE id = %s AND finished_seq IS NULL FOR UPDATE",
                              (int(post_id),))
            if not rows:
                if under_claim is not None:
                    raise ClaimLost(f"post {post_id} is no longer queued")
                raise RecordMissing(f"no queued post {post_id}")
            current = Post.from_doc(rows[0][0])
            if under_claim is not None and (current.status != SENDING or current.claim_token != under_claim):
                raise ClaimLost(f"post {post_id} is no longer sending under that claim")
            post = changed_post(current, changes)
            self._write_post(post)
            if event is not None:
                self.record_event(event.kind, event.account_id, event.post_id, event.detail, event.at)
            return post

    def _update_claimed(self, post_id: int, claim: str, changes: dict[str, Any], event: Event | None) -> Post:
        """`changes` merged into the post's document, and its columns taken from the result, if it is
        still `sending` under `claim` (a finished post gets its `finished_at` and its place in the history),
        and `event` recorded with it: one statement."""
        if changes.get("status") in FINISHED and changes.get("finished_at") is None:
            changes = {**changes, "finished_at": utcnow()}
        rows = self._rows(_UPDATE_CLAIMED, {
            "id": int(post_id), "claim": claim, "patch": Jsonb(Post.patch(changes)), "event": event is not None,
            "at": event.at if event else None, "kind": event.kind if event else None,
            "account": event.account_id if event else None, "post": event.post_id if event else None,
            "detail": event.detail if event else None})
        if not rows:
            raise ClaimLost(f"post {post_id} is no longer sending under that claim")
        return Post.from_doc(rows[0][0])

    def _write_post(self, post: Post) -> None:
        self._rows("UPDATE posts SET account_id = %s, status = %s, due_at = %s, ready_at = %s, sending_since = %s, "
                   "claimed_by = %s, claim_token = %s, claimed_at = %s, "
                   "finished_seq = CASE WHEN %s THEN nextval('posts_finished_seq') END, doc = %s "
                   "WHERE id = %s", (*_columns(post)[1:], post.id))

    def mark_requeued(self, post_id: int, new_id: int) -> None:
        rows = self._rows("UPDATE posts SET doc = doc || jsonb_build_object('requeued_as', %s::bigint) "
                          "WHERE id = %s AND status = 'failed' RETURNING id", (int(new_id), int(post_id)))
        if not rows:
            raise RecordMissing(f"no failed post {post_id}")

    def kept_answer(self, key: str, since: datetime) -> KeptAnswer | None:
        rows = self._read_locking("SELECT fingerprint, status, body, kept_at FROM api_answers WHERE key = %s",
                                  "api_answers", key)
        return KeptAnswer(*rows[0]) if rows and rows[0][3] >= since else None

    def keep_answer(self, key: str, answer: KeptAnswer) -> None:
        self._rows("INSERT INTO api_answers (key, fingerprint, status, body, kept_at) VALUES (%s, %s, %s, %s, %s) "
                   "ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, "
                   "body = EXCLUDED.body, kept_at = EXCLUDED.kept_at",
                   (key, answer.fingerprint, answer.status, Jsonb(answer.body), answer.kept_at))

    def forget_answers(self, before: datetime) -> int:
        return len(self._rows("DELETE FROM api_answers WHERE kept_at < %s RETURNING 1", (before,)))

    def count_request(self, key_id: str, minute: datetime) -> int:
        [(count,)] = self._rows(
            "INSERT INTO api_rates AS r (key_id, minute, count) VALUES (%s, %s, 1) ON CONFLICT (key_id) DO UPDATE "
            "SET count = CASE WHEN EXCLUDED.minute > r.minute THEN 1 ELSE r.count + 1 END, "
            "minute = GREATEST(r.minute, EXCLUDED.minute) RETURNING count", (key_id, minute))
        return int(count)

    def history(self, limit: int = 50, account_id: str | None = None, status: str | None = None) -> list[Post]:
        """Finished posts, most recently finished first (the history indexes, read as far as `limit`)."""
        where, params = ["finished_seq IS NOT NULL"], list[Any]()
        for column, value in (("account_id", account_id), ("status", status)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        rows = self._rows(f"SELECT doc FROM posts WHERE {' AND '.join(where)} ORDER BY finished_seq DESC LIMIT %s",
                          (*params, limit))
        return [Post.from_doc(row[0]) for row in rows]

    def post_counts(self) -> dict[tuple[str, str], int]:
        rows = self._rows("SELECT account_id, status, count(*) FROM posts GROUP BY account_id, status")
        return {(account_id, status): int(number) for account_id, status, number in rows}

    # -- readings (bot.analytics) ----------------------------------------------------------------

    def posted_since(self, since: datetime) -> list[Post]:
        rows = self._rows("SELECT doc FROM posts WHERE status = 'posted' AND doc->>'posted_at' >= %s "
                          "ORDER BY doc->>'posted_at', id", (to_iso(since),))
        return [Post.from_doc(row[0]) for row in rows]

    def add_readings(self, readings: list[Reading]) -> None:
        """Each replaces its post's reading unless that one was read later (the newest stays)."""
        if not readings:
            return
        with self.transaction():
            conn = self._conn
            assert conn is not None
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO readings AS r (post_id, account_id, read_at, doc) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (post_id) DO UPDATE SET account_id = EXCLUDED.account_id, read_at = EXCLUDED.read_at, "
                    "doc = EXCLUDED.doc WHERE r.read_at <= EXCLUDED.read_at",
                    [(r.post_id, r.account_id, r.read_at, Jsonb(r.to_doc())) for r in readings])

    def readings(self, post_ids: Iterable[int]) -> dict[int, Reading]:
        ids = [int(post_id) for post_id in post_ids]
        if not ids:
            return {}
        rows = self._rows("SELECT doc FROM readings WHERE post_id = ANY(%s)", (ids,))
        return {int(row[0]["post_id"]): Reading.from_doc(row[0]) for row in rows}

    def reading_totals(self, read_since: datetime) -> dict[tuple[str, str], int]:
        rows = self._rows("SELECT account_id, metric.key, sum(metric.value::bigint) FROM readings, "
                          "jsonb_each_text(doc->'metrics') AS metric WHERE read_at >= %s GROUP BY 1, 2", (read_since,))
        return {(account_id, name): int(total) for account_id, name, total in rows}

    # -- schedules ----------------------------------------------------------------------------------

    def get_schedule(self, account_id: str) -> dict[str, Any] | None:
        rows = self._read_locking("SELECT doc FROM schedules WHERE account_id = %s", "schedules", account_id)
        return dict(rows[0][0]) if rows else None

    def save_schedule(self, account_id: str, schedule: dict[str, Any]) -> None:
        self._rows("INSERT INTO schedules (account_id, doc) VALUES (%s, %s) "
                   "ON CONFLICT (account_id) DO UPDATE SET doc = EXCLUDED.doc", (account_id, Jsonb(schedule)))

    # -- events ---------------------------------------------------------------------------------------

    def record_event(self, kind: str, account_id: str | None = None, post_id: int | None = None,
                     detail: str | None = None, at: datetime | None = None) -> None:
        self._rows("INSERT INTO events (at, kind, account_id, post_id, detail) VALUES (%s, %s, %s, %s, %s)",
                   (at or utcnow(), kind, account_id, post_id, detail))

    def events(self, limit: int = 100, kind: str | None = None, account_id: str | None = None) -> list[Event]:
        """The newest events first."""
        rows = self._rows(
            "SELECT at, kind, account_id, post_id, detail FROM events "
            "WHERE (%(kind)s::text IS NULL OR kind = %(kind)s) "
            "AND (%(account)s::text IS NULL OR account_id = %(account)s) "
            "ORDER BY id DESC LIMIT %(limit)s", {"kind": kind, "account": account_id, "limit": limit})
        return [Event(*row) for row in rows]

    def event_counts(self, kinds: Iterable[str]) -> dict[tuple[str | None, str], int]:
        rows = self._rows("SELECT account_id, kind, count(*) FROM events WHERE kind = ANY(%s) "
                          "GROUP BY account_id, kind", (list(kinds),))
        return {(account_id, kind): int(number) for account_id, kind, number in rows}

    # -- media ------------------------------------------------------------------------------------------

    def put_media(self, data: bytes) -> str:
        """Keep `data` in pieces of 1 MiB under its digest, in one transaction; bytes kept already are not
        sent again (only their stored time is renewed)."""
        return self._put_media(data, utcnow())

    def _put_media(self, data: bytes, stored_at: datetime) -> str:
        digest = digest_of(data)
        with self.transaction():
            if self._rows("UPDATE media SET stored_at = %s WHERE digest = %s RETURNING 1", (stored_at, digest)):
                return digest
            # Two puts of the same new bytes at once: the second waits for the first, then inserts nothing.
            if self._rows("INSERT INTO media (digest, size, stored_at) VALUES (%s, %s, %s) "
                          "ON CONFLICT (digest) DO NOTHING RETURNING 1", (digest, len(data), stored_at)):
                self._put_chunks(digest, data)
        return digest

    def _put_chunks(self, digest: str, data: bytes) -> None:
        """The pieces of `data`, each a binary server-side parameter (slices of it, never copies)."""
        conn = self._conn
        assert conn is not None
        view = memoryview(data)
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO media_chunks (digest, seq, data) VALUES (%s, %s, %b) "
                               "ON CONFLICT DO NOTHING",
                               ((digest, seq, view[start:start + CHUNK])
                                for seq, start in enumerate(range(0, len(data), CHUNK))))

    def get_media(self, digest: str) -> bytes:
        """The bytes of `digest`, its pieces joined in order and checked against it."""
        rows = self._rows("SELECT c.data FROM media m LEFT JOIN media_chunks c USING (digest) "
                          "WHERE m.digest = %s ORDER BY c.seq", (checked_digest(digest),), binary=True)
        if not rows:
            raise RecordMissing(f"no media {digest}")
        data = b"".join(row[0] for row in rows if row[0] is not None)
        return checked_bytes(digest, data, f"the database at {describe(self.url)}")

    def media_digests(self) -> dict[str, datetime]:
        return {row[0]: _utc(row[1]) for row in self._rows("SELECT digest, stored_at FROM media")}

    def delete_media(self, digests: Iterable[str], stored_before: datetime | None = None) -> int:
        """Delete the media (its pieces go with it) of `digests` stored before `stored_before`, if given."""
        wanted = sorted({d for d in digests if is_digest(d)})
        if not wanted:
            return 0
        rows = self._rows("DELETE FROM media WHERE digest = ANY(%s) AND (%s::timestamptz IS NULL OR stored_at < %s) "
                          "RETURNING digest", (wanted, stored_before, stored_before))
        return len(rows)


    # -- webhooks ------------------------------------------------------------------------------

    def add_webhook(self, url: str, events: Iterable[str], secret: str, at: datetime) -> Webhook:
        with self.transaction():
            [(webhook_id,)] = self._rows("SELECT nextval(pg_get_serial_sequence('webhooks', 'id'))")
            webhook = Webhook(int(webhook_id), url, tuple(events), secret, created_at=at)
            self._rows("INSERT INTO webhooks (id, doc) VALUES (%s, %s)",
                       (webhook.id, Jsonb(seal_webhook(webhook, self._cipher))))
            return webhook

    def get_webhook(self, webhook_id: int) -> Webhook | None:
        # NO KEY: a delivery being added (its foreign key) need not wait for a subscription being counted.
        sql = "SELECT doc FROM webhooks WHERE id = %s" + (" FOR NO KEY UPDATE" if self._conn is not None else "")
        rows = self._rows(sql, (int(webhook_id),))
        return unseal_webhook(rows[0][0], self._cipher) if rows else None

    def list_webhooks(self) -> list[Webhook]:
        return [unseal_webhook(row[0], self._cipher) for row in self._rows("SELECT doc FROM webhooks ORDER BY id")]

    def update_webhook(self, webhook_id: int, **changes: Any) -> Webhook:
        with self.transaction():
            current = self.get_webhook(webhook_id)
            if current is None:
                raise RecordMissing(f"no webhook {webhook_id}")
            webhook = replace(current, **changes)
            self._rows("UPDATE webhooks SET doc = %s WHERE id = %s",
                       (Jsonb(seal_webhook(webhook, self._cipher)), webhook.id))
            return webhook

    def remove_webhook(self, webhook_id: int) -> None:
        """Its deliveries go with it (ON DELETE CASCADE)."""
        if not self._rows("DELETE FROM webhooks WHERE id = %s RETURNING 1", (int(webhook_id),)):
            raise RecordMissing(f"no webhook {webhook_id}")

    def add_deliveries(self, deliveries: list[Delivery]) -> list[Delivery]:
        if not deliveries:
            return []
        with self.transaction():
            ids = [row[0] for row in self._rows(
                "SELECT nextval(pg_get_serial_sequence('webhook_deliveries', 'id')) FROM generate_series(1, %s)",
                (len(deliveries),))]
            stored = [replace(delivery, id=int(delivery_id))
                      for delivery, delivery_id in zip(deliveries, sorted(ids), strict=True)]
            conn = self._conn
            assert conn is not None
            with conn.cursor() as cursor:
                cursor.executemany("INSERT INTO webhook_deliveries (id, webhook_id, finished, next_attempt_at, "
                                   "claimed_until, doc) VALUES (%s, %s, %s, %s, %s, %s)",
                                   [(d.id, *_delivery_columns(d)) for d in stored])
            return stored

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        sql = "SELECT doc FROM webhook_deliveries WHERE id = %s" + (" FOR UPDATE" if self._conn is not None else "")
        rows = self._rows(sql, (int(delivery_id),))
        return Delivery.from_doc(rows[0][0]) if rows else None

    def claim_deliveries(self, now: datetime, limit: int, hold_until: datetime) -> list[Delivery]:
        """See `Repository.claim_deliveries`: one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`."""
        rows = self._rows(_CLAIM_DELIVERIES, {"now": now, "limit": limit, "until": hold_until,
                                              "until_iso": to_iso(hold_until), "token": secrets.token_hex(8)})
        return sorted((Delivery.from_doc(row[0]) for row in rows), key=lambda d: (d.next_attempt_at, d.id))

    def update_delivery(self, delivery_id: int, under_claim: str | None = None, **changes: Any) -> Delivery:
        with self.transaction():
            current = self.get_delivery(delivery_id)
            delivery = changed_delivery(delivery_id, current, under_claim, changes)
            self._rows("UPDATE webhook_deliveries SET webhook_id = %s, finished = %s, next_attempt_at = %s, "
                       "claimed_until = %s, doc = %s WHERE id = %s", (*_delivery_columns(delivery), delivery.id))
            return delivery

    def deliveries(self, limit: int = 50, webhook_id: int | None = None) -> list[Delivery]:
        if webhook_id is None:
            rows = self._rows("SELECT doc FROM webhook_deliveries ORDER BY id DESC LIMIT %s", (limit,))
        else:
            rows = self._rows("SELECT doc FROM webhook_deliveries WHERE webhook_id = %s ORDER BY id DESC LIMIT %s",
                              (int(webhook_id), limit))
        return [Delivery.from_doc(row[0]) for row in rows]

def _in_due_order(rows: list[tuple[Any, ...]]) -> list[Post]:
    return sorted((Post.from_doc(row[0]) for row in rows), key=lambda p: (p.due_at, p.id))


def _delivery_columns(delivery: Delivery) -> tuple[Any, ...]:
    """What a delivery's row holds beside its document, then the document."""
    return (delivery.webhook_id, delivery.finished, delivery.next_attempt_at, delivery.claimed_until,
            Jsonb(delivery.to_doc()))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def _columns(post: Post) -> tuple[Any, ...]:
    """The row of a post: the columns queries use, then the whole document."""
    return (post.id, post.account_id, post.status, post.due_at, post.ready_at, post.sending_since, post.claimed_by,
            post.claim_token, post.claimed_at, post.finished, Jsonb(post.to_doc()))
