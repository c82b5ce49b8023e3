"""The file store's locks: lock files beside the store (filelock), private to their owner."""
from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from filelock import FileLock, Timeout

from bot.store.locks import LockTimeout

STOP_CHECK_EVERY = 0.2  # seconds: how often a wait looks at the caller's `stop`


class FileHeldLock:
    """A `Lock` on a lock file (filelock), private to its owner (0600)."""

    alone = True

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
