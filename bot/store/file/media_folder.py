"""The file store's media folder: each distinct file once, named by its SHA-256 (`bot.store.digests`).

A post refers to its images and videos by digest (`MediaRef.digest`), so the web
process that received an upload and the worker that sends it need only share the
store. The file store keeps each file as `<store>.media/<digest>` (folder 0700,
files 0600 from their first byte, written with the crash-safe atomic write);
PostgreSQL keeps them in pieces (see `bot.store.postgres`); `bot.store.digests` names them.

Media is not part of a store's transactions: bytes are put (durably) before the
post that refers to them is saved, and deleted only by `bot.retention` once no post
needs them. A put of bytes already stored writes nothing new but renews the time
they were stored, so a fresh upload of an old file gets the same grace hour as a
new one.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from filelock import FileLock

from bot.store.digests import checked_bytes, checked_digest, digest_of, is_digest
from bot.store.errors import RecordMissing
from bot.store.files import PRIVATE, atomic_write, fsync_dir

PRIVATE_DIR = 0o700
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


def stored_time(path: Path) -> datetime:
    """When the media file `path` was stored: its modification time, to the microsecond, UTC."""
    return _EPOCH + path.stat().st_mtime_ns // 1000 * _MICRO


def set_stored_time(path: Path, moment: datetime) -> None:
    """Record `moment` as the file's stored time, exactly (in nanoseconds: no float rounding, so a time
    copied through PostgreSQL and back is the same microsecond)."""
    ns = (moment - _EPOCH) // _MICRO * 1000
    os.utime(path, ns=(ns, ns))


class MediaFolder:
    """The file store's media: one file per digest in a private folder beside the TinyDB file.

    Puts and deletes hold a lock of their own (`<store>.media.lock`, not the store's
    transaction lock, so writing a large video never holds up the worker): a delete
    that checks a file's age and a put that renews it cannot interleave.
    """

    def __init__(self, folder: Path, lock_path: Path) -> None:
        self.folder = folder
        self._lock = FileLock(str(lock_path), mode=PRIVATE)

    def path_of(self, digest: str) -> Path:
        return self.folder / checked_digest(digest)

    def put(self, data: bytes, stored_at: datetime | None = None) -> str:
        """Keep `data` under its digest (once); its stored time becomes `stored_at` (default now)."""
        digest = digest_of(data)
        path = self.folder / digest
        with self._lock:
            self.folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            if not _same_size(path, len(data)):  # a file cut short is written again
                atomic_write(path, data)
            set_stored_time(path, stored_at or datetime.now(timezone.utc))
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes of `digest`: `RecordMissing` if none, `StoreDamaged` if they do not match it."""
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RecordMissing(f"no media {digest}") from None
        return checked_bytes(digest, data, str(path))

    def digests(self) -> dict[str, datetime]:
        """Every stored file and when it was stored (its modification time, UTC); temp files left by a
        crash mid-write are not files of the store."""
        found: dict[str, datetime] = {}
        for entry in self._entries():
            try:
                found[entry.name] = stored_time(Path(entry.path))
            except FileNotFoundError:  # deleted while we listed
                continue
        return found

    def _entries(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.folder) as entries:
                return [entry for entry in entries if is_digest(entry.name)]
        except FileNotFoundError:
            return []

    def delete(self, digests: Iterable[str], stored_before: datetime | None = None) -> int:
        """Remove the files of `digests` (only those stored before `stored_before`, if given); how many.
        A name that is no digest names no file: it is passed over."""
        wanted = {d for d in digests if is_digest(d)}
        removed = 0
        with self._lock:
            for digest in sorted(wanted):
                removed += self._delete_one(self.folder / digest, stored_before)
            if stored_before is not None:
                self._drop_leftovers(stored_before)
            if removed:
                fsync_dir(self.folder)
        return removed

    def _drop_leftovers(self, older_than: datetime) -> None:
        """Remove temp files a crash mid-put left (`.<digest>.….tmp`, never a stored file) once they are
        older than `older_than`: no put still writes them."""
        try:
            with os.scandir(self.folder) as entries:
                leftovers = [Path(e.path) for e in entries if e.name.startswith(".") and e.name.endswith(".tmp")]
        except FileNotFoundError:
            return
        for path in leftovers:
            self._delete_one(path, older_than)

    @staticmethod
    def _delete_one(path: Path, stored_before: datetime | None) -> int:
        try:
            if stored_before is not None and stored_time(path) >= stored_before:
                return 0
            path.unlink()
        except FileNotFoundError:
            return 0
        return 1


def _same_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False
