"""The store: what everything above it uses to keep accounts, posts, schedules and events.

`Repository` is the contract; `TinyStore` (one JSON file, TinyDB) is the embedded
implementation, `PostgresStore` the server one (DATABASE_URL). `open_store` picks
from the settings. Nothing above the store touches TinyDB or SQL: it sees the
records of `bot.models`, `Event`, the locks of `bot.store.locks` and these errors:
- `StoreError`: the store cannot be read or written now (`StoreUnreachable`: the database
  cannot be reached; the store logs that once a minute, so callers need not);
- `StoreUnusable` (`StoreDamaged`, `SchemaBehind`): it cannot be used as it is, a
  person must act; the worker stops, the CLI says so, the web answers 503;
- `RecordMissing` (a `KeyError`): no such account, queued post or media file;
- `LockTimeout`: a lock or lease is held by another process;
- `ClaimLost`: a write made under a post's claim found that claim gone (nothing written);
- `TokenKeyError`: TOKEN_KEY does not open the stored tokens.

Transactions: `with store.transaction():` runs its block as one unit, committed
whole or not at all, and re-entrant on one thread (an inner block joins the outer).
Each store makes check-then-update safe across processes: the file store holds one
lock for the whole block, PostgreSQL locks every row the block reads. A transaction
belongs to its thread; threads each have their own.

Media (the bytes of a post's images and videos) is kept by digest, each distinct
file once (`bot.store.media_files`). It is not rolled back with a transaction:
put the bytes before saving the post that refers to them; `bot.retention` deletes
what no post needs any more.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bot.crypto import TokenCipher, TokenKeyError
from bot.models import Account, Post
from bot.settings import Settings
from bot.store.backup import BackupError, BackupSummary, restore_backup
from bot.store.errors import (
    RESTORE_HINT,
    ClaimLost,
    RecordMissing,
    SchemaBehind,
    StoreDamaged,
    StoreError,
    StoreUnreachable,
    StoreUnusable,
)
from bot.store.locks import Lock, LockTimeout
from bot.store.records import TAKE_OVER_EVENT, Event, StoreContents
from bot.store.tiny import SCHEMA_VERSION, TinyStore

__all__ = ["BROKEN", "RESTORE_HINT", "SCHEMA_VERSION", "TAKE_OVER_EVENT", "UNUSABLE", "BackupError", "BackupSummary",
           "ClaimLost", "Event", "Lock", "LockTimeout", "RecordMissing", "Repository", "SchemaBehind", "StoreDamaged",
           "StoreError", "StoreContents", "StoreUnreachable", "StoreUnusable", "TinyStore", "TokenKeyError",
           "open_store", "restore_store"]

#: What a store that cannot be used now raises (damaged, unreachable, or a TOKEN_KEY that does not open it).
UNUSABLE: tuple[type[Exception], ...] = (StoreError, TokenKeyError)
#: What no retry mends: the worker stops with one line instead of failing the same way every second.
BROKEN: tuple[type[Exception], ...] = (StoreUnusable, TokenKeyError)


class Repository(Protocol):
    """What the bot, the web app and the CLI may ask of a store."""

    #: True: one process posts at a time, holding `lease("posting")` (the file store).
    #: False: any number of workers post at once, sharing the work through `claim_due`.
    exclusive_posting: bool

    def transaction(self) -> AbstractContextManager[None]: ...
    def verify(self) -> None:
        """Raise `StoreDamaged` or `TokenKeyError` unless the store is whole and TOKEN_KEY opens it (cheap when
        nothing changed since the last call)."""
    def close(self) -> None:
        """Release what the store holds open (connections); the store is not used after."""
    def backup(self, target: Path) -> BackupSummary:
        """Write the whole store as of one committed moment to the archive `target` (0600); what it holds."""
    def dump(self) -> StoreContents:
        """Everything the store holds, at one moment (for `tweetbot store copy`)."""
    def load(self, contents: StoreContents) -> None:
        """Fill an empty store with `contents`, ids kept, all or nothing (`StoreError` if it is not empty)."""
    def account_lock(self, user_id: str, timeout: float = -1, stop: Callable[[], bool] | None = None) -> Lock:
        """The account's lock across processes (held around a token refresh); waits `timeout` s when entered,
        or less once `stop()` is true. Held through a dropped connection or a transaction pooler."""
    def lease(self, name: str, stop: Callable[[], bool] | None = None) -> Lock:
        """A lock one process holds for as long as it does a job only one may do (posting to a file store,
        alerts, media retention)."""

    def schema_version(self) -> int: ...
    def get_meta(self, key: str, default: Any = None) -> Any: ...
    def set_meta(self, key: str, value: Any) -> None: ...

    def get_account(self, user_id: str) -> Account | None: ...
    def find_account(self, handle: str) -> Account | None: ...
    def list_accounts(self) -> list[Account]: ...
    def get_accounts(self, user_ids: Iterable[str]) -> list[Account]:
        """The accounts of `user_ids` that exist (one read, however many)."""
    def save_account(self, account: Account) -> None: ...
    def update_account(self, user_id: str, **changes: Any) -> Account: ...
    def delete_account(self, user_id: str) -> None: ...

    def add_posts(self, posts: list[Post], run_key: str | None = None) -> list[Post]:
        """Queue `posts` in one transaction, all or none; the posts with their ids. With `run_key` (a
        generator run's key), only if no earlier call used that key: then nothing is queued and [] returned."""
    def forget_runs(self, before: datetime) -> int:
        """Forget the run keys `add_posts` kept before `before`; how many."""
    def get_post(self, post_id: int) -> Post | None: ...
    def queued_posts(self, account_id: str | None = None, due_by: datetime | None = None) -> list[Post]: ...
    def sending_posts(self, account_id: str | None = None) -> list[Post]: ...
    def claim_due(self, account_id: str, now: datetime, limit: int, claimer: str,
                  post_id: int | None = None) -> list[Post]:
        """Mark up to `limit` of the account's due posts `sending` by `claimer` at `now` (only `post_id`, if
        given), earliest due first, with a `sending` event each; none while a post of the account is
        `sending`, so one account's posts go out in order, one batch at a time, whoever posts. The posts
        carry the claim (`claim_token`, `claimed_at`); outcomes are written under it (`update_post`)."""
    def claim_next(self, now: datetime, claimer: str, limit: int, skip: Iterable[str] = ()) -> list[Post]:
        """Claim, as `claim_due` does, the due posts of the next account that can post: of the accounts
        with a due post that are active, not held and not in `skip`, the one whose post has waited
        longest; [] when none can be claimed now (those another worker is claiming are passed over)."""
    def due_accounts(self, now: datetime, limit: int | None = None) -> set[str]:
        """The accounts that can post now (active, not held) with a scheduled post whose time (and retry
        time) has come by `now`: those `claim_next` may claim, but for the ones another worker holds.
        With `limit`, only the accounts of the `limit` posts that have waited longest."""
    def take_over(self, post: Post, claimer: str, now: datetime, claimed_before: datetime) -> Post | None:
        """Claim for `claimer`, under a new token, a post left `sending` under `post.claim_token`, if that is
        still its claim and was made before `claimed_before` (decided in the write itself), with a
        `TAKE_OVER_EVENT`; the post under its new claim, or None (taken or settled by another meanwhile)."""
    def update_post(self, post_id: int, under_claim: str | None = None, event: Event | None = None,
                    **changes: Any) -> Post:
        """Change a queued post; one that becomes finished joins the history (`RecordMissing` if it is not
        queued). With `under_claim`, only while it is `sending` under that claim token, else `ClaimLost`.
        `event` is recorded with the change, in the same write (not at all if the change is refused)."""
    def history(self, limit: int = 50, account_id: str | None = None) -> list[Post]: ...
    def post_counts(self) -> dict[tuple[str, str], int]:
        """How many posts, queued and finished, each account has in each status: {(account_id, status): n}
        (for /metrics: counted by the store, never by reading every post)."""

    def get_schedule(self, account_id: str) -> dict[str, Any] | None: ...
    def save_schedule(self, account_id: str, schedule: dict[str, Any]) -> None: ...

    def record_event(self, kind: str, account_id: str | None = None, post_id: int | None = None,
                     detail: str | None = None, at: datetime | None = None) -> None: ...
    def events(self, limit: int = 100, kind: str | None = None, account_id: str | None = None) -> list[Event]: ...
    def event_counts(self, kinds: Iterable[str]) -> dict[tuple[str | None, str], int]:
        """How many events of each of `kinds` each account has: {(account_id, kind): n}."""

    def put_media(self, data: bytes) -> str:
        """Keep `data` under its SHA-256 hex digest, durably, and return the digest. Bytes already kept
        store nothing new; their stored time is renewed (a fresh upload gets the grace of one)."""
    def get_media(self, digest: str) -> bytes:
        """The bytes of `digest`: `RecordMissing` naming it if none, `StoreDamaged` naming it if what is
        kept does not match it."""
    def media_digests(self) -> dict[str, datetime]:
        """Every stored media file's digest and when it was stored (UTC)."""
    def delete_media(self, digests: Iterable[str], stored_before: datetime | None = None) -> int:
        """Delete the media of `digests` (only those stored before `stored_before`, if given, so an upload
        renewed meanwhile stays); how many were deleted."""


def open_store(settings: Settings) -> Repository:
    """The store the settings name: PostgreSQL when DATABASE_URL is set, else the TinyDB file at STORE_PATH."""
    cipher = TokenCipher(settings.token_keys)
    if settings.database_url:
        from bot.store.postgres import PostgresStore  # psycopg is loaded only where it is used

        return PostgresStore(settings.database_url, cipher, settings.database_pool_size)
    return TinyStore(settings.store_path, cipher)


def restore_store(settings: Settings, archive: Path, force: bool = False) -> BackupSummary:
    """Put the backup `archive` back as the store the settings name (PostgreSQL when DATABASE_URL is set),
    after checking it (`BackupError` if not)."""
    cipher = TokenCipher(settings.token_keys)
    if settings.database_url:
        from bot.store.backup import restore_into_database
        from bot.store.postgres import PostgresStore

        store = PostgresStore(settings.database_url, cipher, settings.database_pool_size)
        try:
            store.verify()
            return restore_into_database(archive, store, cipher, force=force)
        finally:
            store.close()
    return restore_backup(archive, settings.store_path, cipher, force=force)
