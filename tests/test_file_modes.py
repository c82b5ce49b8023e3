"""Files that hold secrets or post texts are private from their first byte (issue 9, reproduction 9).

Each test runs with a permissive umask (0o000), so a file created without an explicit
0600 mode shows up world-readable, and a chmod after the write cannot hide the moment
it was readable.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.fernet import Fernet

from bot.crypto import TokenCipher
from bot.models import POSTED, Account, Post, utcnow
from bot.store.file import TinyStore
from bot.store.file.backup import restore_backup

from conftest import ROOT

# Runs `tweetbot init` in a child with umask 0 and an audit hook that, at every audit event
# after the target folder holds files, records each file's mode; and every open of a file there.
_WATCHED_INIT = r"""
import json, os, sys
folder, args = sys.argv[1], sys.argv[2:]
seen, opens, busy = [], [], []
def hook(event, detail):
    if busy:  # the hook's own listdir and lstat raise audit events too
        return
    busy.append(1)
    try:
        watch(event, detail)
    finally:
        busy.pop()
def watch(event, detail):
    if event == "open" and str(detail[0]).startswith(folder):
        opens.append([str(detail[0]), detail[1] if isinstance(detail[1], str) else None, detail[2]])
    for name in os.listdir(folder) if os.path.isdir(folder) else ():
        try:
            seen.append([event, name, os.lstat(os.path.join(folder, name)).st_mode & 0o777])
        except FileNotFoundError:
            pass
os.umask(0)
from bot.cli import main
sys.addaudithook(hook)
try:
    main(["init", "--path", os.path.join(folder, ".env"), *args])
except SystemExit as exc:
    code = exc.code
sys.addaudithook(lambda *a: None)
print(json.dumps({"code": code, "seen": seen, "opens": opens}))
"""


@contextmanager
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def modes(folder: Path) -> dict[str, int]:
    """Every file under `folder` (lock files too) with its permission bits."""
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


def test_every_store_file_is_0600_from_the_first_transaction(tmp_path: Path) -> None:
    with permissive_umask():
        store = TinyStore(tmp_path / "tweetbot.json", TokenCipher([Fernet.generate_key().decode()]))
        with store.transaction():  # the first write creates the main file and both logs at once
            store.save_account(Account(user_id="1", username="one", access_token="a", refresh_token="r"))
            store.add_posts([Post(id=0, account_id="1", parts=("a finished post",), due_at=utcnow(), status=POSTED)])
            store.record_event("connected", "1")
        with store.account_lock("1"), store.lease("posting"):
            pass
    found = modes(tmp_path)
    assert {"tweetbot.json", "tweetbot.history.jsonl", "tweetbot.events.jsonl", "tweetbot.json.lock",
            "tweetbot.json.posting.lock", "locks/account-1.lock"} <= set(found)
    assert found == {name: 0o600 for name in found}


def test_a_backup_archive_is_0600(tmp_path: Path) -> None:
    with permissive_umask():
        store = TinyStore(tmp_path / "store" / "tweetbot.json", TokenCipher([Fernet.generate_key().decode()]))
        store.record_event("note")
        store.backup(tmp_path / "backups" / "today.tar.gz")
    assert modes(tmp_path / "backups") == {"today.tar.gz": 0o600}


def test_media_files_are_0600_in_a_0700_folder_and_so_are_restored_ones(tmp_path: Path) -> None:
    cipher = TokenCipher([Fernet.generate_key().decode()])
    with permissive_umask():
        store = TinyStore(tmp_path / "live" / "tweetbot.json", cipher)
        digests = {store.put_media(data) for data in (b"\x89PNG first", b"GIF89a second", b"\x89PNG first")}
        store.backup(tmp_path / "backup.tar.gz")
        restore_backup(tmp_path / "backup.tar.gz", tmp_path / "fresh" / "tweetbot.json", cipher)
    for folder in (tmp_path / "live", tmp_path / "fresh"):
        found = modes(folder / "tweetbot.media")
        assert set(found) == digests and len(digests) == 2
        assert found == {name: 0o600 for name in found}
        assert stat.S_IMODE((folder / "tweetbot.media").stat().st_mode) == 0o700
        every = modes(folder)
        assert every == {name: 0o600 for name in every}


def watched_init(folder: Path, *args: str) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", _WATCHED_INIT, str(folder), *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_init_creates_the_env_file_private_with_o_excl_and_never_readable_by_others(tmp_path: Path) -> None:
    first = watched_init(tmp_path)
    assert first["code"] in (0, None)
    env_path = str(tmp_path / ".env")
    creates = [flags for path, mode, flags in first["opens"] if path == env_path]  # type: ignore[attr-defined]
    assert creates and all(flags & os.O_CREAT and flags & os.O_EXCL for flags in creates), creates
    assert first["seen"], "the audit hook saw no event after the file was created"
    assert {mode for _, _, mode in first["seen"]} == {0o600}, first["seen"]  # type: ignore[attr-defined]
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600

    forced = watched_init(tmp_path, "--force")  # replaced through a private temp file, never rewritten in place
    assert forced["code"] in (0, None)
    assert {mode for _, _, mode in forced["seen"]} == {0o600}, forced["seen"]  # type: ignore[attr-defined]
    assert not any(path == env_path for path, _, _ in forced["opens"])  # type: ignore[attr-defined]
    assert modes(tmp_path) == {".env": 0o600}
