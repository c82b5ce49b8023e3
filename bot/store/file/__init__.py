"""The file store: one host, one JSON file (TinyDB) with append-only logs beside it, and a media folder.

`store` holds `TinyStore` (the contract, kept in files); `files`-level helpers are shared with the
archive (`bot.store.files`); `locks` are lock files; `media_folder` keeps media bytes; `backup` writes
and restores the store's archive.
"""
from bot.store.file.store import SCHEMA_VERSION, TinyStore

__all__ = ["SCHEMA_VERSION", "TinyStore"]
