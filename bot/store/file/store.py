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
the history. The webhooks' outbox lives in the main file too, bounded the same
way: its unfinished deliveries, and only the newest `KEPT_DELIVERIES` finished
ones (the delivery log); older finished ones are dropped as others finish.

Damage is refused, never repaired: a main file missing beside non-empty logs, a
main file that does not parse, or a log shorter than its committed length raises
`StoreDamaged` and nothing is written or truncated. (The first commit writes an
empty main file before it appends to a log, so logs without a main file can only
mean the main file was lost.) The only bytes ever cut are those past a log's
committed length: a transaction that never committed wrote them.
"""
from __future__ import annotations

import os
import secrets
import sys
import threading
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from filelock import FileLock
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from bot.crypto import TokenCipher, TokenKeyError
from bot.models import ACTIVE, FAILED, POSTED, SCHEDULED, SENDING, Account, Post, from_iso, ready_time, to_iso, utcnow
from bot.store.errors import ClaimLost, RecordMissing, StoreDamaged, StoreError
from bot.store.file.locks import FileHeldLock
from bot.store.file.media_folder import MediaFolder
from bot.store.files import PRIVATE, AppendLog, atomic_write, create_private, decode, encode
from bot.store.locks import Lock, LockTimeout
from bot.store.records import (
    KEPT_DELIVERIES,
    REQUEUED_EVENT,
    TAKE_OVER_EVENT,
    BackupSummary,
    Claim,
    Delivery,
    Event,
    KeptAnswer,
    Reading,
    StoreContents,
    Webhook,
    changed_delivery,
    changed_post,
    claimable,
    earlier_facts,
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

SCHEMA_VERSION = 1  # the file store's layout; its media folder needed no new version (absent: no media)
_META_ID = 1
Stamp = tuple[int, int, int]


def _stamp(st: os.stat_result) -> Stamp:
    """What tells one version of the main file from another: identity, modification time, size."""
    return (st.st_ino, st.st_mtime_ns, st.st_size)


LOGS = ("history", "events", "readings")  # finished posts, the audit trail, what reads of posts found


def log_path(store_path: Path, name: str) -> Path:
    """Where a file store keeps its log `name`: `tweetbot.history.jsonl` beside `tweetbot.json`."""
    return Path(store_path).with_suffix(f".{name}.jsonl")


def media_folder(store_path: Path) -> Path:
    """Where a file store keeps its media: `tweetbot.media/` beside `tweetbot.json`."""
    return Path(store_path).with_suffix(".media")


def empty_tables() -> dict[str, Any]:
    """A new store: only the schema version."""
    return {"meta": {str(_META_ID): {"schema_version": SCHEMA_VERSION}}, "noted": {}}


def _finished_ids(deliveries: dict[str, Any]) -> list[int]:
    """The ids of the finished deliveries among `deliveries` (the outbox table), oldest first."""
    return sorted(int(key) for key, doc in deliveries.items() if doc.get("delivered_at") or doc.get("given_up_at"))


def _finished(record: dict[str, Any], noted: dict[str, dict[str, Any]]) -> Post:
    """A history record as a post, with what was noted of it since it finished (`requeued_as`)."""
    facts = noted.get(str(record["id"]))
    return Post.from_doc(record if facts is None else {**record, **facts})


class _QueueIndex:
    """What the once-a-second questions need from one state of the posts table.

    Built once per state (a reload, or a change in a transaction), so asking
    "what is due?" or "what is sending?" of an unchanged queue costs a bisect,
    not a scan of thousands of documents.
    """

    def __init__(self, posts: dict[str, Any] | None, version: int) -> None:
        self.posts, self.version = posts, version
        items = (posts or {}).items()
        ready = sorted((ready_time(doc["due_at"], doc.get("next_attempt_at")), int(key))
                       for key, doc in items if doc["status"] == SCHEDULED)
        self.ready_at = [at for at, _ in ready]
        self.ready_ids = [doc_id for _, doc_id in ready]
        self.sending = [int(key) for key, doc in items if doc["status"] == SENDING]
        self._parsed: list[Post] | None = None

    def is_parsed(self) -> bool:
        return self._parsed is not None

    def parsed(self) -> list[Post]:
        """Every queued post, parsed once for this state, earliest due first (posts are frozen, so the
        dashboard's many readers of an unchanged queue of thousands share one parse)."""
        if self._parsed is None:
            self._parsed = sorted((Post.from_doc(dict(doc)) for doc in (self.posts or {}).values()),
                                  key=lambda p: (p.due_at, p.id))
        return self._parsed

    def fits(self, posts: dict[str, Any] | None, version: int) -> bool:
        return posts is self.posts and version == self.version

    def due_ids(self, by: str) -> list[int]:
        """Ids of scheduled posts whose due and retry times have come by `by`."""
        return self.ready_ids[:bisect_right(self.ready_at, by)]


class _LogTally:
    """Counts of a log's records by `key`, carried forward from the committed length last counted.

    A log only grows (what is cut is an uncommitted tail, never a committed record), so each
    call reads just the records committed since the last: /metrics, scraped every few seconds,
    does not read 100,000 finished posts each time. A caller whose snapshot is older than what
    was counted (another thread got there first) gets the counts at its own length: the few
    records in between are read and taken off. A log that is another file now (a restored
    store) is counted afresh.
    """

    def __init__(self, key: Callable[[dict[str, Any]], tuple[Any, ...]]) -> None:
        self.key = key
        self.counts: Counter[tuple[Any, ...]] = Counter()
        self.file: tuple[int, int] | None = None  # the log's (device, inode) when counted
        self.counted = 0  # bytes counted
        self.lock = threading.Lock()  # its own: a first count of a long log does not hold the store's mutex

    def at(self, log: AppendLog, committed: int) -> Counter[tuple[Any, ...]]:
        """The counts of the records up to `committed` (a record boundary), as a new Counter."""
        with self.lock:
            file = _identity(log.path)
            if file != self.file:
                self.counts, self.file, self.counted = Counter(), file, 0
            if committed < self.counted:
                return self.counts - Counter(self.key(r) for r in log.read_from(committed, self.counted))
            for record in log.read_from(self.counted, committed):
                self.counts[self.key(record)] += 1
            self.counted = committed
            return Counter(self.counts)


class _NewestReadings:
    """Each post's newest reading in the readings log, carried forward as `_LogTally` carries its counts:
    each call reads only the records committed since the last (a log another file now is read afresh,
    and so is one a caller sees shorter than what was read: another thread's newer snapshot)."""

    def __init__(self) -> None:
        self.newest: dict[int, dict[str, Any]] = {}
        self.file: tuple[int, int] | None = None
        self.read = 0
        self.lock = threading.Lock()

    def at(self, log: AppendLog, committed: int) -> dict[int, dict[str, Any]]:
        """{post id: its newest reading's record} as of `committed` bytes of the log."""
        with self.lock:
            file = _identity(log.path)
            if file != self.file or committed < self.read:
                self.newest, self.file, self.read = {}, file, 0
            for record in log.read_from(self.read, committed):
                self.newest[int(record["post_id"])] = record
            self.read = max(self.read, committed)
            return dict(self.newest)


def _identity(path: Path) -> tuple[int, int] | None:
    """A file's (device, inode), or None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


@dataclass
class StoreMoment:
    """The store at one committed moment: the main file's bytes, each log open at its start and its length,
    and the media files stored by then with their stored times (read after: a media file never changes)."""

    main: bytes
    logs: dict[str, BinaryIO | None]
    lengths: dict[str, int]
    media: dict[str, datetime]


class _Snapshot(Storage):
    """TinyDB storage over the store's in-memory tables; a write only marks them dirty."""

    def __init__(self, owner: TinyStore) -> None:
        self.owner = owner

    def read(self) -> dict[str, Any]:
        return self.owner._tables

    def write(self, data: dict[str, Any]) -> None:
        # TinyDB writes a table it changed as a new dict, so the queue index (which keeps the
        # posts dict it was built from) notices a change of the posts, and ignores one of meta.
        self.owner._tables = data
        self.owner._dirty = True


class TinyStore:
    """The repository over TinyDB; see `bot.store.Repository` for the contract."""

    def __init__(self, path: Path | str, cipher: TokenCipher) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cipher = cipher
        self._file_lock = FileLock(str(self.path) + ".lock", mode=PRIVATE)
        self._mutex = threading.RLock()
        self._depth = 0
        self._stamp: Stamp | None = None
        self._broken: tuple[Stamp, StoreDamaged] | None = None  # a main file that did not parse, by identity
        self._verified: tuple[Any, BaseException | None] | None = None
        self._tables: dict[str, Any] = {}
        self._dirty = False
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._posts_version = 0  # bumped on every change made in place to the posts table
        self._index: _QueueIndex | None = None
        self._logs = {name: AppendLog(log_path(self.path, name)) for name in LOGS}
        self._tallies = {"history": _LogTally(lambda doc: (doc["account_id"], doc["status"])),
                         "events": _LogTally(lambda doc: (doc["account_id"], doc["kind"]))}
        self._readings = _NewestReadings()
        self.media = MediaFolder(media_folder(self.path), Path(str(self.path) + ".media.lock"))
        self._rates_path = Path(str(self.path) + ".rates")
        self._rates_lock = FileLock(str(self._rates_path) + ".lock", mode=PRIVATE)
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
        self._check_logs()
        for name, log in self._logs.items():
            log.discard_after(self._committed(name))
        self._depth, self._dirty, self._pending = 1, False, {name: [] for name in self._logs}

    def _commit(self) -> None:
        meta = dict(self._meta())
        if self._stamp is None and any(self._pending.values()):
            atomic_write(self.path, encode(empty_tables()))  # see the module's docstring
        for name, records in self._pending.items():
            if records:
                meta[f"{name}_bytes"] = self._logs[name].append(records)
                self._dirty = True
        if not self._dirty:
            return
        self._table("meta").upsert(Document(meta, doc_id=_META_ID))
        self._stamp = _stamp(atomic_write(self.path, encode(self._tables)))

    def _stat(self) -> Stamp | None:
        try:
            return _stamp(self.path.stat())
        except FileNotFoundError:
            return None

    def _refresh(self) -> None:
        """Reload the snapshot if the file changed since we read it (or we never did).

        A damaged store raises `StoreDamaged` and leaves the snapshot as it was; a main
        file that did not parse is remembered by its identity, so asking again is a stat.
        """
        stamp = self._stat()
        if stamp is not None and stamp == self._stamp:
            return
        if stamp is None:
            self._check_no_orphan_logs()
            tables = empty_tables()
        elif self._broken is not None and self._broken[0] == stamp:
            raise self._broken[1].with_traceback(None)
        else:
            tables = self._load(stamp)
        previous, self._tables = self._tables, tables
        try:
            self._check_logs()
        except StoreDamaged:
            self._tables = previous
            raise
        self._stamp = stamp

    def _load(self, stamp: Stamp) -> dict[str, Any]:
        """The main file's tables, or `StoreDamaged` naming it."""
        try:
            tables = decode(self.path.read_bytes())
            if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
                raise ValueError("it is not a JSON object of tables")
        except FileNotFoundError:
            raise StoreError(f"the store file {self.path} vanished while being read; try again") from None
        except (ValueError, OSError) as exc:
            damage = StoreDamaged(f"the store file {self.path} cannot be read ({exc})")
            self._broken = (stamp, damage)
            raise damage from None
        return tables

    def _check_no_orphan_logs(self) -> None:
        """No main file is a new store only if no log holds anything either."""
        held = {log.path.name: log.size() for log in self._logs.values() if log.size()}
        if held:
            sizes = ", ".join(f"{name} {size:,} bytes" for name, size in held.items())
            raise StoreDamaged(f"the store file {self.path} is missing but its logs hold data ({sizes})")

    def _check_logs(self) -> None:
        """Every log holds at least the bytes the main file says were committed."""
        for name, log in self._logs.items():
            committed, size = self._committed(name), log.size()
            if size < committed:
                raise StoreDamaged(f"the store log {log.path} is shorter ({size:,} bytes) than the "
                                   f"{committed:,} bytes {self.path.name} says were committed")

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

    # -- health -----------------------------------------------------------------

    def verify(self) -> None:
        """Raise `StoreDamaged` or `TokenKeyError` unless the store can be used as it is on disk.

        Checks the main file, that each log holds its committed bytes and ends in a whole
        record, and that TOKEN_KEY decrypts a stored token. The verdict is remembered for
        the files' identity, so calling this on every request costs three stats.
        """
        with self._mutex:
            key = (self._stat(), tuple(log.size() for log in self._logs.values()))
            if self._verified is not None and self._verified[0] == key:
                if self._verified[1] is not None:
                    raise self._verified[1].with_traceback(None)
                return
            try:
                self._check_whole()
            except (StoreDamaged, TokenKeyError) as exc:
                self._verified = (key, exc)
                raise
            if self._note_earlier_facts():
                key = (self._stat(), tuple(log.size() for log in self._logs.values()))
            self._verified = (key, None)

    def _note_earlier_facts(self) -> bool:
        """A store written by an earlier version kept two facts of its failed posts only in words (see
        `bot.store.records.earlier_facts`): write them once into the `noted` table; whether it did."""
        with self._reading():
            if "noted" in self._tables or self._stat() is None:
                return False
        with self.transaction():
            if "noted" not in self._tables:
                self._tables["noted"] = earlier_facts(self.history(limit=sys.maxsize),
                                                      self.events(limit=sys.maxsize, kind=REQUEUED_EVENT))
                self._dirty = True
        return True

    def _check_whole(self) -> None:
        with self._reading():
            self._check_logs()
            for name, log in self._logs.items():
                try:
                    log.check_tail(self._committed(name))
                except ValueError as exc:
                    raise StoreDamaged(f"the store log {log.path} is damaged ({exc})") from None
            sealed = first_sealed_token(list(self._tables.get("accounts", {}).values()))
        self._cipher.decrypt(sealed)

    @contextmanager
    def moment(self) -> Iterator[StoreMoment]:
        """The committed store as of now, for a backup: taken under the transaction lock.

        The main file's bytes are read and each log is opened while the lock is held;
        the logs' bytes are read after it is released (the caller reads within the
        `with`): below its committed length a log never changes, so the worker waits
        for a backup only as long as it takes to read the main file.
        """
        with self._mutex, self._file_lock:
            self._refresh()
            self._check_logs()
            main = self.path.read_bytes() if self.path.exists() else encode(empty_tables())
            logs = {name: (log.open_committed(self._committed(name)), self._committed(name))
                    for name, log in self._logs.items()}
            media = self.media_digests()  # every file a post of this moment needs was put before it
        try:
            yield StoreMoment(main, {name: opened for name, (opened, _) in logs.items()},
                              {name: committed for name, (_, committed) in logs.items()}, media)
        finally:
            for opened, _ in logs.values():
                if opened is not None:
                    opened.close()

    def backup(self, target: Path) -> BackupSummary:
        """Write the store as of now to the archive `target` (see `bot.store.file.backup`)."""
        from bot.store.file.backup import write_backup

        self.verify()
        return write_backup(self, target)

    # -- copying -------------------------------------------------------------------

    _OWN_META = frozenset({"schema_version", "next_post_id", "history_bytes", "events_bytes", "readings_bytes",
                           "next_webhook_id",
                           "next_delivery_id"})

    def dump(self) -> StoreContents:
        """Everything the store holds, at one committed moment (under its lock)."""
        with self.transaction():
            return StoreContents(
                accounts=[dict(doc) for doc in self._tables.get("accounts", {}).values()],
                queue=self.queued_posts(),
                history=list(reversed(self.history(limit=sys.maxsize))),
                schedules={key: dict(doc) for key, doc in self._tables.get("schedules", {}).items()},
                events=list(reversed(self.events(limit=sys.maxsize))),
                meta={k: v for k, v in self._meta().items() if k not in self._OWN_META},
                media=self.media_digests(), read_media=self.get_media,
                webhooks=[dict(doc) for _, doc in sorted(self._rows("webhooks").items(), key=lambda kv: int(kv[0]))],
                deliveries=self.deliveries(limit=sys.maxsize)[::-1],
                readings=[Reading.from_doc(doc) for doc in self._newest_readings().values()])

    def load(self, contents: StoreContents) -> None:
        """Fill an empty store with `contents`, ids kept, in one transaction (`StoreError` if not empty).

        The media files go first, one at a time, each with its stored time; if anything
        fails (the commit too), the files this load created are removed again, so a failed
        load leaves nothing behind.
        """
        created: list[str] = []
        try:
            with self.transaction():
                if not self.dump().empty:
                    raise StoreError(f"the store {self.path} is not empty: copy only into an empty store")
                self._load_media(contents, created)
                self._load_records(contents)
        except BaseException:
            self.media.delete(created)
            raise

    def _load_media(self, contents: StoreContents, created: list[str]) -> None:
        """Each file of `contents` into the media folder; `created` collects those that were not there."""
        had = set(self.media_digests())
        for digest, stored_at in contents.media.items():
            if digest not in had:
                created.append(digest)
            self.media.put(contents.read_media(digest), stored_at)

    def _load_records(self, contents: StoreContents) -> None:
        """The records of `contents`, into this (empty) store's open transaction."""
        for doc in contents.accounts:
            self._table("accounts").insert(Document(dict(doc), doc_id=int(doc["user_id"])))
        for account_id, doc in contents.schedules.items():
            self._table("schedules").insert(Document(dict(doc), doc_id=int(account_id)))
        self._table("posts").insert_multiple(Document(post.to_doc(), doc_id=post.id) for post in contents.queue)
        self._posts_version += 1
        self._pending["history"].extend(post.to_doc() for post in contents.history)
        self._pending["events"].extend(event.to_doc() for event in contents.events)
        self._pending["readings"].extend(reading.to_doc() for reading in contents.readings)
        for key, value in contents.meta.items():
            self._set_meta_in_tx(key, value)
        last = max((post.id for post in [*contents.queue, *contents.history]), default=0)
        self._set_meta_in_tx("next_post_id", last + 1)
        self._load_webhooks(contents)

    def _load_webhooks(self, contents: StoreContents) -> None:
        """The subscriptions (secrets still sealed) and their outbox, ids kept, into the open transaction."""
        self._tables["webhooks"] = {str(doc["id"]): dict(doc) for doc in contents.webhooks}
        self._tables["deliveries"] = {str(d.id): d.to_doc() for d in contents.deliveries}
        self._set_meta_in_tx("next_webhook_id", max((int(doc["id"]) for doc in contents.webhooks), default=0) + 1)
        self._set_meta_in_tx("next_delivery_id", max((d.id for d in contents.deliveries), default=0) + 1)
        self._dirty = True

    def close(self) -> None:
        """Nothing to release: every file is opened and closed within one call."""

    # -- locks ----------------------------------------------------------------

    def posting_turn(self) -> FileHeldLock:
        """One process posts at a time: the one holding the posting lease."""
        return self.lease("posting")


    def lease(self, name: str, stop: Callable[[], bool] | None = None) -> FileHeldLock:
        """A lock one process holds for as long as it does a job only one may do (posting, maintenance)."""
        return FileHeldLock(str(self.path) + f".{name}.lock", thread_local=False, stop=stop)

    def account_lock(self, user_id: str, timeout: float = -1,
                     stop: Callable[[], bool] | None = None) -> FileHeldLock:
        """A lock for one account across processes (held around a token refresh)."""
        folder = self.path.parent / "locks"
        folder.mkdir(exist_ok=True)
        return FileHeldLock(str(folder / f"account-{user_id}.lock"), timeout=timeout, stop=stop)

    def take_free_account_locks(self, user_ids: Iterable[str]) -> dict[str, Lock]:
        taken: dict[str, Lock] = {}
        try:
            for user_id in user_ids:
                lock = self.account_lock(user_id)
                try:
                    lock.acquire(timeout=0)
                except LockTimeout:
                    continue
                taken[user_id] = lock
        except BaseException:
            for held in taken.values():  # none is left held by a call that failed
                held.release()
            raise
        return taken

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
        return seal_account(account, self._cipher)

    def _unseal(self, doc: dict[str, Any]) -> Account:
        return unseal_account(doc, self._cipher)

    def get_account(self, user_id: str) -> Account | None:
        with self._reading():
            doc = self._table("accounts").get(doc_id=int(user_id))
            return None if doc is None else self._unseal(dict(doc))

    def get_accounts(self, user_ids: Iterable[str]) -> list[Account]:
        with self._reading():
            table = self._table("accounts")
            docs = [table.get(doc_id=int(user_id)) for user_id in user_ids if user_id.isdigit()]
            return [self._unseal(dict(doc)) for doc in docs if doc is not None]

    def find_account(self, handle: str) -> Account | None:
        """An account by user id, username or @username (case-insensitive); matched on the documents."""
        name = handle.lstrip("@").lower()
        with self._reading():
            for key, doc in self._tables.get("accounts", {}).items():
                if name in (key, str(doc.get("username", "")).lower()):
                    return self._unseal(dict(doc))
        return None

    def expiring_accounts(self, by: datetime, among: Iterable[str] | None = None) -> list[Account]:
        wanted = None if among is None else set(among)
        limit = to_iso(by) or ""  # stored times are ISO of one width: they compare as strings, undecrypted
        with self._reading():
            docs = [dict(doc) for doc in self._table("accounts").all() if doc.get("status") == ACTIVE and
                    (wanted is None or doc["user_id"] in wanted) and
                    (doc.get("expires_at") is None or doc["expires_at"] <= limit)]
        return [self._unseal(doc) for doc in docs]

    def list_accounts(self) -> list[Account]:
        with self._reading():
            docs = [dict(doc) for doc in self._table("accounts").all()]
        return sorted((self._unseal(doc) for doc in docs), key=lambda a: a.username.lower())

    def save_account(self, account: Account) -> None:
        with self.transaction():
            self._table("accounts").upsert(Document(self._seal(account), doc_id=int(account.user_id)))

    def update_account(self, user_id: str, **changes: Any) -> Account:
        """Change some fields of an account in one transaction; returns it as stored.

        Tokens not changed stay sealed: no decryption, no re-encryption.
        """
        return update_account_in(self, user_id, changes)

    def replace_pair(self, spent: Account, event: Event, release: Lock | None = None,
                     **changes: Any) -> Account | None:
        return replace_pair_in(self, spent, event, changes)  # `release` is freed by its holder

    def delete_account(self, user_id: str) -> None:
        with self.transaction():
            self._table("accounts").remove(doc_ids=[int(user_id)])

    # -- posts ------------------------------------------------------------------

    def add_posts(self, posts: list[Post], run_key: str | None = None) -> list[Post]:
        """Queue posts in one transaction, all or none; ids are assigned here.

        A post that is already finished (say, one recorded after the fact) goes
        straight to the history. With `run_key`, only if no earlier call used that key
        (none queued: []); the key is kept with them, in the same transaction.
        """
        if not posts:
            return []
        with self.transaction():
            runs = self._tables.setdefault("generator_runs", {})
            if run_key is not None and run_key in runs:
                return []
            next_id = int(self._meta().get("next_post_id", 1))
            stored = []
            for offset, post in enumerate(posts):
                post = stamped_if_finished(replace(post, id=next_id + offset, created_at=post.created_at or utcnow()))
                stored.append(post)
            self._table("posts").insert_multiple(
                Document(post.to_doc(), doc_id=post.id) for post in stored if not post.finished)
            self._pending["history"].extend(post.to_doc() for post in stored if post.finished)
            self._set_meta_in_tx("next_post_id", next_id + len(stored))
            if run_key is not None:
                runs[run_key] = {"queued_at": to_iso(utcnow()), "post_id": stored[0].id}
                self._dirty = True
            return stored

    def forget_runs(self, before: datetime) -> int:
        """Forget the keys of generator runs queued before `before`; how many."""
        with self.transaction():
            runs = self._tables.get("generator_runs", {})
            cutoff = to_iso(before) or ""
            old = [key for key, run in runs.items() if run["queued_at"] < cutoff]
            for key in old:
                del runs[key]
            self._dirty = self._dirty or bool(old)
            return len(old)

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
            committed, noted = self._committed("history"), self._noted()
        for record in self._logs["history"].read_newest(committed):
            if record["id"] == int(post_id):
                return _finished(record, noted)
        return None

    def queued_posts(self, account_id: str | None = None, due_by: datetime | None = None) -> list[Post]:
        """Unfinished posts (scheduled or sending), earliest due first.

        With `due_by`, only scheduled posts whose time (and retry time) has come by
        then. The worker asks that every second with thousands of posts queued, so
        it is answered from the queue index: nothing is scanned or parsed while
        the queue is unchanged and nothing is due. The whole queue (the dashboard's
        question) is parsed once per state and shared; one account's posts are parsed
        alone until then.
        """
        with self._reading():
            index = self._queue_index()
            if due_by is None and (account_id is None or index.is_parsed()):
                return [p for p in index.parsed() if account_id in (None, p.account_id)]
            if due_by is None:  # one account's posts, of a queue not parsed whole since it changed
                return self._posts(list(self._tables.get("posts", {}).values()), account_id)
            return self._posts(self._docs(index.due_ids(str(to_iso(due_by)))), account_id)

    def sending_posts(self, account_id: str | None = None) -> list[Post]:
        """Posts being sent (status `sending`), earliest due first; as cheap as `queued_posts(due_by=…)`."""
        with self._reading():
            return self._posts(self._docs(self._queue_index().sending), account_id)

    def claim_due(self, account_id: str, now: datetime, limit: int, claimer: str,
                  post_id: int | None = None) -> list[Post]:
        """See `Repository.claim_due`: one transaction, under the store's lock."""
        claim = secrets.token_hex(8)
        with self.transaction():
            if self.sending_posts(account_id):
                return []
            due = [post for post in self.queued_posts(account_id, due_by=now) if post_id in (None, post.id)]
            claimed = []
            for post in due[:limit]:
                claimed.append(self.update_post(post.id, status=SENDING, sending_since=now, claimed_by=claimer,
                                                claim_token=claim, claimed_at=now))
                self.record_event("sending", account_id, post.id, detail=claimer, at=now)
            return claimed

    def claim_next(self, now: datetime, claimer: str, limit: int, skip: Iterable[str] = ()) -> Claim:
        """See `Repository.claim_next`: the accounts of the due posts in their due order, the first that
        can post claimed, in one transaction under the store's lock."""
        skipped = set(skip)
        with self.transaction():
            sending = {post.account_id for post in self.sending_posts()}
            ready = sorted(self.queued_posts(due_by=now),
                           key=lambda p: (max(p.due_at, p.next_attempt_at or p.due_at), p.id))
            for account_id in dict.fromkeys(post.account_id for post in ready):
                if account_id in skipped or account_id in sending or not self._can_post(account_id, now):
                    continue
                claimed = self.claim_due(account_id, now, limit, claimer)
                if claimed:
                    return Claim(claimed, self.get_account(account_id))
            return Claim([])

    def _can_post(self, account_id: str, now: datetime) -> bool:
        doc = self._table("accounts").get(doc_id=int(account_id)) if account_id.isdigit() else None
        if doc is None or doc.get("status") != ACTIVE:
            return False
        hold = doc.get("hold_until")
        return hold is None or hold <= to_iso(now)

    def due_accounts(self, now: datetime, limit: int | None = None) -> set[str]:
        """The accounts that can post (active, not held) with a scheduled post whose time has come (with
        `limit`: those of the `limit` posts due first)."""
        with self._reading():
            due = {post.account_id for post in self.queued_posts(due_by=now)[:limit]}
            return {account_id for account_id in due if self._can_post(account_id, now)}

    def take_over(self, post: Post, claimer: str, now: datetime, claimed_before: datetime) -> Post | None:
        """See `Repository.take_over`: decided and written in one transaction, under the store's lock."""
        with self.transaction():
            current = self.get_post(post.id)
            started = current.claim_started if current is not None else None
            if current is None or current.status != SENDING or current.claim_token != post.claim_token or \
                    started is None or started >= claimed_before:
                return None
            taken = self.update_post(post.id, claimed_by=claimer, claim_token=secrets.token_hex(8), claimed_at=now)
            self.record_event(TAKE_OVER_EVENT, post.account_id, post.id, detail=take_over_detail(current, claimer, now),
                              at=now)
            return taken

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

    def update_post(self, post_id: int, under_claim: str | None = None, event: Event | None = None,
                    **changes: Any) -> Post:
        """Change a queued post; one that becomes finished moves to the history log. With `under_claim`,
        only while it is `sending` under that claim (else `ClaimLost`, nothing changed)."""
        with self.transaction():
            doc = self._table("posts").get(doc_id=int(post_id))
            if doc is None:
                if under_claim is not None:
                    raise ClaimLost(f"post {post_id} is no longer queued")
                raise RecordMissing(f"no queued post {post_id}")
            if under_claim is not None and (doc["status"] != SENDING or doc.get("claim_token") != under_claim):
                raise ClaimLost(f"post {post_id} is no longer sending under that claim")
            post = changed_post(Post.from_doc(dict(doc)), changes)
            if post.finished:
                del self._tables["posts"][str(post.id)]
                self._dirty = True
                self._posts_version += 1
                self._pending["history"].append(post.to_doc())
            else:
                self._replace_doc("posts", post.id, post.to_doc())
            if event is not None:
                self.record_event(event.kind, event.account_id, event.post_id, event.detail, event.at)
            return post

    def _replace_doc(self, table: str, doc_id: int, doc: dict[str, Any]) -> None:
        """Replace one document in place: TinyDB's `update` rebuilds the whole table for each
        change, which the worker cannot afford per post with thousands queued."""
        self._tables[table][str(doc_id)] = doc
        self._dirty = True
        self._posts_version += 1

    def mark_requeued(self, post_id: int, new_id: int) -> None:
        """Kept in the main file's `noted` table ({post id: {field: value}}): the history is an append-only
        log, so a finished post's record is never rewritten; reads lay the table over it."""
        with self.transaction():
            post = self.get_post(post_id)
            if post is None or post.status != FAILED:
                raise RecordMissing(f"no failed post {post_id}")
            self._tables.setdefault("noted", {}).setdefault(str(int(post_id)), {})["requeued_as"] = int(new_id)
            self._dirty = True

    def _noted(self) -> dict[str, dict[str, Any]]:
        return self._tables.get("noted") or {}

    def kept_answer(self, key: str, since: datetime) -> KeptAnswer | None:
        """From the main file's `answers` table (inside a transaction, the store's lock keeps the key)."""
        with self._reading():
            doc = (self._tables.get("answers") or {}).get(key)
        kept = None if doc is None else KeptAnswer(doc["fingerprint"], doc["status"], doc["body"],
                                                   from_iso(doc["kept_at"]) or since)
        return kept if kept is not None and kept.kept_at >= since else None

    def keep_answer(self, key: str, answer: KeptAnswer) -> None:
        with self.transaction():
            self._tables.setdefault("answers", {})[key] = {
                "fingerprint": answer.fingerprint, "status": answer.status, "body": answer.body,
                "kept_at": to_iso(answer.kept_at)}
            self._dirty = True

    def forget_answers(self, before: datetime) -> int:
        cutoff = to_iso(before) or ""
        with self.transaction():
            answers = self._tables.get("answers") or {}
            old = [key for key, doc in answers.items() if doc["kept_at"] < cutoff]
            for key in old:
                del answers[key]
            self._dirty = self._dirty or bool(old)
            return len(old)

    def count_request(self, key_id: str, minute: datetime) -> int:
        """In a small file of its own beside the main file, under a lock of its own: a count is worth a
        minute, so it costs no rewrite of the main file and no fsync (a file torn by a crash counts anew)."""
        with self._rates_lock, os.fdopen(create_private(self._rates_path, os.O_RDWR), "r+b") as handle:
            try:
                rates = orjson.loads(handle.read() or b"{}")
            except orjson.JSONDecodeError:
                rates = {}
            stamp = to_iso(minute) or ""
            kept = rates.get(key_id)
            if kept is None or stamp > kept["minute"]:
                kept = {"minute": stamp, "count": 0}
            rates[key_id] = {"minute": kept["minute"], "count": kept["count"] + 1}
            handle.seek(0)
            handle.truncate()
            handle.write(orjson.dumps(rates))
            return int(rates[key_id]["count"])

    def history(self, limit: int = 50, account_id: str | None = None, status: str | None = None) -> list[Post]:
        """Finished posts, most recently finished first (the log read backwards, as far as `limit`)."""
        with self._reading():
            committed, noted = self._committed("history"), self._noted()
        found: list[Post] = []
        for record in self._logs["history"].read_newest(committed):
            if account_id in (None, record["account_id"]) and status in (None, record["status"]):
                found.append(_finished(record, noted))
                if len(found) >= limit:
                    break
        return found

    def post_counts(self) -> dict[tuple[str, str], int]:
        """The queue counted from the tables, the history from its tally (only new records are read)."""
        with self._reading():
            counts = Counter((doc["account_id"], doc["status"]) for doc in self._tables.get("posts", {}).values())
            committed = self._committed("history")
        counts.update(self._tallies["history"].at(self._logs["history"], committed))
        return dict(counts)

    # -- readings (bot.analytics) -------------------------------------------------

    def posted_since(self, since: datetime) -> list[Post]:
        """The history log read backwards until a post finished before `since` (a post is finished when
        it is posted, and the log is in the order posts finished)."""
        cutoff = to_iso(since) or ""
        with self._reading():
            committed, noted = self._committed("history"), self._noted()
        found: list[Post] = []
        for record in self._logs["history"].read_newest(committed):
            if (record.get("finished_at") or "") < cutoff:
                break
            if record["status"] == POSTED and (record.get("posted_at") or "") >= cutoff:
                found.append(_finished(record, noted))
        return sorted(found, key=lambda post: (post.posted_at, post.id))

    def add_readings(self, readings: list[Reading]) -> None:
        """Appended to the readings log: each read is kept, the newest of each post is what is asked for."""
        with self.transaction():
            self._pending["readings"].extend(reading.to_doc() for reading in readings)

    def readings(self, post_ids: Iterable[int]) -> dict[int, Reading]:
        newest = self._newest_readings()
        return {int(post_id): Reading.from_doc(newest[int(post_id)]) for post_id in post_ids
                if int(post_id) in newest}

    def reading_totals(self, read_since: datetime) -> dict[tuple[str, str], int]:
        """From the in-memory index of the newest readings (only what was appended since is read)."""
        cutoff = to_iso(read_since) or ""
        totals: Counter[tuple[str, str]] = Counter()
        for doc in self._newest_readings().values():
            if doc["read_at"] >= cutoff:
                for name, value in doc["metrics"].items():
                    totals[doc["account_id"], name] += int(value)
        return dict(totals)

    def _newest_readings(self) -> dict[int, dict[str, Any]]:
        with self._reading():
            committed = self._committed("readings")
        return self._readings.at(self._logs["readings"], committed)

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
        event = Event(at or utcnow(), kind, account_id, post_id, detail)
        with self.transaction():
            self._pending["events"].append(event.to_doc())

    def events(self, limit: int = 100, kind: str | None = None, account_id: str | None = None) -> list[Event]:
        """The newest events first."""
        with self._reading():
            committed = self._committed("events")
        found = []
        for doc in self._logs["events"].read_newest(committed):
            if (kind is None or doc["kind"] == kind) and (account_id is None or doc["account_id"] == account_id):
                found.append(Event.from_doc(doc))
                if len(found) >= limit:
                    break
        return found

    def event_counts(self, kinds: Iterable[str]) -> dict[tuple[str | None, str], int]:
        wanted = set(kinds)
        with self._reading():
            committed = self._committed("events")
        counts = self._tallies["events"].at(self._logs["events"], committed)
        return {key: number for key, number in counts.items() if key[1] in wanted}

    # -- media -------------------------------------------------------------------------

    def put_media(self, data: bytes) -> str:
        """Keep `data` as `<store>.media/<digest>` (atomic, 0600); renews the stored time of bytes kept."""
        return self.media.put(data)

    def get_media(self, digest: str) -> bytes:
        """The bytes of `digest`, checked against it (`RecordMissing`, `StoreDamaged`)."""
        return self.media.get(digest)

    def media_digests(self) -> dict[str, datetime]:
        """Every media file and when it was stored (its modification time)."""
        return self.media.digests()

    def delete_media(self, digests: Iterable[str], stored_before: datetime | None = None) -> int:
        """Delete the files of `digests` (those stored before `stored_before`, if given); how many."""
        return self.media.delete(digests, stored_before)

    # -- webhooks ------------------------------------------------------------------------

    def _rows(self, table: str) -> dict[str, Any]:
        """A table kept as a plain dict of documents (TinyDB's own writes rebuild a whole table per change)."""
        rows: dict[str, Any] = self._tables.setdefault(table, {})
        return rows

    def _next_id(self, key: str) -> int:
        next_id = int(self._meta().get(key, 1))
        self._set_meta_in_tx(key, next_id + 1)
        return next_id

    def add_webhook(self, url: str, events: Iterable[str], secret: str, at: datetime) -> Webhook:
        with self.transaction():
            webhook = Webhook(self._next_id("next_webhook_id"), url, tuple(events), secret, created_at=at)
            self._rows("webhooks")[str(webhook.id)] = seal_webhook(webhook, self._cipher)
            self._dirty = True
            return webhook

    def get_webhook(self, webhook_id: int) -> Webhook | None:
        with self._reading():
            doc = self._tables.get("webhooks", {}).get(str(int(webhook_id)))
            return None if doc is None else unseal_webhook(doc, self._cipher)

    def list_webhooks(self) -> list[Webhook]:
        with self._reading():
            docs = list(self._tables.get("webhooks", {}).values())
        return sorted((unseal_webhook(doc, self._cipher) for doc in docs), key=lambda w: w.id)

    def update_webhook(self, webhook_id: int, **changes: Any) -> Webhook:
        with self.transaction():
            current = self.get_webhook(webhook_id)
            if current is None:
                raise RecordMissing(f"no webhook {webhook_id}")
            webhook = replace(current, **changes)
            self._rows("webhooks")[str(webhook.id)] = seal_webhook(webhook, self._cipher)
            self._dirty = True
            return webhook

    def remove_webhook(self, webhook_id: int) -> None:
        with self.transaction():
            if self._rows("webhooks").pop(str(int(webhook_id)), None) is None:
                raise RecordMissing(f"no webhook {webhook_id}")
            rows = self._rows("deliveries")
            for key in [key for key, doc in rows.items() if doc["webhook_id"] == int(webhook_id)]:
                del rows[key]
            self._dirty = True

    def add_deliveries(self, deliveries: list[Delivery]) -> list[Delivery]:
        with self.transaction():
            stored = [replace(delivery, id=self._next_id("next_delivery_id")) for delivery in deliveries]
            for delivery in stored:
                self._rows("deliveries")[str(delivery.id)] = delivery.to_doc()
            self._dirty = self._dirty or bool(stored)
            return stored

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        with self._reading():
            doc = self._tables.get("deliveries", {}).get(str(int(delivery_id)))
            return None if doc is None else Delivery.from_doc(doc)

    def claim_deliveries(self, now: datetime, limit: int, hold_until: datetime) -> list[Delivery]:
        """See `Repository.claim_deliveries`: chosen and claimed in one transaction, under the store's lock
        (taken only when a look without it finds something due: the worker asks every second)."""
        with self._reading():
            due_at = to_iso(now) or ""
            if not any(doc["next_attempt_at"] <= due_at and not (doc.get("delivered_at") or doc.get("given_up_at"))
                       for doc in self._tables.get("deliveries", {}).values()):
                return []
        with self.transaction():
            paused = {key for key, doc in self._rows("webhooks").items() if doc.get("paused_at")}
            due = sorted((d for d in map(Delivery.from_doc, self._rows("deliveries").values())
                          if str(d.webhook_id) not in paused and claimable(d, now)),
                         key=lambda d: (d.next_attempt_at, d.id))
            return [self.update_delivery(d.id, claim_token=secrets.token_hex(8), claimed_until=hold_until)
                    for d in due[:limit]]

    def update_delivery(self, delivery_id: int, under_claim: str | None = None, **changes: Any) -> Delivery:
        with self.transaction():
            current = self.get_delivery(delivery_id)
            delivery = changed_delivery(delivery_id, current, under_claim, changes)
            self._rows("deliveries")[str(delivery.id)] = delivery.to_doc()
            self._dirty = True
            if delivery.finished and current is not None and not current.finished:  # it finished just now
                self._drop_old_deliveries()
            return delivery

    def _drop_old_deliveries(self) -> None:
        rows = self._rows("deliveries")
        for delivery_id in _finished_ids(rows)[:-KEPT_DELIVERIES]:
            del rows[str(delivery_id)]

    def deliveries(self, limit: int = 50, webhook_id: int | None = None) -> list[Delivery]:
        with self._reading():
            docs = [doc for doc in self._tables.get("deliveries", {}).values()
                    if webhook_id is None or doc["webhook_id"] == int(webhook_id)]
        return sorted(map(Delivery.from_doc, docs), key=lambda d: d.id, reverse=True)[:limit]

    def forget_deliveries(self, before: datetime) -> int:
        """The main file keeps `KEPT_DELIVERIES` finished deliveries at most already; older ones go too."""
        with self.transaction():
            rows, cutoff = self._rows("deliveries"), to_iso(before) or ""
            old = [delivery_id for delivery_id in _finished_ids(rows)[:-KEPT_DELIVERIES]
                   if rows[str(delivery_id)]["created_at"] < cutoff]
            for delivery_id in old:
                del rows[str(delivery_id)]
            self._dirty = self._dirty or bool(old)
            return len(old)
