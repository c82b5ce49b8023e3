"""The CLI, remote (issue 21): with TWEETBOT_URL and TWEETBOT_API_KEY, `tweetbot post`, `import`, `queue`,
`history`, `cancel`, `post-now`, `retry`, `accounts` and `slots` drive a deployed bot through `/api/v1`, with
the same output and refusals as locally.

Two worlds are kept the same: a local one (a store that real `tweetbot` processes open, as on the bot's
host) and a remote one (gunicorn on a store of its own, and `tweetbot` processes with no store, no
DATABASE_URL and no TOKEN_KEY, in an empty folder). Both start with the same accounts and posts, and
every command runs in both, in the same order, so both stores hand out the same ids and the outputs
can be compared as they are. Both stores: the file store and PostgreSQL (a database for each world).
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from test_queue_support import utc

from bot.api_keys import create_key
from bot.models import FAILED, POSTED, REFUSED, Account, Post, utcnow
from bot.refusals import InThePast, NoSlots, QueueError
from bot.remote import REFUSALS, refusal
from bot.schedules import SlotSpecError
from bot.settings import DEFAULT_SCOPES, load_settings
from bot.store import Repository, open_store
from bot.store.heartbeats import beat

from conftest import TWEETBOT, SandboxControl, free_port
from media_support import image_bytes
from web_support import WebServer, gunicorn, web_env

ZONE = "Europe/Berlin"
ALL_SCOPES = ("posts:read", "posts:write", "accounts:read")
#: What the remote process must do without: the bot's store and its secrets.
LOCAL_ONLY = ("DATABASE_URL", "STORE_PATH", "TOKEN_KEY", "SECRET_KEY", "ADMIN_PASSWORD", "TEST_DATABASE_URL",
              "TWEETBOT_URL", "TWEETBOT_API_KEY")
# A time relative to the moment a command runs ("in 1 h 59 min", "3 min ago"), and the clock a past time is
# refused against ("it is … now"): the two runs of a command are seconds apart, so these may differ.
_RELATIVE = re.compile(r"\b(?:in )?\d+ (?:h|min|s)(?: \d+ min)?(?: ago)?\b|\bjust now\b|\bnever\b")
_NOW = re.compile(r"\(it is [^)]* now\)")


@dataclass
class Worlds:
    """The local world (`tweetbot` on a store) and the remote one (`tweetbot` on the API of `server`)."""

    server: WebServer
    local_env: dict[str, str]
    local_dir: Path
    laptop: Path  # the remote commands' folder: empty, no .env, no store
    key: str
    stores: list[Repository] = field(default_factory=list)  # local, remote

    def remote_env(self, **variables: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if k not in LOCAL_ONLY}
        return {**clean, "TWEETBOT_URL": self.server.url, "TWEETBOT_API_KEY": self.key, "TIMEZONE": ZONE,
                **variables}

    def local(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _tweetbot(args, self.local_dir, self.local_env)

    def remote(self, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
        env = self.remote_env(**variables)
        assert not any(name in env for name in ("DATABASE_URL", "STORE_PATH", "TOKEN_KEY"))
        return _tweetbot(args, self.laptop, env)

    def same(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `tweetbot ARGS` locally, then remotely: the same output, errors and exit code."""
        here, there = self.local(*args), self.remote(*args)
        assert "Traceback" not in here.stderr + there.stderr, (here.stderr, there.stderr)
        assert (there.returncode, _normal(there.stdout), _normal(there.stderr)) == (
            here.returncode, _normal(here.stdout), _normal(here.stderr)), args
        return here

    def both(self, files: dict[str, bytes | str]) -> None:
        """Write `files` into both worlds' folders (a command names them relative to its folder)."""
        for folder in (self.local_dir, self.laptop):
            for name, content in files.items():
                path = folder / name
                path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)


def _tweetbot(args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWEETBOT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _normal(text: str) -> str:
    return _NOW.sub("(it is NOW)", _RELATIVE.sub("<relative>", text))


def _accounts(store: Repository) -> None:
    """The same accounts in each world, as the consent flow leaves them (and one needing its owner)."""
    expires = utcnow() + timedelta(hours=2)
    store.save_account(Account(user_id="101", username="alice", access_token="a", refresh_token="r",
                               expires_at=expires, scopes=DEFAULT_SCOPES, refreshed_at=utc(2026, 1, 2, 3, 4)))
    store.save_account(Account(user_id="202", username="bob", access_token="a", refresh_token="r",
                               expires_at=expires, scopes=DEFAULT_SCOPES[:-1], hold_until=utc(2040, 1, 1),
                               hold_reason="X's 24-hour limit"))
    store.save_account(Account(user_id="303", username="carol", status="needs_reconnect", refresh_failures=4,
                               last_error="X refused the refresh token (invalid_grant)", scopes=DEFAULT_SCOPES))
    store.add_posts([Post(id=0, account_id="101", parts=("Out already",), due_at=utc(2026, 1, 5, 9),
                          status=POSTED, tweet_ids=("1900000000000000001",), posted_at=utc(2026, 1, 5, 9, 0, 2))])
    store.add_posts([Post(id=0, account_id="101", parts=("Refused by X",), due_at=utc(2026, 1, 6, 9),
                          status=FAILED, failure_kind=REFUSED, last_error="X refused it (403): Forbidden")])
    with store.transaction():
        beat(store, "worker-host-1", utcnow())


@pytest.fixture
def worlds(tmp_path: Path, sandbox: SandboxControl, store_env: dict[str, str],
           request: pytest.FixtureRequest) -> Iterator[Worlds]:
    server_dir, local_dir, laptop = (tmp_path / name for name in ("server", "local", "laptop"))
    for folder in (server_dir, local_dir, laptop):
        folder.mkdir()
    local_store = {"DATABASE_URL": request.getfixturevalue("second_database_url")} if store_env else {}
    local_env = {**web_env(local_dir, sandbox, TIMEZONE=ZONE), **local_store}
    with gunicorn(tmp_path, sandbox, env={**web_env(server_dir, sandbox, TIMEZONE=ZONE), **store_env}) as server:
        stores = [open_store(load_settings(None, local_env)), open_store(server.settings)]
        for store in stores:
            _accounts(store)
        key = create_key(stores[1], "laptop", ALL_SCOPES, utcnow())[1]
        yield Worlds(server, local_env, local_dir, laptop, key, stores)
        for store in stores:
            store.close()
    assert not (laptop / "data").exists() and not (laptop / "tweetbot.json").exists()  # no store was made


def _posts(store: Repository) -> list[tuple[int, str, tuple[str, ...], str, int]]:
    return sorted((p.id, p.account_id, p.parts, p.status, p.media_count)
                  for p in store.queued_posts() + store.history(100))


@pytest.mark.slow  # real gunicorn and tweetbot processes
def test_posts_threads_media_slots_and_refusals_read_the_same_remotely(worlds: Worlds) -> None:
    worlds.both({"chart.png": image_bytes(), "thread.txt": "The first part\nmedia: chart.png\nalt: A chart\n"
                                                           "---\nThe second part\n"})
    worlds.same("accounts")
    worlds.same("slots")
    worlds.same("slots", "set", "@alice", "mon-fri 09:00,13:00; sat 11:00", "--tz", "America/New_York")
    worlds.same("slots", "show", "@alice")
    assert "Queued post" in worlds.same("post", "Hello from afar", "--at", "2030-01-07 09:00",
                                        "--account", "@alice").stdout
    worlds.same("post", "--thread-file", "thread.txt", "--at", "2030-01-07 10:00", "--account", "alice")
    worlds.same("post", "This week's chart", "--media", "chart.png", "--alt", "Sign-ups rose", "--account", "@alice",
                "--at", "2030-01-07 11:00")
    worlds.same("post", "Into the next free slot", "--account", "@alice")
    worlds.same("post", "Stretch, it is {date}", "--at", "2030-01-08 09:00", "--account", "@alice", "--repeat-every", "1d")
    refusals = [("post", "x" * 281, "--account", "@alice", "--at", "2030-01-07 12:00"),  # too long
                ("post", "hi", "--account", "@nobody"),  # unknown account
                ("post", "hi", "--account", "@alice", "--at", "2020-01-01 09:00"),  # in the past
                ("post", "a chart", "--media", "chart.png", "--account", "@bob"),  # no media scope
                ("post", "hi"),  # several accounts: which?
                ("post", "hi", "--account", "@alice", "--at", "someday"),  # a time that cannot be read
                ("post", "media", "--media", "nothing.png", "--account", "@alice"),  # no such file
                ("slots", "set", "@alice", "9am sometimes")]  # slots that cannot be read
    for args in refusals:
        assert worlds.same(*args).returncode == 1, args
    worlds.same("slots")
    worlds.same("queue")
    assert _posts(worlds.stores[0]) == _posts(worlds.stores[1])
    assert worlds.same("slots", "clear", "@alice").stdout == "@alice: no slots\n"
    worlds.same("slots", "show", "@alice")
    assert worlds.same("slots", "clear", "@nobody").returncode == 1


@pytest.mark.slow  # real gunicorn and tweetbot processes
def test_imports_read_the_same_remotely_and_a_bad_row_is_named_by_its_line(worlds: Worlds) -> None:
    worlds.both({"chart.png": image_bytes(seed=3), "posts.csv": (
        "account,due_at,text,thread_id,media,alt\n"
        "@alice,2030-01-08 10:00,First of a thread,t1,,\n"
        "@alice,2030-01-08 10:00,Its second part,t1,chart.png,the chart\n"
        "@alice,,Into the next free slot,,,\n"
        "@bob,2030-01-09 12:00 UTC,Bob's post,,,\n"), "bad.csv": (
        "account,due_at,text\n"
        "@alice,2030-01-08 10:00,fine\n"
        f"@alice,2030-01-08 11:00,{'x' * 281}\n"
        "@nobody,2030-01-08 12:00,who is this\n"
        "@bob,,no slots for bob\n"
        "@alice,2020-01-01 09:00,long gone\n")})
    worlds.same("slots", "set", "@alice", "daily 08:00")
    refused = worlds.same("import", "bad.csv")
    assert refused.returncode == 1 and "bad.csv: line 3: " in refused.stderr and "line 5: no due_at" in refused.stderr
    assert refused.stderr.rstrip().endswith("4 bad rows; nothing was queued")
    assert worlds.same("import", "posts.csv").stdout.startswith("Queued 3 posts (1 thread) for @alice, @bob")
    worlds.same("queue")
    assert _posts(worlds.stores[0]) == _posts(worlds.stores[1])


@pytest.mark.slow  # real gunicorn and tweetbot processes
def test_cancel_post_now_retry_and_history_read_the_same_remotely(worlds: Worlds) -> None:
    for _ in range(2):
        worlds.same("post", "Soon", "--at", "2030-01-07 09:00", "--account", "@alice")
    worlds.same("post", "Held", "--at", "2030-01-07 09:00", "--account", "@bob")
    worlds.same("cancel", "3")
    for refused in (("cancel", "1"), ("cancel", "3"), ("cancel", "999"), ("post-now", "1"), ("retry", "3"),
                    ("post-now", "2")):
        assert worlds.same(*refused).returncode == 1, refused  # posted, canceled, none, posted, not failed, failed
    assert "(was due 2030-01-07 09:00 CET)" in worlds.same("post-now", "4").stdout
    assert "note: @bob is held until 2040-01-01 01:00 CET (X's 24-hour limit)" in worlds.same("post-now", "5").stdout
    assert "Queued failed post 2 again as post 6 for @alice" in worlds.same("retry", "2").stdout
    assert "already queued again as post 6" in worlds.same("retry", "2").stderr
    history = worlds.same("history").stdout
    assert f"{worlds.server.settings.api_base}/alice#post-1900000000000000001" in history
    assert _posts(worlds.stores[0]) == _posts(worlds.stores[1])


@pytest.mark.slow  # real gunicorn and tweetbot processes
def test_no_key_a_wrong_key_a_missing_scope_and_an_unreachable_bot_are_one_line_each(worlds: Worlds) -> None:
    def one_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
        assert (result.returncode, result.stdout) == (2, ""), result
        assert len(result.stderr.strip().splitlines()) == 1 and all(w in result.stderr for w in words), result.stderr

    one_line(worlds.remote("queue", TWEETBOT_API_KEY=""), "TWEETBOT_API_KEY is not set")
    one_line(worlds.remote("queue", TWEETBOT_API_KEY="tb_000000000000_" + "x" * 43),
             "refused the key in TWEETBOT_API_KEY (tb_000000000000_…)", "revoked")
    reader = create_key(worlds.stores[1], "reader", ("accounts:read",), utcnow())[1]
    one_line(worlds.remote("queue", TWEETBOT_API_KEY=reader), "has no posts:read scope")
    one_line(worlds.remote("post", "hi", "--account", "@alice", TWEETBOT_API_KEY=reader), "has no posts:write scope")
    nowhere = f"http://127.0.0.1:{free_port()}"
    one_line(worlds.remote("history", "--url", nowhere), f"cannot reach {nowhere}: Connection refused")
    one_line(worlds.remote("accounts", TWEETBOT_URL=nowhere), f"cannot reach {nowhere}")
    assert worlds.stores[1].queued_posts() == []


@pytest.mark.slow  # real gunicorn and tweetbot processes
def test_a_server_error_is_one_line(tmp_path: Path, sandbox: SandboxControl) -> None:
    """The bot's file store cut in half: the web app answers 503, and the remote CLI says so in one line."""
    with gunicorn(tmp_path, sandbox) as server:
        store = open_store(server.settings)
        key = create_key(store, "laptop", ALL_SCOPES, utcnow())[1]
        whole = server.settings.store_path.read_bytes()
        server.settings.store_path.write_bytes(whole[:len(whole) // 2])
        env = {**{k: v for k, v in os.environ.items() if k not in LOCAL_ONLY}, "TWEETBOT_URL": server.url,
               "TWEETBOT_API_KEY": key}
        result = _tweetbot(("queue",), tmp_path, env)
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr.strip().splitlines() == [
        f"tweetbot: {server.url} failed to answer (503 SERVICE UNAVAILABLE): try again, or see the web app's log"]


def test_a_problem_s_type_names_the_refusal_class_whose_kind_it_is() -> None:
    assert REFUSALS["in-the-past"] is InThePast and REFUSALS["no-slots"] is NoSlots
    assert REFUSALS["slots"] is SlotSpecError and REFUSALS["refused"] is QueueError
    assert all(cls.kind == kind for kind, cls in REFUSALS.items())
    past = refusal("in-the-past", "2020-01-01 09:00 UTC is in the past")
    assert type(past) is InThePast and str(past) == "2020-01-01 09:00 UTC is in the past"
    unknown = refusal("a-kind-of-tomorrow", "words")
    assert type(unknown) is QueueError and str(unknown) == "words"
