"""The store: what everything above it uses to keep accounts, posts, schedules and events.

`Repository` is the contract; `TinyStore` (one JSON file, TinyDB) is the embedded
implementation. A server database can stand in later by implementing the same
contract: nothing above the store touches TinyDB.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bot.crypto import TokenCipher, TokenKeyError
from bot.models import Account, Post
from bot.settings import Settings
from bot.store.backup import BackupError, BackupSummary, restore_backup
from bot.store.errors import RESTORE_HINT, StoreDamaged, StoreError
from bot.store.tiny import SCHEMA_VERSION, TinyStore

__all__ = ["Repository", "TinyStore", "StoreError", "StoreDamaged", "TokenKeyError", "UNUSABLE", "RESTORE_HINT",
           "SCHEMA_VERSION", "BackupError", "BackupSummary", "open_store", "restore_store"]

#: What a store that cannot be used raises (damaged files, or a TOKEN_KEY that does not decrypt them).
UNUSABLE: tuple[type[Exception], ...] = (StoreError, TokenKeyError)


class Repository(Protocol):
    """What the bot, the web app and the CLI may ask of a store."""

    def transaction(self) -> AbstractContextManager[None]: ...
    def verify(self) -> None:
        """Raise `StoreDamaged` or `TokenKeyError` unless the store is whole and TOKEN_KEY opens it (cheap when
        nothing changed since the last call)."""
    def close(self) -> None:
        """Release what the store holds open (connections); the store is not used after."""
    def backup(self, target: Path) -> BackupSummary:
        """Write the whole store as of one committed moment to the archive `target` (0600); what it holds."""
    def account_lock(self, user_id: str, timeout: float = -1) -> AbstractContextManager[Any]: ...
    def lease(self, name: str) -> Any: ...

    def schema_version(self) -> int: ...
    def get_meta(self, key: str, default: Any = None) -> Any: ...
    def set_meta(self, key: str, value: Any) -> None: ...

    def get_account(self, user_id: str) -> Account | None: ...
    def find_account(self, handle: str) -> Account | None: ...
    def list_accounts(self) -> list[Account]: ...
    def save_account(self, account: Account) -> None: ...
    def update_account(self, user_id: str, **changes: Any) -> Account: ...
    def delete_account(self, user_id: str) -> None: ...

    def add_posts(self, posts: list[Post]) -> list[Post]: ...
    def get_post(self, post_id: int) -> Post | None: ...
    def queued_posts(self, account_id: str | None = None, due_by: datetime | None = None) -> list[Post]: ...
    def sending_posts(self, account_id: str | None = None) -> list[Post]: ...
    def update_post(self, post_id: int, **changes: Any) -> Post: ...
    def history(self, limit: int = 50, account_id: str | None = None) -> list[Post]: ...

    def get_schedule(self, account_id: str) -> dict[str, Any] | None: ...
    def save_schedule(self, account_id: str, schedule: dict[str, Any]) -> None: ...

    def record_event(self, kind: str, account_id: str | None = None, post_id: int | None = None,
                     detail: str | None = None, at: datetime | None = None) -> None: ...
    def events(self, limit: int = 100, kind: str | None = None,
               account_id: str | None = None) -> list[dict[str, Any]]: ...


def open_store(settings: Settings) -> Repository:
    """The store the settings name (today: the TinyDB file at STORE_PATH)."""
    return TinyStore(settings.store_path, TokenCipher(settings.token_keys))


def restore_store(settings: Settings, archive: Path, force: bool = False) -> BackupSummary:
    """Put the backup `archive` back as the store the settings name, after checking it (`BackupError` if not)."""
    return restore_backup(archive, settings.store_path, TokenCipher(settings.token_keys), force=force)
