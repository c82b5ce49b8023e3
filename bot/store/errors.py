"""The store contract's errors, apart from any implementation so callers catch them without importing one.

`StoreError`: the store cannot be read or written. `StoreDamaged`: what is on disk
is not a whole store (a main file missing beside its logs, a main file that does
not parse, a log shorter than the main file says); the store refuses to touch it,
and the message is one line naming the file and what to do.
"""
from __future__ import annotations

RESTORE_HINT = "restore from a backup: tweetbot restore FILE"


class StoreError(Exception):
    """The store cannot be read or written."""


class StoreUnusable(StoreError):
    """The store cannot be used as it is, and waiting will not change that: a person must act
    (restore a backup, run `tweetbot migrate`). The worker stops on it instead of looping."""


class StoreDamaged(StoreUnusable):
    """The store's files are damaged or incomplete; nothing was changed. One line: the file, what to do."""

    def __init__(self, problem: str) -> None:
        super().__init__(" ".join(f"{problem}; nothing was changed: {RESTORE_HINT}".split()))


class RecordMissing(KeyError):
    """No such account or queued post (a `KeyError` too, for callers that look things up)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such record"


class SchemaBehind(StoreUnusable):
    """The database's schema is older (or newer) than this code's: `tweetbot migrate` (or an upgrade) fixes it."""
