"""The embedded store: TinyDB tables in one JSON file, made safe for several processes.

TinyDB alone writes in place (a crash truncates the file) and knows nothing of
other processes. Here TinyDB works on an in-memory snapshot; every write goes
through `transaction()`, which
- holds an OS file lock, so one process writes at a time,
- reloads the snapshot if another process replaced the file since we read it,
- commits by atomically replacing the file (temp file, fsync, rename, fsync).

Finished posts and events do not stay in the main file: they are appended to
JSON-lines logs whose committed length the main file records, so the main file
holds only the live queue and a write costs the same with 1k or 100k posts in
the history.
"""
from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from bot.crypto import TokenCipher
from bot.models import SCHEDULED, SENDING, Account, Post, to_iso, utcnow
from bot.store.files import AppendLog, atomic_write, decode, encode

SCHEMA_VERSION = 1
TABLES = ("accounts", "posts", "schedules", "meta")
_META_ID = 1


def _ready_at(doc: dict[str, Any]) -> str:
    """When a scheduled post may go: its due time, or its retry time if that is later (ISO, UTC)."""
    retry = doc.get("next_attempt_at")
    return doc["due_at"] if retry is None or retry <= doc["due_at"] else retry


class _QueueIndex:
    """What the once-a-second questions need from one state of the posts table.

    Built once per state (a reload, or a change in a transaction), so asking
    "what is due?" or "what is sending?" of an unchanged queue costs a bisect,
    not a scan of thousands of documents.
    """

    def __init__(self, posts: dict[str, Any] | None, version: int) -> None:
        self.posts, self.version = posts, version
        items = (posts or {}).items()
        ready = sorted((_ready_at(doc), int(key)) for key, doc in items if doc["status"] == SCHEDULED)
        self.ready_at = [at for at, _ in ready]
        self.ready_ids = [doc_id for _, doc_id in ready]
        self.sending = [int(key) for key, doc in items if doc["status"] == SENDING]

    def fits(self, posts: dict[str, Any] | None, version: int) -> bool:
        return posts is self.posts and version == self.version

    def due_ids(self, by: str) -> list[int]:
        """Ids of scheduled posts whose due and retry times have come by `by`."""
        return self.ready_ids[:bisect_right(self.ready_at, by)]


class StoreError(Exception):
    """The store file cannot be read or written."""


class _Snapshot(Storage):
    """TinyDB storage over the store's in-memory tables; a write only marks them dirty."""

    def __init__(self, owner: TinyStore) -> None:
        self.owner = owner

    def read(self) -> dict[str, Any]:
        return self.owner._tables

    def write(self, data: dict[str, Any]) -> None:
        self.owner._tables = data
        self.owner._dirty = True
        self.owner._posts_version += 1


class TinyStore:
    """The repository over TinyDB; see `bot.store.Repository` for the contract."""

    def __init__(self, path: Path | str, cipher: TokenCipher) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cipher = cipher
        self._file_lock = FileLock(str(self.path) + ".lock")
        self._mutex = threading.RLock()
        self._depth = 0
        self._stamp: tuple[int, int, int] | None = None
        self._tables: dict[str, Any] = {}
        self._dirty = False
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._posts_version = 0  # bumped on every in-place change of the tables
        self._index: _QueueIndex | None = None
        self._logs = {"history": AppendLog(self.path.with_suffix(".history.jsonl")),
                      "events": AppendLog(self.path.with_suffix(".events.jsonl"))}
        self._db = TinyDB(self, storage=_Snapshot)

    # -- transactions -------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run a read-modify-write as one unit: all of it is committed, or none."""
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self._file_lock:
                self._begin()
                try:
                    yield
                    self._commit()
                except BaseException:
                    self._stamp = None  # drop the uncommitted snapshot: reload on next use
                    raise
                finally:
                    self._depth = 0

    def _begin(self) -> None:
        self._refresh()
        for name, log in self._logs.items():
            log.discard_after(self._committed(name))
        self._depth, self._dirty, self._pending = 1, False, {name: [] for name in self._logs}

    def _commit(self) -> None:
        meta = dict(self._meta())
        for name, records in self._pending.items():
            if records:
                meta[f"{name}_bytes"] = self._logs[name].append(records)
                self._dirty = True
        if not self._dirty:
            return
        self._table("meta").upsert(Document(meta, doc_id=_META_ID))
        atomic_write(self.path, encode(self._tables))
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _refresh(self) -> None:
        """Reload the snapshot if the file changed since we read it (or we never did)."""
        stamp = self._stat()
        if stamp is not None and stamp == self._stamp:
            return
        if stamp is None:
            self._tables = {"meta": {str(_META_ID): {"schema_version": SCHEMA_VERSION}}}
        else:
            try:
                self._tables = decode(self.path.read_bytes())
            except (ValueError, OSError) as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from exc
        self._stamp = stamp

    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._mutex:
            if not self._depth:
                self._refresh()
            yield

    def _table(self, name: str) -> Table:
        return self._db.table(name, cache_size=0)

    def _meta(self) -> dict[str, Any]:
        return self._table("meta").get(doc_id=_META_ID) or {"schema_version": SCHEMA_VERSION}

    def _committed(self, log: str) -> int:
        return int(self._meta().get(f"{log}_bytes", 0))

    # -- locks ----------------------------------------------------------------

    def lease(self, name: str) -> FileLock:
        """A lock one process holds for as long as it does a job only one may do (posting)."""
        return FileLock(str(self.path) + f".{name}.lock", thread_local=False)

    def account_lock(self, user_id: str, timeout: float = -1) -> FileLock:
        """A lock for one account across processes (held around a token refresh)."""
        folder = self.path.parent / "locks"
        folder.mkdir(exist_ok=True)
        return FileLock(str(folder / f"account-{user_id}.lock"), timeout=timeout)

    # -- meta -------------------------------------------------------------------

    def schema_version(self) -> int:
        with self._reading():
            return int(self._meta()["schema_version"])

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._reading():
            return self._meta().get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction():
            meta = dict(self._meta())
            meta[key] = value
            self._table("meta").upsert(Document(meta, doc_id=_META_ID))

    # -- accounts ---------------------------------------------------------------

    def _seal(self, account: Account) -> dict[str, Any]:
        doc = account.to_doc()
        doc["access_token"] = self._cipher.encrypt(account.access_token)
        doc["refresh_token"] = self._cipher.encrypt(account.refresh_token)
        return doc

    def _unseal(self, doc: dict[str, Any]) -> Account:
        account: Account = Account.from_doc(doc)
        account.access_token = self._cipher.decrypt(doc.get("access_token"))
        account.refresh_token = self._cipher.decrypt(doc.get("refresh_token"))
        return account

    def get_account(self, user_id: str) -> Account | None:
        with self._reading():
            doc = self._table("accounts").get(doc_id=int(user_id))
            return None if doc is None else self._unseal(dict(doc))

    def find_account(self, handle: str) -> Account | None:
        """An account by user id, username or @username (case-insensitive)."""
        name = handle.lstrip("@").lower()
        for account in self.list_accounts():
            if name in (account.user_id, account.username.lower()):
                return account
        return None

    def list_accounts(self) -> list[Account]:
        with self._reading():
            docs = [dict(doc) for doc in self._table("accounts").all()]
        return sorted((self._unseal(doc) for doc in docs), key=lambda a: a.username.lower())

    def save_account(self, account: Account) -> None:
        with self.transaction():
            self._table("accounts").upsert(Document(self._seal(account), doc_id=int(account.user_id)))

    def update_account(self, user_id: str, **changes: Any) -> Account:
        """Change some fields of an account in one transaction; returns it as stored."""
        with self.transaction():
            account = self.get_account(user_id)
            if account is None:
                raise KeyError(f"no account {user_id}")
            account = replace(account, **changes)
            self.save_account(account)
            return account

    def delete_account(self, user_id: str) -> None:
        with self.transaction():
            self._table("accounts").remove(doc_ids=[int(user_id)])

    # -- posts ------------------------------------------------------------------

    def add_posts(self, posts: list[Post]) -> list[Post]:
        """Queue posts in one transaction, all or none; ids are assigned here.

        A post that is already finished (say, one recorded after the fact) goes
        straight to the history.
        """
        with self.transaction():
            next_id = int(self._meta().get("next_post_id", 1))
            stored = []
            for offset, post in enumerate(posts):
                post = replace(post, id=next_id + offset, created_at=post.created_at or utcnow())
                stored.append(post)
            self._table("posts").insert_multiple(
                Document(post.to_doc(), doc_id=post.id) for post in stored if not post.finished)
            self._pending["history"].extend(post.to_doc() for post in stored if post.finished)
            self._set_meta_in_tx("next_post_id", next_id + len(stored))
            return stored

    def _set_meta_in_tx(self, key: str, value: Any) -> None:
        meta = dict(self._meta())
        meta[key] = value
        self._table("meta").upsert(Document(meta, doc_id=_META_ID))

    def get_post(self, post_id: int) -> Post | None:
        """A post from the queue, or from the history if it is finished."""
        with self._reading():
            doc = self._table("posts").get(doc_id=int(post_id))
            if doc is not None:
                return Post.from_doc(dict(doc))
            committed = self._committed("history")
        for record in self._logs["history"].read_newest(committed):
            if record["id"] == int(post_id):
                return Post.from_doc(record)
        return None

    def queued_posts(self, account_id: str | None = None, due_by: datetime | None = None) -> list[Post]:
        """Unfinished posts (scheduled or sending), earliest due first.

        With `due_by`, only scheduled posts whose time (and retry time) has come by
        then. The worker asks that every second with thousands of posts queued, so
        it is answered from the queue index: nothing is scanned or parsed while
        the queue is unchanged and nothing is due.
        """
        with self._reading():
            if due_by is None:
                docs = list(self._tables.get("posts", {}).values())
            else:
                docs = self._docs(self._queue_index().due_ids(str(to_iso(due_by))))
            return self._posts(docs, account_id)

    def sending_posts(self, account_id: str | None = None) -> list[Post]:
        """Posts being sent (status `sending`), earliest due first; as cheap as `queued_posts(due_by=…)`."""
        with self._reading():
            return self._posts(self._docs(self._queue_index().sending), account_id)

    def _queue_index(self) -> _QueueIndex:
        posts = self._tables.get("posts")
        if self._index is None or not self._index.fits(posts, self._posts_version):
            self._index = _QueueIndex(posts, self._posts_version)
        return self._index

    def _docs(self, doc_ids: list[int]) -> list[dict[str, Any]]:
        posts = self._tables.get("posts", {})
        return [posts[str(doc_id)] for doc_id in doc_ids]

    @staticmethod
    def _posts(docs: list[dict[str, Any]], account_id: str | None) -> list[Post]:
        chosen = (Post.from_doc(dict(doc)) for doc in docs if account_id is None or doc["account_id"] == account_id)
        return sorted(chosen, key=lambda p: (p.due_at, p.id))

    def update_post(self, post_id: int, **changes: Any) -> Post:
        """Change a queued post; one that becomes finished moves to the history log."""
        with self.transaction():
            doc = self._table("posts").get(doc_id=int(post_id))
            if doc is None:
                raise KeyError(f"no queued post {post_id}")
            post = replace(Post.from_doc(dict(doc)), **changes)
            if post.finished:
                del self._tables["posts"][str(post.id)]
                self._dirty = True
                self._posts_version += 1
                self._pending["history"].append(post.to_doc())
            else:
                self._replace_doc("posts", post.id, post.to_doc())
            return post

    def _replace_doc(self, table: str, doc_id: int, doc: dict[str, Any]) -> None:
        """Replace one document in place: TinyDB's `update` rebuilds the whole table for each
        change, which the worker cannot afford per post with thousands queued."""
        self._tables[table][str(doc_id)] = doc
        self._dirty = True
        self._posts_version += 1

    def history(self, limit: int = 50, account_id: str | None = None) -> list[Post]:
        """Finished posts, most recently finished first."""
        with self._reading():
            committed = self._committed("history")
        found: list[Post] = []
        for record in self._logs["history"].read_newest(committed):
            if account_id is None or record["account_id"] == account_id:
                found.append(Post.from_doc(record))
                if len(found) >= limit:
                    break
        return found

    # -- schedules -----------------------------------------------------------------

    def get_schedule(self, account_id: str) -> dict[str, Any] | None:
        with self._reading():
            doc = self._table("schedules").get(doc_id=int(account_id))
            return None if doc is None else dict(doc)

    def save_schedule(self, account_id: str, schedule: dict[str, Any]) -> None:
        with self.transaction():
            self._table("schedules").upsert(Document(schedule, doc_id=int(account_id)))

    # -- events ------------------------------------------------------------------

    def record_event(self, kind: str, account_id: str | None = None, post_id: int | None = None,
                     detail: str | None = None, at: datetime | None = None) -> None:
        """Append to the audit trail (committed with the transaction it belongs to)."""
        event = {"at": to_iso(at or utcnow()), "kind": kind, "account_id": account_id,
                 "post_id": post_id, "detail": detail}
        with self.transaction():
            self._pending["events"].append(event)

    def events(self, limit: int = 100, kind: str | None = None,
               account_id: str | None = None) -> list[dict[str, Any]]:
        """The newest events first."""
        with self._reading():
            committed = self._committed("events")
        found = []
        for event in self._logs["events"].read_newest(committed):
            if (kind is None or event["kind"] == kind) and (account_id is None or event["account_id"] == account_id):
                found.append(event)
                if len(found) >= limit:
                    break
        return found
