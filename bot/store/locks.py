"""The store contract's locks: an account's lock (held around a token refresh) and leases
(held by the one process that may do a job, such as posting to a file store).

Both are held across processes and released when their holder ends, even by
SIGKILL: a file lock by the kernel; a lease row of the PostgreSQL store
(`bot.store.leases`) TTL after its holder stopped renewing it. A wait for either
ends at its timeout, or earlier when the caller's `stop` says the process is stopping.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from filelock import FileLock, Timeout

from bot.store.errors import StoreError


class LockTimeout(StoreError):
    """Another process holds the lock or lease."""


class Lock(Protocol):
    """Held across processes; a context manager that waits `timeout` (negative: for ever)."""

    def acquire(self, timeout: float = -1) -> None:
        """Take it, waiting up to `timeout` seconds (0: not at all; negative: for ever), or `LockTimeout`."""

    def release(self) -> None: ...
    def __enter__(self) -> Lock: ...
    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None: ...


STOP_CHECK_EVERY = 0.2  # seconds: how often a wait looks at the caller's `stop`


class FileHeldLock:
    """A `Lock` on a lock file (filelock), private to its owner (0600)."""

    def __init__(self, path: str, timeout: float = -1, thread_local: bool = True,
                 stop: Callable[[], bool] | None = None) -> None:
        self._lock = FileLock(path, thread_local=thread_local, mode=0o600)
        self.timeout = timeout
        self.stop = stop

    def acquire(self, timeout: float = -1) -> None:
        """Take it within `timeout` s (negative: for ever), looking at `stop` between slices of the wait."""
        deadline = None if timeout < 0 else time.monotonic() + timeout
        while True:
            left = STOP_CHECK_EVERY if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self._lock.acquire(timeout=min(left, STOP_CHECK_EVERY))
                return
            except Timeout:
                stopping = self.stop is not None and self.stop()
                if stopping or (deadline is not None and time.monotonic() >= deadline):
                    raise LockTimeout(f"{self._lock.lock_file} is held by another process") from None

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> FileHeldLock:
        self.acquire(self.timeout)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()
