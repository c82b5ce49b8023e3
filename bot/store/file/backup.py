"""Backups, in the file store's format for either store: one archive of a consistent moment, and putting one back.

`tweetbot backup FILE` writes a tar.gz (created 0600) holding the main file as it
was committed and each log up to its committed length, all taken at one moment
under the store's transaction lock (see `TinyStore.moment`), so a backup taken
while the worker posts is a state the store really was in. A `manifest.json`
records each file's length and SHA-256 and what the moment held (account ids,
queued post ids, how many finished posts and events). The media files stored at
that moment go in as `media/<digest>` (their name is their SHA-256), each with the
time it was stored, read one at a time: a file that no longer matches its digest
fails the backup with its name, a file deleted meanwhile (no post needed it) is left
out. Archives without media (format 1) still restore.

A PostgreSQL store is backed up in the same format: its dump (one repeatable-read
snapshot) is loaded into a file store in a private scratch folder, which is then
backed up as above. One archive restores into either store.

`tweetbot restore FILE` checks the archive first (it opens, every file matches the
manifest, the main file parses and its committed lengths are the logs' lengths,
every log line parses, TOKEN_KEY decrypts a token), refuses while a worker runs
(it holds the posting lease, or its heartbeat is fresh), and refuses to overwrite
a store that holds anything unless forced. Into a file store it writes the media
files, then the logs, then the main file, each atomically (forced, the old files
are kept aside); into PostgreSQL it loads the archive's records in one transaction
(forced, what the database held is deleted in that same transaction). A restored
store carries no worker heartbeat: no worker has run on it yet; it notes the archive it came
from instead (see `heartbeats.restored_copy_warning`).
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from filelock import FileLock

from bot.crypto import TokenCipher, TokenKeyError
from bot.models import from_iso, to_iso, utcnow
from bot.store import heartbeats
from bot.store.errors import BackupError, StoreDamaged
from bot.store.file.media_folder import PRIVATE_DIR, is_digest, set_stored_time
from bot.store.file.store import LOGS, StoreMoment, TinyStore, log_path, media_folder
from bot.store.files import PRIVATE, atomic_write, atomic_write_with, decode, encode
from bot.store.locks import LockTimeout
from bot.store.records import BackupSummary, StoreContents

if TYPE_CHECKING:
    from bot.store.postgres import PostgresStore

FORMAT = 2  # 2: with media files; 1 (none) is still read
READABLE = (1, 2)
MANIFEST = "manifest.json"
MEDIA = "media/"  # member name prefix: media/<digest>
MEMBERS = {"main": "store.json", **{name: f"{name}.jsonl" for name in LOGS}}
_CHUNK = 1 << 20


# -- writing -------------------------------------------------------------------------------


class _Counting(io.RawIOBase):
    """Reads at most `length` bytes of a file, hashing them and counting lines as tarfile copies them."""

    def __init__(self, source: IO[bytes] | None, length: int) -> None:
        self.source, self.left = source, length
        self.sha = hashlib.sha256()
        self.lines = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.source is None or self.left <= 0:
            return 0
        chunk = self.source.read(min(len(buffer), self.left, _CHUNK))
        if not chunk:
            raise BackupError("a store log shrank below its committed length while it was being backed up")
        self.left -= len(chunk)
        self.sha.update(chunk)
        self.lines += chunk.count(b"\n")
        buffer[:len(chunk)] = chunk
        return len(chunk)


def write_backup(store: TinyStore, target: Path) -> BackupSummary:
    """Write `store` as of now to `target` (replaced atomically, 0600); what it holds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    summary = atomic_write_with(target, lambda raw: _write_archive(store, raw, target))
    summary.size = target.stat().st_size
    return summary


def _write_archive(store: TinyStore, raw: BinaryIO, target: Path) -> BackupSummary:
    files: dict[str, dict[str, Any]] = {}
    with store.moment() as moment, tarfile.open(fileobj=raw, mode="w:gz") as archive:
        tables = decode(moment.main)
        _add(archive, MEMBERS["main"], moment.main)
        files[MEMBERS["main"]] = {"bytes": len(moment.main), "sha256": _sha(moment.main)}
        counts = {}
        for name in LOGS:
            reader = _Counting(moment.logs[name], moment.lengths[name])
            info = _info(MEMBERS[name], moment.lengths[name])
            archive.addfile(info, io.BufferedReader(reader, _CHUNK))
            files[MEMBERS[name]] = {"bytes": moment.lengths[name], "sha256": reader.sha.hexdigest()}
            counts[name] = reader.lines
        media = _add_media(archive, store, moment)
        summary = BackupSummary(target, *_live(tables), counts["history"], counts["events"], media=len(media))
        manifest = {"format": FORMAT, "created_at": to_iso(utcnow()), "store": store.path.name,
                    "files": files, "held": summary.held(), "media": media}
        _add(archive, MANIFEST, encode(manifest))
    return summary


def write_contents_backup(contents: StoreContents, target: Path, cipher: TokenCipher) -> BackupSummary:
    """Write another store's dump to `target` in the file store's format (see the module)."""
    with tempfile.TemporaryDirectory(prefix="tweetbot-backup-") as scratch:  # 0700: the tokens pass here
        staging = TinyStore(Path(scratch) / "tweetbot.json", cipher)
        staging.load(contents)
        return write_backup(staging, target)


def _add_media(archive: tarfile.TarFile, store: TinyStore, moment: StoreMoment) -> dict[str, dict[str, Any]]:
    """Each media file of the moment as `media/<digest>`, one at a time; the manifest's record of them."""
    added: dict[str, dict[str, Any]] = {}
    for digest, stored_at in sorted(moment.media.items()):
        path = store.media.path_of(digest)
        try:
            handle = open(path, "rb")
        except FileNotFoundError:  # deleted since the moment: no post of it needed the file
            continue
        with handle:
            size = os.fstat(handle.fileno()).st_size
            reader = _Counting(handle, size)
            archive.addfile(_info(MEDIA + digest, size), io.BufferedReader(reader, _CHUNK))
        if reader.sha.hexdigest() != digest:
            raise StoreDamaged(f"the media file {path} does not match its digest; the backup was not written")
        added[digest] = {"bytes": size, "stored_at": to_iso(stored_at)}
    return added


def _live(tables: dict[str, Any]) -> tuple[list[str], list[int]]:
    """The account ids and queued post ids of a main file's tables."""
    return sorted(tables.get("accounts", {})), sorted(int(key) for key in tables.get("posts", {}))


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, PRIVATE, int(time.time())
    return info


def _sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _add(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    archive.addfile(_info(name, len(payload)), io.BytesIO(payload))


# -- checking --------------------------------------------------------------------------------


@dataclass
class CheckedBackup:
    """An archive that passed every check: its files' bytes and what it holds."""

    files: dict[str, bytes]
    summary: BackupSummary
    created_at: str | None  # ISO; every archive we write has it
    media: dict[str, datetime] = field(default_factory=dict)  # digest: when it was stored


def check_backup(archive: Path, cipher: TokenCipher) -> CheckedBackup:
    """Read and check the archive whole; `BackupError` with the first problem found."""
    files, manifest, media = _read_members(archive)
    for name, expected in manifest["files"].items():
        payload = files.get(name)
        if payload is None or len(payload) != expected["bytes"] or _sha(payload) != expected["sha256"]:
            raise BackupError(f"{archive}: {name} does not match the manifest (the archive is damaged)")
    tables = _parse_main(archive, files[MEMBERS["main"]])
    meta = tables.get("meta", {}).get("1", {})
    counts = {}
    for name in LOGS:
        payload = files.get(MEMBERS[name], b"")
        if int(meta.get(f"{name}_bytes", 0)) != len(payload):
            raise BackupError(f"{archive}: the {name} log holds {len(payload):,} bytes but the main file "
                              f"committed {int(meta.get(f'{name}_bytes', 0)):,}")
        counts[name] = _count_records(archive, name, payload)
    summary = BackupSummary(archive, *_live(tables), counts["history"], counts["events"], archive.stat().st_size,
                            media=len(media))
    if summary.held() != manifest["held"]:
        raise BackupError(f"{archive}: what the files hold does not match the manifest")
    _check_key(archive, tables, cipher)
    return CheckedBackup(files, summary, manifest.get("created_at"), _check_media(archive, manifest, media))


def _check_media(archive: Path, manifest: dict[str, Any], seen: dict[str, tuple[int, str]]) -> dict[str, datetime]:
    """Every media file the manifest lists is in the archive, whole (its SHA-256 is its name), and no other."""
    listed: dict[str, dict[str, Any]] = manifest.get("media", {})
    if set(listed) != set(seen):
        raise BackupError(f"{archive}: its media files do not match the manifest (the archive is damaged)")
    for digest, (size, sha) in seen.items():
        if sha != digest or size != listed[digest]["bytes"]:
            raise BackupError(f"{archive}: the media file {digest} is damaged (it does not match its digest)")
    return {digest: from_iso(entry["stored_at"]) or utcnow() for digest, entry in listed.items()}


def _read_members(archive: Path) -> tuple[dict[str, bytes], dict[str, Any], dict[str, tuple[int, str]]]:
    """The archive's store files (bytes), its manifest, and each media file's size and SHA-256 (read
    through, one at a time, never kept)."""
    wanted = set(MEMBERS.values()) | {MANIFEST}
    files: dict[str, bytes] = {}
    media: dict[str, tuple[int, str]] = {}
    try:
        with tarfile.open(archive, mode="r:gz") as opened:
            for member in opened:
                if member.name in wanted and member.isfile():
                    extracted = opened.extractfile(member)
                    assert extracted is not None
                    files[member.name] = extracted.read()
                elif member.name.startswith(MEDIA) and member.isfile():
                    media[member.name[len(MEDIA):]] = _hash_member(opened, member)
        manifest = decode(files[MANIFEST])
    except FileNotFoundError:
        raise BackupError(f"{archive}: no such file") from None
    except (OSError, EOFError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"{archive} is not a tweetbot backup ({exc or type(exc).__name__})") from None
    if manifest.get("format") not in READABLE or set(manifest.get("files", {})) != set(MEMBERS.values()):
        raise BackupError(f"{archive}: not a backup this version of tweetbot can restore "
                          f"(format {manifest.get('format')})")
    return files, manifest, media


def _hash_member(opened: tarfile.TarFile, member: tarfile.TarInfo) -> tuple[int, str]:
    extracted = opened.extractfile(member)
    assert extracted is not None
    sha, size = hashlib.sha256(), 0
    while chunk := extracted.read(_CHUNK):
        sha.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest()


def _parse_main(archive: Path, payload: bytes) -> dict[str, Any]:
    try:
        tables = decode(payload)
    except ValueError as exc:
        raise BackupError(f"{archive}: the main file does not parse ({exc})") from None
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise BackupError(f"{archive}: the main file is not a store")
    return tables


def _count_records(archive: Path, name: str, payload: bytes) -> int:
    if payload and not payload.endswith(b"\n"):
        raise BackupError(f"{archive}: the {name} log does not end with a whole line")
    lines = payload.splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            decode(line)
        except ValueError as exc:
            raise BackupError(f"{archive}: line {number} of the {name} log does not parse ({exc})") from None
    return len(lines)


def _check_key(archive: Path, tables: dict[str, Any], cipher: TokenCipher) -> None:
    sealed = next((doc[name] for doc in tables.get("accounts", {}).values()
                   for name in ("access_token", "refresh_token") if doc.get(name)), None)
    try:
        cipher.decrypt(sealed)
    except TokenKeyError:
        raise BackupError(f"{archive}: TOKEN_KEY cannot decrypt the backup's tokens: set TOKEN_KEY to the key "
                          "the backed-up store was written with (or after the new one: TOKEN_KEY=new,old)") from None


# -- restoring --------------------------------------------------------------------------------


def restore_backup(archive: Path, store_path: Path, cipher: TokenCipher, force: bool = False) -> BackupSummary:
    """Check `archive`, then make it the file store at `store_path`; refuses while a worker runs.

    A store that holds anything is replaced only with `force`, and its files are kept
    beside it (`NAME.replaced-STAMP`), never deleted.
    """
    checked = check_backup(Path(archive), cipher)
    store_path = Path(store_path)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    target = TinyStore(store_path, cipher)
    with _no_worker(target), FileLock(str(store_path) + ".lock", mode=PRIVATE):
        present = [path for path in _store_files(store_path) if _holds_anything(path)]
        if present and not force:
            raise BackupError(f"the store at {store_path} is not empty; `tweetbot restore --force` replaces it "
                              "(its files are kept beside it as NAME.replaced-…)")
        _set_aside(present)
        paths = _store_files(store_path)
        _restore_media(Path(archive), checked.media, media_folder(store_path))
        for name, path in zip(LOGS, paths[1:-1], strict=True):
            atomic_write(path, checked.files.get(MEMBERS[name], b""))
        atomic_write(paths[0], checked.files[MEMBERS["main"]])  # last: until now the old state stood
    restored = TinyStore(store_path, cipher)
    restored.verify()
    with restored.transaction():
        heartbeats.forget_all(restored)
        heartbeats.mark_restored(restored, Path(archive).name, from_iso(checked.created_at), utcnow())
    return checked.summary


def restore_into_database(archive: Path, store: PostgresStore, cipher: TokenCipher,
                          force: bool = False) -> BackupSummary:
    """Check `archive`, then load it into the PostgreSQL `store` in one transaction; refuses while a
    worker heartbeats there, and, unless `force`, when the database holds anything."""
    with tempfile.TemporaryDirectory(prefix="tweetbot-restore-") as scratch:  # 0700: the tokens pass here
        summary = restore_backup(archive, Path(scratch) / "tweetbot.json", cipher)
        contents = TinyStore(Path(scratch) / "tweetbot.json", cipher).dump()
        _refuse_while_beating(heartbeats.newest_age(store))
        if not force and not store.dump().empty:
            raise BackupError("the database is not empty; `tweetbot restore --force` replaces what it holds "
                              "(in one transaction: all of it, or nothing if the restore fails)")
        store.load(contents, replace=force)
    summary.path = Path(archive)
    return summary


def _refuse_while_beating(age: float | None) -> None:
    alive = heartbeats.ALIVE_WITHIN.total_seconds()
    if age is not None and age < alive:
        raise BackupError(f"a worker is running (its heartbeat is {age:.0f} s old): stop it before restoring, "
                          f"or wait {alive - age:.0f} s after it stopped")


def _store_files(store_path: Path) -> list[Path]:
    """The main file, the logs (in `LOGS`' order) and the media folder."""
    return [store_path, *(log_path(store_path, name) for name in LOGS), media_folder(store_path)]


def _holds_anything(path: Path) -> bool:
    if path.is_dir():
        return any(path.iterdir())
    return path.exists() and path.stat().st_size > 0


def _restore_media(archive: Path, media: dict[str, datetime], folder: Path) -> None:
    """Write each media file of the checked archive into `folder` (0700; files 0600, atomically), one at a
    time, with the time it was stored; a file that no longer matches its digest stops the restore."""
    if not media:
        return
    folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    with tarfile.open(archive, mode="r:gz") as opened:
        for member in opened:
            digest = member.name[len(MEDIA):]
            if not (member.name.startswith(MEDIA) and member.isfile() and digest in media and is_digest(digest)):
                continue
            extracted = opened.extractfile(member)
            assert extracted is not None
            _write_media(folder / digest, extracted, member.size, media[digest])


def _write_media(path: Path, source: IO[bytes], size: int, stored_at: datetime) -> None:
    reader = _Counting(source, size)
    atomic_write_with(path, lambda handle: shutil.copyfileobj(io.BufferedReader(reader, _CHUNK), handle, _CHUNK))
    if reader.sha.hexdigest() != path.name:
        path.unlink()
        raise BackupError(f"the media file {path.name} changed in the archive while it was restored")
    set_stored_time(path, stored_at)


def _set_aside(paths: list[Path]) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for path in paths:
        os.replace(path, path.with_name(f"{path.name}.replaced-{stamp}"))


@contextmanager
def _no_worker(store: TinyStore) -> Iterator[None]:
    """Hold the posting lease for the restore, or refuse: no worker may run while the store is replaced.

    A posting worker holds the lease; a second worker (waiting for it) writes heartbeats.
    """
    lease = store.lease("posting")
    try:
        lease.acquire(timeout=0)
    except LockTimeout:
        raise BackupError("a worker is running (it holds the posting lease): stop it before restoring") from None
    try:
        _refuse_while_beating(_heartbeat_age(store))
        yield
    finally:
        lease.release()


def _heartbeat_age(store: TinyStore) -> float | None:
    """Seconds since the store's newest worker heartbeat; None if there is none (or the store cannot say)."""
    try:
        return heartbeats.newest_age(store)
    except (OSError, ValueError, StoreDamaged):
        return None
