"""The store: what everything above it uses to keep accounts, posts, schedules, events and webhooks.

`Repository` (`bot.store.contract`) is the contract; `bot.store.file.TinyStore` (one JSON file,
TinyDB) is the embedded implementation, `bot.store.postgres.PostgresStore` the server one
(DATABASE_URL). `open_store` picks from the settings and imports only the one it opens.
Nothing above the store touches TinyDB or SQL: it sees the
records of `bot.models`, `Event`, `Webhook` and `Delivery` (a subscription and a row of its outbox,
`bot.webhooks`), the locks of `bot.store.locks` and these errors:
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
file once (`bot.store.file.media_folder`). It is not rolled back with a transaction:
put the bytes before saving the post that refers to them; `bot.retention` deletes
what no post needs any more.
"""
from __future__ import annotations

from pathlib import Path

from bot.crypto import TokenCipher, TokenKeyError
from bot.settings import Settings
from bot.store.contract import Repository
from bot.store.errors import (
    RESTORE_HINT,
    BackupError,
    ClaimLost,
    RecordMissing,
    SchemaBehind,
    StoreDamaged,
    StoreError,
    StoreUnreachable,
    StoreUnusable,
)
from bot.store.locks import Lock, LockTimeout
from bot.store.records import (
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
    requeued_detail,
)

__all__ = ["BROKEN", "REQUEUED_EVENT", "RESTORE_HINT", "TAKE_OVER_EVENT", "UNUSABLE", "BackupError",
           "BackupSummary", "Claim", "ClaimLost", "Delivery", "Event", "KeptAnswer", "Lock", "LockTimeout", "Reading",
           "RecordMissing", "Repository",
           "SchemaBehind", "StoreContents", "StoreDamaged", "StoreError", "StoreUnreachable", "StoreUnusable",
           "TokenKeyError", "Webhook", "open_store", "requeued_detail", "restore_store"]

#: What a store that cannot be used now raises (damaged, unreachable, or a TOKEN_KEY that does not open it).
UNUSABLE: tuple[type[Exception], ...] = (StoreError, TokenKeyError)
#: What no retry mends: the worker stops with one line instead of failing the same way every second.
BROKEN: tuple[type[Exception], ...] = (StoreUnusable, TokenKeyError)


def open_store(settings: Settings) -> Repository:
    """The store the settings name: PostgreSQL when DATABASE_URL is set, else the TinyDB file at STORE_PATH."""
    cipher = TokenCipher(settings.token_keys)
    if settings.database_url:
        from bot.store.postgres import PostgresStore  # psycopg is loaded only where it is used

        return PostgresStore(settings.database_url, cipher, settings.database_pool_size)
    from bot.store.file import TinyStore

    return TinyStore(settings.store_path, cipher)


def restore_store(settings: Settings, archive: Path, force: bool = False) -> BackupSummary:
    """Put the backup `archive` back as the store the settings name (PostgreSQL when DATABASE_URL is set),
    after checking it (`BackupError` if not)."""
    cipher = TokenCipher(settings.token_keys)
    if settings.database_url:
        from bot.store.file.backup import restore_into_database
        from bot.store.postgres import PostgresStore

        store = PostgresStore(settings.database_url, cipher, settings.database_pool_size)
        try:
            store.verify()
            return restore_into_database(archive, store, cipher, force=force)
        finally:
            store.close()
    from bot.store.file.backup import restore_backup

    return restore_backup(archive, settings.store_path, cipher, force=force)
