"""The store contract, run on every store: atomic commits, one writer at a time, tokens encrypted at rest.

Every test takes `store_at` (conftest): it runs once on a TinyDB file and once on a
PostgreSQL database of its own, each opened by `open_store` as the bot opens it.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from bot.crypto import TokenKeyError
from bot.models import CANCELED, FAILED, NEEDS_RECONNECT, POSTED, SCHEDULED, SENDING, Account, Post, utcnow
from bot.store import Event, KeptAnswer, Reading, Repository
from bot.store.postgres.migrate import latest_version

from store_support import FILE, StoreAt

WRITER = Path(__file__).with_name("store_writer.py")
ROOT = Path(__file__).resolve().parents[1]


def start_writer(where: StoreAt, count: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    return subprocess.Popen([sys.executable, str(WRITER), where.kind, where.location, where.key, str(count)],
                            stdout=subprocess.PIPE, text=True, env=env)


def account(user_id: str = "42", **changes: object) -> Account:
    values = dict(user_id=user_id, username=f"user{user_id}", access_token=f"AT-{user_id}-plaintext-access",
                  refresh_token=f"RT-{user_id}-plaintext-refresh", scopes=("tweet.write",))
    values.update(changes)
    return Account(**values)  # type: ignore[arg-type]


def test_a_new_store_has_the_schema_version_and_empty_tables(store_at: StoreAt) -> None:
    store = store_at.open()
    assert store.schema_version() == (1 if store_at.kind == FILE else latest_version())  # PostgreSQL: its migrations
    assert store.list_accounts() == [] and store.queued_posts() == [] and store.history() == []


def test_accounts_round_trip_with_their_tokens(store_at: StoreAt) -> None:
    store = store_at.open()
    store.save_account(account("42"))
    again = store_at.open().get_account("42")
    assert again is not None
    assert (again.access_token, again.refresh_token) == ("AT-42-plaintext-access", "RT-42-plaintext-refresh")
    assert again.scopes == ("tweet.write",)
    assert store_at.open().find_account("@USER42") == again


def test_a_new_pair_replaces_only_the_pair_its_refresh_spent(store_at: StoreAt) -> None:
    """`replace_pair`: written with its event while the stored refresh token is the one spent (even
    re-sealed meanwhile), keeping what others changed since the read; never over a newer pair."""
    store = store_at.open()
    store.save_account(account("42"))
    store.save_account(account("43"))
    store.save_account(account("44"))
    spent = {user_id: store.get_account(user_id) for user_id in ("42", "43", "44")}
    store.update_account("42", hold_until=utcnow() + timedelta(hours=1))  # a posting thread's hold, meanwhile
    store.save_account(account("43"))  # the same tokens sealed again: another ciphertext
    store.update_account("44", refresh_token="RT-44-newer")  # another process stored a newer pair
    at = utcnow()
    written = {user_id: store.replace_pair(before, Event(at, "refreshed", user_id), access_token=f"AT-{user_id}-new",
                                           refresh_token=f"RT-{user_id}-new", expires_at=at + timedelta(hours=2))
               for user_id, before in spent.items() if before is not None}
    kept = {user_id: store_at.open().get_account(user_id) for user_id in written}
    assert {user_id: (a.access_token, a.refresh_token) for user_id, a in kept.items() if a} == {
        "42": ("AT-42-new", "RT-42-new"), "43": ("AT-43-new", "RT-43-new"),
        "44": ("AT-44-plaintext-access", "RT-44-newer")}
    assert {user_id: (a.access_token, a.refresh_token) for user_id, a in written.items() if a} == {
        user_id: (a.access_token, a.refresh_token) for user_id, a in kept.items() if a}
    assert kept["42"] is not None and kept["42"].hold_until is not None and kept["42"].expires_at == at + timedelta(hours=2)
    assert sorted(e.account_id or "" for e in store.events(kind="refreshed")) == ["42", "43"]
    gone = spent["42"]
    store.delete_account("42")
    assert gone is not None and store.replace_pair(gone, Event(at, "refreshed", "42"), access_token="AT-x") is None
    assert len(store.events(kind="refreshed", account_id="42")) == 1  # nothing more recorded for it


def test_expiring_accounts_are_the_active_ones_whose_token_expires_by_then(store_at: StoreAt) -> None:
    store = store_at.open()
    now = utcnow()
    store.save_account(account("1", expires_at=now + timedelta(minutes=10)))  # exactly by then
    store.save_account(account("2", expires_at=now + timedelta(minutes=10, seconds=1)))
    store.save_account(account("3"))  # expiry not known
    store.save_account(account("4", expires_at=now - timedelta(minutes=1), status=NEEDS_RECONNECT))
    assert sorted(a.user_id for a in store.expiring_accounts(now + timedelta(minutes=10))) == ["1", "3"]
    assert [a.user_id for a in store.expiring_accounts(now + timedelta(minutes=10), among=["2", "3", "4"])] == ["3"]


def test_no_token_is_stored_in_plain_text(store_at: StoreAt) -> None:
    store = store_at.open()
    store.save_account(account("42"))
    store.update_account("42", access_token="AT-second-plaintext")
    raw = store_at.raw()
    assert b"user42" in raw  # the raw view sees the account
    for secret in (b"AT-42-plaintext-access", b"RT-42-plaintext-refresh", b"AT-second-plaintext", b"plaintext"):
        assert secret not in raw
    assert store.get_account("42").access_token == "AT-second-plaintext"  # type: ignore[union-attr]


def test_a_wrong_token_key_names_token_key(store_at: StoreAt) -> None:
    store_at.open().save_account(account("42"))
    wrong = store_at.open(Fernet.generate_key().decode())
    found = wrong.get_account("42")  # a lookup decrypts nothing; reading a token does
    assert found is not None and found.username == "user42"
    with pytest.raises(TokenKeyError, match="TOKEN_KEY"):
        _ = found.access_token
    with pytest.raises(TokenKeyError, match="TOKEN_KEY"):
        wrong.verify()
    store_at.open().verify()


def test_a_rotated_key_still_reads_tokens_written_with_the_old_one(store_at: StoreAt) -> None:
    store_at.open().save_account(account("42"))
    rotated = store_at.open(f"{Fernet.generate_key().decode()},{store_at.key}")
    assert rotated.get_account("42").refresh_token == "RT-42-plaintext-refresh"  # type: ignore[union-attr]


def test_finished_posts_leave_the_queue_for_the_history(store_at: StoreAt) -> None:
    store = store_at.open()
    first, second, third = store.add_posts([
        Post(id=0, account_id="42", parts=(f"post {n}",), due_at=utcnow()) for n in range(3)])
    assert (first.id, second.id, third.id) == (1, 2, 3)
    store.update_post(first.id, status=POSTED, tweet_ids=("100",))
    store.update_post(third.id, status=FAILED, last_error="duplicate")
    assert [p.id for p in store.queued_posts()] == [second.id]
    assert [(p.id, p.status) for p in store.history()] == [(third.id, FAILED), (first.id, POSTED)]
    assert store.get_post(first.id).tweet_ids == ("100",)  # type: ignore[union-attr]
    assert store.get_post(second.id).status == SCHEDULED  # type: ignore[union-attr]


def counted_by_reading(store: Repository) -> dict[tuple[str, str], int]:
    """What `post_counts` must say, counted the long way: every queued and every finished post."""
    found: dict[tuple[str, str], int] = {}
    for post in [*store.queued_posts(), *store.history(limit=10_000)]:
        found[post.account_id, post.status] = found.get((post.account_id, post.status), 0) + 1
    return found


def test_post_and_event_counts_follow_every_change_and_skip_what_was_rolled_back(store_at: StoreAt) -> None:
    store = store_at.open()
    posts = store.add_posts([Post(id=0, account_id=account_id, parts=(f"{account_id} {n}",), due_at=utcnow())
                             for account_id in ("42", "43") for n in range(4)])
    store.update_post(posts[0].id, status=POSTED, tweet_ids=("100",))
    store.update_post(posts[1].id, status=FAILED, last_error="duplicate")
    store.update_post(posts[4].id, status=SENDING)
    for kind, account_id in [("refreshed", "42"), ("refreshed", "42"), ("refreshed", "43"),
                             ("refresh_failed", "43"), ("posted", "42"), ("refreshed", None)]:
        store.record_event(kind, account_id)
    assert store.post_counts() == counted_by_reading(store) == {
        ("42", POSTED): 1, ("42", FAILED): 1, ("42", SCHEDULED): 2, ("43", SENDING): 1, ("43", SCHEDULED): 3}
    kinds = ["refreshed", "refresh_failed", "needs_reconnect"]
    assert store.event_counts(kinds) == {("42", "refreshed"): 2, ("43", "refreshed"): 1,
                                         ("43", "refresh_failed"): 1, (None, "refreshed"): 1}

    # Counted once, then changed: by this store, by another process, and by a transaction that failed.
    store.update_post(posts[2].id, status=POSTED, tweet_ids=("101",))
    other = store_at.open()
    other.update_post(posts[4].id, status=POSTED, tweet_ids=("102",))
    other.record_event("needs_reconnect", "43")
    with pytest.raises(RuntimeError), store.transaction():
        store.update_post(posts[3].id, status=CANCELED)
        store.record_event("refreshed", "42")
        raise RuntimeError("boom")
    assert store.post_counts() == counted_by_reading(store) == {
        ("42", POSTED): 2, ("42", FAILED): 1, ("42", SCHEDULED): 1, ("43", POSTED): 1, ("43", SCHEDULED): 3}
    assert store.event_counts(["needs_reconnect", "refreshed"]) == {
        ("42", "refreshed"): 2, ("43", "refreshed"): 1, (None, "refreshed"): 1, ("43", "needs_reconnect"): 1}
    assert store_at.open().post_counts() == store.post_counts()  # a fresh reader counts the same


def test_history_reads_backwards_across_blocks(store_at: StoreAt) -> None:
    store = store_at.open()
    posts = store.add_posts([Post(id=0, account_id="42", parts=("x" * 300 + str(n),), due_at=utcnow())
                             for n in range(400)])
    with store.transaction():
        for post in posts:
            store.update_post(post.id, status=POSTED)
    assert [p.id for p in store.history(limit=400)] == [p.id for p in reversed(posts)]


def test_history_of_one_status_and_account_counts_its_limit_among_those_only(store_at: StoreAt) -> None:
    store = store_at.open()
    posts = store.add_posts([Post(id=0, account_id=("42", "43")[n % 2], parts=(f"post {n}",), due_at=utcnow())
                             for n in range(12)])
    with store.transaction():
        for n, post in enumerate(posts):
            store.update_post(post.id, status=(FAILED, POSTED, CANCELED)[n % 3])
    newest_first = list(reversed(posts))
    failed = [p.id for n, p in zip(range(11, -1, -1), newest_first, strict=True) if n % 3 == 0]
    assert [p.id for p in store.history(limit=3, status=FAILED)] == failed[:3]
    assert [p.id for p in store.history(limit=50, account_id="42", status=FAILED)] == [
        p.id for n, p in zip(range(11, -1, -1), newest_first, strict=True) if n % 3 == 0 and n % 2 == 0]
    assert {p.status for p in store.history(limit=50, status=POSTED)} == {POSTED}


def test_an_answer_is_kept_under_its_key_for_its_window_and_forgotten_after(store_at: StoreAt) -> None:
    store = store_at.open()
    now = utcnow()
    old, new = KeptAnswer("f1", 201, {"id": 1}, now - timedelta(hours=30)), KeptAnswer("f2", 422, {"x": [1]}, now)
    with store.transaction():
        store.keep_answer("k:old", old)
        store.keep_answer("k:new", new)
    assert store.kept_answer("k:new", now - timedelta(hours=24)) == new
    assert store.kept_answer("k:old", now - timedelta(hours=24)) is None  # past the window: not an answer
    assert store.kept_answer("k:old", now - timedelta(hours=48)) == old
    assert store.forget_answers(now - timedelta(hours=24)) == 1
    assert store.kept_answer("k:old", now - timedelta(hours=48)) is None
    assert store.kept_answer("k:new", now - timedelta(hours=24)) == new


def test_requests_are_counted_per_key_and_minute_and_two_at_once_never_read_one_count(
        store_at: StoreAt) -> None:
    store, other = store_at.open(), store_at.open()  # two processes' views of one store
    minute = utcnow().replace(second=0, microsecond=0)
    with ThreadPoolExecutor(8) as pool:
        counts = sorted(pool.map(lambda n: (store, other)[n % 2].count_request("k1", minute), range(40)))
    assert counts == list(range(1, 41))  # each request saw its own count: none lost, none read twice
    assert other.count_request("k2", minute) == 1  # another key counts apart
    assert store.count_request("k1", minute - timedelta(minutes=1)) == 41  # a clock behind: the newest minute
    assert store.count_request("k1", minute + timedelta(minutes=1)) == 1  # the next minute starts again
    assert other.count_request("k1", minute + timedelta(minutes=1)) == 2


def test_posted_posts_are_found_by_when_they_were_posted_and_keep_their_newest_reading(store_at: StoreAt) -> None:
    store = store_at.open()
    now = utcnow()
    posts = store.add_posts([Post(id=0, account_id=str(40 + n % 2), parts=(f"read me {n}",), due_at=now)
                             for n in range(6)])
    hours_ago = [5, 1, 30, 3, 2, 4]  # finished in another order than posted
    for post, hours in zip(posts, hours_ago, strict=True):
        store.update_post(post.id, status=POSTED, tweet_ids=(str(9000 + post.id),),
                          posted_at=now - timedelta(hours=hours))
    store.update_post(store.add_posts([Post(id=0, account_id="40", parts=("failed",), due_at=now)])[0].id,
                      status=FAILED, last_error="refused")
    found = store.posted_since(now - timedelta(hours=4, minutes=30))
    assert [p.id for p in found] == [posts[5].id, posts[3].id, posts[4].id, posts[1].id]  # earliest posted first
    assert store.readings([p.id for p in posts]) == {}

    first = [Reading(p.id, p.account_id, now, 0, {"like_count": p.id}) for p in found]
    store.add_readings(first)
    later = Reading(found[0].id, found[0].account_id, now + timedelta(hours=1), 1, {"like_count": 99, "engagements": 7})
    store.add_readings([later])
    with pytest.raises(RuntimeError), store.transaction():
        store.add_readings([Reading(found[1].id, found[1].account_id, now + timedelta(hours=2), 1, {"like_count": -1})])
        raise RuntimeError("rolled back")
    kept = store_at.open().readings([p.id for p in posts])  # another handle, as another process reads
    assert kept == {later.post_id: later, **{r.post_id: r for r in first[1:]}}
    totals: dict[tuple[str, str], int] = {}
    for reading in kept.values():
        for name, value in reading.metrics.items():
            totals[reading.account_id, name] = totals.get((reading.account_id, name), 0) + value
    assert store.reading_totals(now) == totals and len(totals) == 3  # newest readings only, summed per account
    assert store.reading_totals(now + timedelta(minutes=30)) == {(later.account_id, "like_count"): 99,
                                                                 (later.account_id, "engagements"): 7}


def test_a_failed_transaction_changes_nothing(store_at: StoreAt) -> None:
    store = store_at.open()
    store.save_account(account("42"))
    before = store_at.raw()
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.update_account("42", status="needs_reconnect")
            store.add_posts([Post(id=0, account_id="42", parts=("never",), due_at=utcnow())])
            store.record_event("never")
            raise RuntimeError("boom")
    assert store_at.raw() == before
    assert store.get_account("42").status == "active"  # type: ignore[union-attr]
    assert store.queued_posts() == [] and store.events() == []


def test_a_process_sees_another_process_commits(store_at: StoreAt) -> None:
    reader = store_at.open()
    assert reader.get_meta("counter") is None
    writer = start_writer(store_at, 3)
    assert writer.wait(timeout=60) == 0
    assert reader.get_meta("counter") == 3
    assert [e.detail for e in reader.events()] == ["3", "2", "1"]


@pytest.mark.slow
def test_two_processes_increment_without_losing_an_update(store_at: StoreAt) -> None:
    writers = [start_writer(store_at, 500) for _ in range(2)]
    for writer in writers:
        assert writer.wait(timeout=300) == 0
    store = store_at.open()
    assert store.get_meta("counter") == 1000
    assert len(store.history(limit=2000)) == 999
    assert len(store.events(limit=2000)) == 1000


def wait_for_a_lock_wait(where: StoreAt, timeout: float = 30) -> None:
    """Until one session of the database waits for a lock (a row's or an advisory one)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(where.admin_url, autocommit=True) as conn:
        while not conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'").fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, f"no session of {where.admin_url} waited for a lock"
            time.sleep(0.01)


def test_a_key_read_for_update_and_a_blind_write_of_it_never_deadlock(database_store_at: StoreAt) -> None:
    """A transaction reads a key for update (its row's lock); another writes the key blindly and waits;
    the first then writes the key. The second must wait for the row, not take the key's advisory lock
    first and wait for the row under it: the first would then wait for that lock, and PostgreSQL would
    end one of them as a deadlock (seen once in two processes counting through pgbouncer)."""
    store = database_store_at.open()
    store.set_meta("counter", 1)
    failures: list[BaseException] = []
    read = threading.Event()

    def read_then_write() -> None:
        with store.transaction():
            value = store.get_meta("counter")
            read.set()
            wait_for_a_lock_wait(database_store_at)
            store.set_meta("counter", value + 1)

    def write_blindly() -> None:
        read.wait(timeout=30)
        store.set_meta("counter", 10)

    threads = [threading.Thread(target=caught(failures, work)) for work in (read_then_write, write_blindly)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert store.get_meta("counter") == 10  # the blind write came second


def caught(failures: list[BaseException], work: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - the test thread reports it to the test
            failures.append(exc)
    return run


@pytest.mark.slow
def test_sigkill_at_random_instants_leaves_the_state_before_or_after(unpooled_store_at: StoreAt) -> None:
    kill_at_random_instants(unpooled_store_at, 100)


def kill_at_random_instants(store_at: StoreAt, kills: int) -> None:
    """SIGKILL a writer `kills` times at random instants: each time the store holds the state before the
    transaction in flight or after it, whole (the pooled run is in test_store_pooled.py)."""
    rng = random.Random(20261129)
    outcomes = {"before": 0, "after": 0}
    for _ in range(kills):
        reader = store_at.open()
        acknowledged = int(reader.get_meta("counter", 0))
        reader.close()
        writer = start_writer(store_at, 100_000)
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
        printed = [writer.stdout.readline() for _ in range(rng.randint(0, 20))]
        time.sleep(rng.uniform(0, 0.01))  # land anywhere inside the next transaction
        os.kill(writer.pid, signal.SIGKILL)
        printed = "".join(printed).split() + writer.stdout.read().split()
        writer.wait()
        if printed:
            acknowledged = int(printed[-1])
        store_at.wait_until_settled()
        if store_at.kind == FILE and Path(store_at.location).exists():  # (no file yet: the state before)
            json.loads(Path(store_at.location).read_bytes())
        store = store_at.open()
        counter = int(store.get_meta("counter", 0))
        assert counter in (acknowledged, acknowledged + 1)
        outcomes["after" if counter == acknowledged + 1 else "before"] += 1
        assert_consistent(store, counter)
        store.close()
    print(f"{kills} kills: {outcomes['before']} left the state before the transaction in flight, "
          f"{outcomes['after']} the state after it")


def assert_consistent(store: Repository, counter: int) -> None:
    """Every committed transaction moved one post to the history and logged one event, no more."""
    assert len(store.history(limit=10**6)) == max(counter - 1, 0)
    assert [int(e.detail) for e in store.events(limit=10**6)] == list(range(counter, 0, -1))
    assert [p.parts for p in store.queued_posts()] == ([(f"post {counter}",)] if counter else [])


def test_due_and_sending_posts_come_from_the_queue_index(store_at: StoreAt) -> None:
    store = store_at.open()
    now = utcnow()
    later, soon, retried, sending = store.add_posts([
        Post(id=0, account_id="42", parts=("later",), due_at=now + timedelta(hours=1)),
        Post(id=0, account_id="42", parts=("soon",), due_at=now - timedelta(seconds=1)),
        Post(id=0, account_id="7", parts=("retried",), due_at=now - timedelta(minutes=1),
             next_attempt_at=now + timedelta(minutes=5)),
        Post(id=0, account_id="7", parts=("sending",), due_at=now - timedelta(minutes=2))])
    store.update_post(sending.id, status=SENDING, sending_since=now)
    assert [p.id for p in store.queued_posts(due_by=now)] == [soon.id]
    assert [p.id for p in store.queued_posts(due_by=now + timedelta(minutes=6))] == [retried.id, soon.id]
    assert [p.id for p in store.sending_posts()] == [sending.id]
    assert store.sending_posts("42") == [] and [p.id for p in store.sending_posts("7")] == [sending.id]
    store.update_post(soon.id, status=SENDING)
    assert store.queued_posts(due_by=now) == []
    assert [p.id for p in store.sending_posts()] == [sending.id, soon.id]
    assert [p.id for p in store_at.open().sending_posts()] == [sending.id, soon.id]
    store.update_post(soon.id, status=POSTED)
    assert [p.id for p in store.sending_posts()] == [sending.id]
    assert [p.id for p in store.queued_posts(due_by=now + timedelta(hours=2))] == [retried.id, later.id]


def test_the_queue_index_follows_other_processes_and_rollbacks(store_at: StoreAt) -> None:
    store, other = store_at.open(), store_at.open()
    now = utcnow()
    (post,) = store.add_posts([Post(id=0, account_id="1", parts=("p",), due_at=now - timedelta(seconds=1))])
    assert [p.id for p in other.queued_posts(due_by=now)] == [post.id] and other.sending_posts() == []
    store.set_meta("worker_heartbeat", "x")  # a change of meta only
    store.update_post(post.id, status=SENDING)
    assert other.queued_posts(due_by=now) == [] and [p.id for p in other.sending_posts()] == [post.id]
    with pytest.raises(RuntimeError):
        with other.transaction():
            other.update_post(post.id, status=SCHEDULED)
            assert [p.id for p in other.queued_posts(due_by=now)] == [post.id]
            raise RuntimeError("roll back")
    assert other.queued_posts(due_by=now) == [] and [p.id for p in other.sending_posts()] == [post.id]


def test_the_whole_queue_read_again_follows_every_change_made_elsewhere(store_at: StoreAt) -> None:
    """Both stores keep the parsed queue while it is unchanged: each kind of change made by another
    process shows in the next read, a rolled-back one never does, and what a reader gets is its own."""
    reader, writer = store_at.open(), store_at.open()
    first, second = writer.add_posts([Post(id=0, account_id="1", parts=(f"p{n}",), due_at=utcnow()) for n in (1, 2)])

    def seen() -> list[tuple[int, str, tuple[str, ...]]]:
        return [(p.id, p.status, p.parts) for p in reader.queued_posts()]

    assert seen() == [(first.id, SCHEDULED, ("p1",)), (second.id, SCHEDULED, ("p2",))]
    writer.update_post(first.id, parts=("edited",))  # same count of posts, a changed one
    assert seen() == [(first.id, SCHEDULED, ("edited",)), (second.id, SCHEDULED, ("p2",))]
    writer.update_post(second.id, status=POSTED, tweet_ids=("9",))  # finished: gone from the queue
    (third,) = writer.add_posts([Post(id=0, account_id="2", parts=("p3",), due_at=utcnow())])  # count as before
    assert seen() == [(first.id, SCHEDULED, ("edited",)), (third.id, SCHEDULED, ("p3",))]
    assert [p.id for p in reader.queued_posts("2")] == [third.id]
    with pytest.raises(RuntimeError), writer.transaction():
        writer.update_post(first.id, parts=("never",))
        raise RuntimeError("roll back")
    assert seen() == [(first.id, SCHEDULED, ("edited",)), (third.id, SCHEDULED, ("p3",))]
    reader.queued_posts().clear()  # a caller's list is its own
    assert len(reader.queued_posts()) == 2


def test_claims_take_due_posts_in_order_and_none_while_the_account_is_sending(store_at: StoreAt) -> None:
    store = store_at.open()
    now = utcnow()
    first, second, third, later = store.add_posts(
        [Post(id=0, account_id="1", parts=(f"due {n}",), due_at=now - timedelta(seconds=3 - n)) for n in range(3)]
        + [Post(id=0, account_id="1", parts=("later",), due_at=now + timedelta(hours=1))])
    (elsewhere,) = store.add_posts([Post(id=0, account_id="2", parts=("other",), due_at=now)])
    claimed = store.claim_due("1", now, 2, "worker-a")
    assert [p.id for p in claimed] == [first.id, second.id]
    assert {(p.status, p.claimed_by, p.sending_since) for p in claimed} == {(SENDING, "worker-a", now)}
    assert store.get_post(first.id) == claimed[0]  # as stored
    assert store.claim_due("1", now, 5, "worker-b") == []  # one batch of an account at a time
    assert [p.id for p in store.claim_due("2", now, 5, "worker-b")] == [elsewhere.id]
    assert len(store.events(kind="sending")) == 3
    for post in claimed:
        store.update_post(post.id, status=POSTED)
    assert [p.id for p in store.claim_due("1", now, 5, "worker-b", post_id=third.id)] == [third.id]
    assert store.get_post(later.id).status == SCHEDULED  # type: ignore[union-attr]
