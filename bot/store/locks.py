"""The store contract's locks: an account's lock (held around a token refresh) and leases
(held by the one process that may do a job, such as posting to a file store).

Both are held across processes and released when their holder ends, even by
SIGKILL: a file lock by the kernel, an advisory lock by PostgreSQL ending the session.
"""
from __future__ import annotations

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


class FileHeldLock:
    """A `Lock` on a lock file (filelock), private to its owner (0600)."""

    def __init__(self, path: str, timeout: float = -1, thread_local: bool = True) -> None:
        self._lock = FileLock(path, thread_local=thread_local, mode=0o600)
        self.timeout = timeout

    def acquire(self, timeout: float = -1) -> None:
        try:
            self._lock.acquire(timeout=timeout)
        except Timeout:
            raise LockTimeout(f"{self._lock.lock_file} is held by another process") from None

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> FileHeldLock:
        self.acquire(self.timeout)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()
