"""`tweetbot backup` while a real worker posts, and `tweetbot restore` into a fresh folder.

The restored store must be exactly one moment of the live one: every account, every
post (queued or finished) and every event the live store held when the backup began,
nothing from after it ended, logs cut at the committed lengths the main file records.
"""
from __future__ import annotations

import subprocess
import tarfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet

from bot.models import POSTED, Account, Post, utcnow
from bot.store.file import TinyStore

from conftest import TWEETBOT, tweetbot_env
from sandbox_helpers import SandboxControl
from worker_support import WorkerProcess, connect_accounts, open_test_store, wait_until

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out

POSTS = 80


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWEETBOT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def oldest_first(store: TinyStore) -> tuple[list[dict[str, Any]], list[tuple[int, str, tuple[str | None, ...]]]]:
    """The store's events and finished posts, oldest first (both logs are append-only)."""
    events = list(reversed(store.events(limit=10**6)))
    history = [(p.id, p.status, p.tweet_ids) for p in reversed(store.history(limit=10**6))]
    return events, history


def is_prefix(short: list[Any], long: list[Any]) -> bool:
    return long[:len(short)] == short


def manifest_of(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive, "r:gz") as opened:
        member = opened.extractfile("manifest.json")
        assert member is not None
        manifest: dict[str, Any] = orjson.loads(member.read())
        return manifest


def test_a_backup_taken_while_the_worker_posts_restores_one_whole_moment(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    sandbox.configure(rate_limits=False)
    sandbox.fault("POST /2/tweets", "latency", latency=0.05)
    live_dir, fresh_dir = tmp_path / "live", tmp_path / "fresh"
    live_dir.mkdir()
    env = tweetbot_env(live_dir, sandbox.url, RETRY_BACKOFF="0.5")
    store = open_test_store(env)
    accounts = connect_accounts(store, sandbox, 3, prefix="backup")
    start = utcnow()
    wanted = store.add_posts([Post(id=0, account_id=accounts[n % 3].user_id, parts=(f"backup post {n}",),
                                   due_at=start + timedelta(seconds=n * 0.2)) for n in range(POSTS)])
    archive = tmp_path / "backups" / "moment.tar.gz"
    worker = WorkerProcess(env, live_dir)
    try:
        wait_until(lambda: len(store.history(limit=POSTS)) >= 10, 60, "the worker to post ten", every=0.05)
        events_before, history_before = oldest_first(store)
        made = run_cli(env, live_dir, "backup", str(archive))
        events_after, history_after = oldest_first(store)
        assert made.returncode == 0, made.stderr
        assert len(history_after) < POSTS, "the worker finished before the backup: it proves nothing"
        refused = run_cli(env, live_dir, "restore", str(archive), "--force")
        assert refused.returncode == 2 and "a worker is running" in refused.stderr, refused.stderr
        wait_until(lambda: not store.queued_posts(), 90, "every post out", every=0.2)
        assert worker.terminate() == 0
    finally:
        worker.stop_quietly()
    final_events, final_history = oldest_first(store)

    fresh_env = dict(env, STORE_PATH=str(fresh_dir / "tweetbot.json"))
    restored_run = run_cli(fresh_env, tmp_path, "restore", str(archive))
    assert restored_run.returncode == 0, restored_run.stderr
    restored = open_test_store(fresh_env)
    restored.verify()
    events, history = oldest_first(restored)

    # One moment between the two looks at the live store, and of the live store's own history.
    assert is_prefix(events_before, events) and is_prefix(events, events_after) and is_prefix(events, final_events)
    assert is_prefix(history_before, history) and is_prefix(history, history_after)
    assert is_prefix(history, final_history)
    assert len(history) >= 10 and len(events) > len(accounts)
    # Every post is there, once: finished in the history or still in the queue.
    queued = {p.id: p for p in restored.queued_posts()}
    finished = {post_id for post_id, _, _ in history}
    assert finished.isdisjoint(queued) and finished | set(queued) == {p.id for p in wanted}
    assert all(status == POSTED for _, status, _ in history)
    # The two logs and the main file are of one moment: a post moves to the history in the transaction
    # that records its "posted" event.
    assert {e.post_id for e in events if e.kind == "posted"} == finished
    for post in queued.values():
        assert post.parts == next(w.parts for w in wanted if w.id == post.id)
    # Every account, with tokens the key opens.
    assert [a.user_id for a in restored.list_accounts()] == [a.user_id for a in store.list_accounts()]
    assert all(a.refresh_token and a.access_token for a in restored.list_accounts())
    # What the archive claims is what it holds.
    held = manifest_of(archive)["held"]
    assert held == {"accounts": sorted(a.user_id for a in accounts), "queued": sorted(queued),
                    "history": len(history), "events": len(events)}
    assert f"Restored {len(accounts)} account(s), {len(queued)} queued post(s), {len(history)} finished" \
        in restored_run.stdout


def test_restore_checks_the_archive_and_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    env = tweetbot_env(tmp_path / "live", "http://127.0.0.1:9", TOKEN_KEY=key)
    live = open_test_store(env)
    live.save_account(Account(user_id="5", username="five", access_token="AT", refresh_token="RT"))
    live.add_posts([Post(id=0, account_id="5", parts=("done",), due_at=utcnow(), status=POSTED)])
    live.record_event("connected", "5")
    archive = tmp_path / "live.tar.gz"
    assert run_cli(env, tmp_path, "backup", str(archive)).returncode == 0

    target = dict(env, STORE_PATH=str(tmp_path / "target" / "tweetbot.json"))
    wrong_key = run_cli(dict(target, TOKEN_KEY=Fernet.generate_key().decode()), tmp_path, "restore", str(archive))
    assert wrong_key.returncode == 2 and "TOKEN_KEY" in wrong_key.stderr and len(wrong_key.stderr.splitlines()) == 1
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:200])
    damaged = run_cli(target, tmp_path, "restore", str(cut))
    assert damaged.returncode == 2 and "is not a tweetbot backup" in damaged.stderr
    assert not (tmp_path / "target" / "tweetbot.json").exists()

    assert run_cli(target, tmp_path, "restore", str(archive)).returncode == 0
    open_test_store(target).record_event("after the restore")
    again = run_cli(target, tmp_path, "restore", str(archive))
    assert again.returncode == 2 and "is not empty" in again.stderr
    forced = run_cli(target, tmp_path, "restore", str(archive), "--force")
    assert forced.returncode == 0, forced.stderr
    back = open_test_store(target)
    assert [e.kind for e in back.events()] == ["connected"]
    assert back.get_account("5").refresh_token == "RT"  # type: ignore[union-attr]
    kept = sorted(p.name for p in (tmp_path / "target").iterdir() if ".replaced-" in p.name)
    assert [name.split(".replaced-")[0] for name in kept] == [
        "tweetbot.events.jsonl", "tweetbot.history.jsonl", "tweetbot.json"]
