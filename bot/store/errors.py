"""The store contract's errors, apart from any implementation so callers catch them without importing one.

`StoreError`: the store cannot be read or written (`StoreUnreachable`: the database, for now).
`ClaimLost`: a write conditional on a post's claim found the claim gone. `StoreDamaged`: what is on disk
is not a whole store (a main file missing beside its logs, a main file that does
not parse, a log shorter than the main file says); the store refuses to touch it,
and the message is one line naming the file and what to do.
"""
from __future__ import annotations

RESTORE_HINT = "restore from a backup: tweetbot restore FILE"


class StoreError(Exception):
    """The store cannot be read or written."""


class StoreUnreachable(StoreError):
    """The database cannot be reached now (down, restarting, a dropped connection): waiting mends it.
    The store says so in its log once a minute; callers try again later instead of logging each failure."""


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


class ClaimLost(Exception):
    """A post is no longer `sending` under the claim a write was conditional on: another worker settled
    it (its claim looked dead), or it was handed back. The write did nothing; the post is as it is now."""


class SchemaBehind(StoreUnusable):
    """The database's schema is older (or newer) than this code's: `tweetbot migrate` (or an upgrade) fixes it."""


class BackupError(Exception):
    """The archive cannot be written, read or restored; one line saying why."""
