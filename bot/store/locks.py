"""The store contract's locks: an account's lock (held around a token refresh) and leases
(held by the one process that may do a job, such as posting to a file store).

Both are held across processes and released when their holder ends, even by
SIGKILL: a file lock (`bot.store.file.locks`) by the kernel; a lease row of the PostgreSQL store
(`bot.store.postgres.leases`) TTL after its holder stopped renewing it. A wait for either
ends at its timeout, or earlier when the caller's `stop` says the process is stopping.
"""
from __future__ import annotations

from types import TracebackType
from typing import Protocol

from bot.store.errors import StoreError


class LockTimeout(StoreError):
    """Another process holds the lock or lease."""


class Lock(Protocol):
    """Held across processes; a context manager that waits `timeout` (negative: for ever)."""

    #: Whether holding it means no other process holds it (every lock and lease but `SharedTurn`).
    alone: bool

    def acquire(self, timeout: float = -1) -> None:
        """Take it, waiting up to `timeout` seconds (0: not at all; negative: for ever), or `LockTimeout`."""

    def release(self) -> None: ...
    def __enter__(self) -> Lock: ...
    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None: ...


class SharedTurn:
    """A `Lock` every process holds at once: the posting turn where workers share the due posts through
    claims instead of taking turns (`Repository.posting_turn`)."""

    alone = False

    def acquire(self, timeout: float = -1) -> None:
        """Taken at once, whoever else holds it."""

    def release(self) -> None:
        """Nothing to give back."""

    def __enter__(self) -> SharedTurn:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()
