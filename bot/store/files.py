"""Crash-safe files: whole-file atomic replacement and an append-only JSON-lines log.

A crash (even SIGKILL or power loss) at any instant leaves either the previous or
the next content, never a torn file:
- `atomic_write` writes a temp file in the same folder, fsyncs it, `os.replace`s
  the target and fsyncs the folder so the rename itself is durable;
- `AppendLog` appends lines, but only the bytes up to a *committed length*
  (kept by the caller in the atomically replaced main file) count; bytes past
  it belong to a transaction that never committed and are cut off.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import orjson


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


T = TypeVar("T")
PRIVATE = 0o600  # every store file: it holds tokens (sealed) and post texts


def create_private(path: Path, flags: int) -> int:
    """Open `path` (created 0600 if new: private from its first byte, never chmod-ed after); an fd."""
    return os.open(path, flags | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE)


def atomic_write(path: Path, payload: bytes) -> os.stat_result:
    """Replace `path` with `payload` so that a crash leaves the old or the new file (created 0600); the
    file's stat as written. A writer that remembers it sees any later change, even one another process
    made between the replace and a stat of the path (which would take that change for its own)."""
    def write(handle: BinaryIO) -> os.stat_result:
        handle.write(payload)
        handle.flush()
        return os.fstat(handle.fileno())
    return atomic_write_with(path, write)


def atomic_write_with(path: Path, write: Callable[[BinaryIO], T]) -> T:
    """Replace `path` with what `write` writes to the handle it is given, atomically (created 0600);
    what `write` returned."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            written = write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return written


def encode(data: Any) -> bytes:
    """Compact JSON (orjson: the store re-encodes its live queue on every commit, so speed matters)."""
    return orjson.dumps(data)


def decode(payload: bytes) -> Any:
    return orjson.loads(payload)


class AppendLog:
    """An append-only JSON-lines file whose valid part ends at a committed length."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def discard_after(self, committed: int) -> None:
        """Cut off what a transaction that never committed appended."""
        if self.size() > committed:
            with open(self.path, "r+b") as handle:
                handle.truncate(committed)
                os.fsync(handle.fileno())

    def append(self, records: list[dict[str, Any]]) -> int:
        """Append records durably; returns the new length, to be committed by the caller."""
        payload = b"".join(encode(record) + b"\n" for record in records)
        with os.fdopen(create_private(self.path, os.O_WRONLY | os.O_APPEND), "ab") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
            return handle.tell()

    def check_tail(self, committed: int, block: int = 65536) -> None:
        """`ValueError` unless the committed part ends with a whole record (reads one block)."""
        if committed <= 0:
            return
        start = max(0, committed - block)
        with open(self.path, "rb") as handle:
            handle.seek(start)
            tail = handle.read(committed - start)
        if not tail.endswith(b"\n"):
            raise ValueError(f"its committed part (to byte {committed:,}) does not end with a whole line")
        body = tail[:-1]
        if start == 0 or b"\n" in body:  # else the last record is longer than the block: leave it
            decode(body.rsplit(b"\n", 1)[-1])

    def open_committed(self, committed: int) -> BinaryIO | None:
        """The log opened for reading (None when nothing is committed); the caller reads `committed` bytes."""
        return open(self.path, "rb") if committed > 0 else None

    def read_all(self, committed: int) -> Iterator[dict[str, Any]]:
        """Every committed record, oldest first."""
        if committed <= 0:
            return
        with open(self.path, "rb") as handle:
            for line in handle.read(committed).splitlines():
                yield decode(line)

    def read_from(self, start: int, committed: int) -> Iterator[dict[str, Any]]:
        """The committed records from byte `start` (where a record begins) on, oldest first, a line at a
        time (a log of 100,000 posts is never held whole)."""
        if committed <= start:
            return
        with open(self.path, "rb") as handle:
            handle.seek(start)
            left = committed - start
            for line in handle:
                left -= len(line)
                if left < 0:  # appended by a transaction not yet committed
                    return
                yield decode(line)

    def read_newest(self, committed: int, block: int = 65536) -> Iterator[dict[str, Any]]:
        """Committed records newest first, reading the file backwards in blocks."""
        if committed <= 0:
            return
        with open(self.path, "rb") as handle:
            end, carry = committed, b""
            while end > 0:
                start = max(0, end - block)
                handle.seek(start)
                chunk = handle.read(end - start) + carry
                lines = chunk.split(b"\n")
                carry = lines.pop(0) if start > 0 else b""
                for line in reversed(lines):
                    if line:
                        yield decode(line)
                end = start
