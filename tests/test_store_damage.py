"""A damaged or incomplete store never loses data and never loops (issue 9, reproductions 4, 5 and 6).

Real files, real processes: the worker and the CLI stop with one line naming the file
(or TOKEN_KEY) and exit 2, nothing on disk changes, and the web app stays up to answer
503 with the reason.
"""
from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.crypto import TokenCipher, TokenKeyError
from bot.models import POSTED, Account, Post, to_iso, utcnow
from bot.store import RESTORE_HINT, StoreDamaged
from bot.store.file import TinyStore

from conftest import TWEETBOT, tweetbot_env
from sandbox_helpers import SandboxControl
from web_support import make_app
from worker_support import WorkerProcess, connect_accounts, open_test_store

EXIT_WITHIN = 20  # seconds: a worker that loops instead of stopping fails here


def filled_store(env: dict[str, str], sandbox: SandboxControl) -> TinyStore:
    """A store like one that has run for a while: a connected account, queued and finished posts, events."""
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="damage")
    now = utcnow()
    store.add_posts([Post(id=0, account_id=account.user_id, parts=(f"finished {n} " + "x" * 100,), due_at=now,
                          status=POSTED, tweet_ids=(str(10**18 + n),), posted_at=now) for n in range(200)])
    store.add_posts([Post(id=0, account_id=account.user_id, parts=(f"later {n}",), due_at=now + timedelta(days=1))
                     for n in range(5)])
    for n in range(100):
        store.record_event("note", account.user_id, detail=f"event {n}")
    return store


def store_bytes(folder: Path) -> dict[str, bytes]:
    """Every store file's bytes (lock files aside)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix in (".json", ".jsonl")}


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWEETBOT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def assert_one_line(output: str, *names: str) -> str:
    """The output is one line, `tweetbot: …`, naming each of `names`, and no traceback."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("tweetbot: ") and "Traceback" not in output, output
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def worker_stops(env: dict[str, str], folder: Path, *names: str) -> str:
    """Run a real worker on the damaged store: it exits 2 promptly with one line naming `names`."""
    worker = WorkerProcess(env, folder)
    try:
        code = worker.process.wait(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        worker.stop_quietly()
        raise AssertionError(f"the worker kept running on a damaged store:\n{worker.log()[-3000:]}") from None
    worker.stop_quietly()
    assert code == 2, worker.log()
    return assert_one_line(worker.log(), *names)


# -- reproduction 4: the main file is gone, its logs are not -----------------------------------------


@pytest.mark.slow
def test_a_missing_main_file_beside_its_logs_stops_the_worker_and_keeps_every_byte(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    env = tweetbot_env(tmp_path, sandbox.url)
    store = filled_store(env, sandbox)
    store.path.unlink()
    before = store_bytes(tmp_path)
    assert len(before["tweetbot.history.jsonl"]) > 20_000 and len(before["tweetbot.events.jsonl"]) > 5_000

    line = worker_stops(env, tmp_path, str(store.path), "missing", RESTORE_HINT)
    assert store_bytes(tmp_path) == before  # the logs keep every byte; no main file was written
    for command in (["queue"], ["accounts"], ["history"]):
        result = run_cli(env, tmp_path, *command)
        assert result.returncode == 2 and assert_one_line(result.stderr) == line, command
    assert store_bytes(tmp_path) == before


def test_a_missing_main_file_is_refused_in_process_too(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    store = TinyStore(tmp_path / "tweetbot.json", TokenCipher([key]))
    store.add_posts([Post(id=0, account_id="1", parts=("done",), due_at=utcnow(), status=POSTED)])
    store.record_event("note")
    store.path.unlink()
    before = store_bytes(tmp_path)
    fresh = TinyStore(tmp_path / "tweetbot.json", TokenCipher([key]))
    for action in (fresh.verify, fresh.queued_posts, fresh.history, lambda: fresh.record_event("x"),
                   lambda: fresh.set_meta("k", 1)):
        with pytest.raises(StoreDamaged, match="is missing but its logs hold data"):
            action()
    assert store_bytes(tmp_path) == before


# -- reproduction 5: the main file is cut in half -----------------------------------------------------


@pytest.mark.slow
def test_a_truncated_main_file_stops_worker_and_cli_with_one_line_and_healthz_says_why(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    env = tweetbot_env(tmp_path, sandbox.url)
    store = filled_store(env, sandbox)
    store.set_meta("worker_heartbeat", to_iso(utcnow()))
    whole = store.path.read_bytes()
    store.path.write_bytes(whole[:len(whole) // 2])
    before = store_bytes(tmp_path)

    worker_stops(env, tmp_path, str(store.path), "cannot be read", RESTORE_HINT)
    for command in (["queue"], ["accounts"], ["post", "hello", "--at", "tomorrow 09:00"], ["history"]):
        result = run_cli(env, tmp_path, *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert_one_line(result.stderr, str(store.path), RESTORE_HINT)
    assert store_bytes(tmp_path) == before

    client = make_app(tmp_path, sandbox, TOKEN_KEY=env["TOKEN_KEY"]).test_client()
    health = client.get("/healthz")
    assert health.status_code == 503
    assert str(store.path) in health.get_json()["store"] and "cannot be read" in health.get_json()["store"]
    for page in ("/", "/signin"):
        answer = client.get(page)
        assert answer.status_code == 503 and str(store.path) in answer.get_data(as_text=True), page
    assert store_bytes(tmp_path) == before


def test_a_log_shorter_than_its_committed_length_is_refused_and_left_alone(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    store = TinyStore(tmp_path / "tweetbot.json", TokenCipher([key]))
    store.add_posts([Post(id=0, account_id="1", parts=(f"done {n}",), due_at=utcnow(), status=POSTED)
                     for n in range(50)])
    log = tmp_path / "tweetbot.history.jsonl"
    log.write_bytes(log.read_bytes()[:1000])
    before = store_bytes(tmp_path)
    fresh = TinyStore(tmp_path / "tweetbot.json", TokenCipher([key]))
    with pytest.raises(StoreDamaged, match=r"tweetbot\.history\.jsonl is shorter \(1,000 bytes\)"):
        fresh.verify()
    with pytest.raises(StoreDamaged):
        store.add_posts([Post(id=0, account_id="1", parts=("more",), due_at=utcnow(), status=POSTED)])
    assert store_bytes(tmp_path) == before


def test_bytes_past_the_committed_length_are_still_cut(tmp_path: Path) -> None:
    """What a transaction that never committed appended is the one thing ever cut."""
    key = Fernet.generate_key().decode()
    store = TinyStore(tmp_path / "tweetbot.json", TokenCipher([key]))
    store.record_event("kept")
    log = tmp_path / "tweetbot.events.jsonl"
    committed = log.read_bytes()
    with log.open("ab") as handle:
        handle.write(b'{"half a rec')
    store.verify()
    store.record_event("next")
    assert log.read_bytes().startswith(committed + b'{"at"')
    assert [e.kind for e in store.events()] == ["next", "kept"]


def test_verify_remembers_its_verdict_until_the_files_change(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    store = TinyStore(tmp_path / "tweetbot.json", TokenCipher([key]))
    store.save_account(Account(user_id="1", username="one", access_token="a", refresh_token="r"))
    whole = store.path.read_bytes()
    store.path.write_bytes(b"{")
    with pytest.raises(StoreDamaged):
        store.verify()
    with pytest.raises(StoreDamaged):
        store.verify()
    store.path.write_bytes(whole)
    store.verify()
    assert store.get_account("1") is not None


# -- reproduction 6: a valid key that is not the store's -------------------------------------------------


def test_a_wrong_token_key_stops_worker_and_cli_and_healthz_says_so(tmp_path: Path, sandbox: SandboxControl) -> None:
    env = tweetbot_env(tmp_path, sandbox.url)
    store = filled_store(env, sandbox)
    store.set_meta("worker_heartbeat", to_iso(utcnow()))  # as a running worker keeps it fresh
    before = store_bytes(tmp_path)
    wrong = dict(env, TOKEN_KEY=Fernet.generate_key().decode())

    worker_stops(wrong, tmp_path, "TOKEN_KEY")
    for command in (["queue"], ["accounts"], ["post", "hello", "--at", "tomorrow 09:00"], ["refresh"]):
        result = run_cli(wrong, tmp_path, *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert_one_line(result.stderr, "TOKEN_KEY")
    assert store_bytes(tmp_path) == before

    client = make_app(tmp_path, sandbox, TOKEN_KEY=wrong["TOKEN_KEY"]).test_client()
    health = client.get("/healthz")
    assert health.status_code == 503 and "TOKEN_KEY" in health.get_json()["store"]
    assert client.get("/signin").status_code == 503
    right = make_app(tmp_path, sandbox, TOKEN_KEY=env["TOKEN_KEY"]).test_client()
    assert right.get("/healthz").status_code == 200


# -- lookups never decrypt ------------------------------------------------------------------------------------


def test_lookups_and_updates_decrypt_nothing(tmp_path: Path) -> None:
    """With a key that cannot decrypt, every lookup and an update of other fields still work."""
    key = Fernet.generate_key().decode()
    TinyStore(tmp_path / "tweetbot.json", TokenCipher([key])).save_account(
        Account(user_id="7", username="Seven", access_token="AT-7", refresh_token="RT-7"))
    blind = TinyStore(tmp_path / "tweetbot.json", TokenCipher([Fernet.generate_key().decode()]))
    assert blind.find_account("@seven").user_id == "7"  # type: ignore[union-attr]
    assert blind.find_account("7") is not None and blind.find_account("@nobody") is None
    assert [a.username for a in blind.list_accounts()] == ["Seven"]
    assert blind.update_account("7", status="needs_reconnect", last_error="x").status == "needs_reconnect"
    with pytest.raises(TokenKeyError):
        _ = blind.get_account("7").access_token  # type: ignore[union-attr]
    seen = TinyStore(tmp_path / "tweetbot.json", TokenCipher([key])).get_account("7")
    assert seen is not None
    assert (seen.access_token, seen.refresh_token, seen.status) == ("AT-7", "RT-7", "needs_reconnect")
