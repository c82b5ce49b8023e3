"""More than one worker posting from one PostgreSQL store: claims that never overlap, each account's
posts in due order, no live claim ever settled, and a killed worker's claims settled by the one left.

X refuses identical text for a while, which would hide a second send; here the sandbox's duplicate
window is 1 s, so a post sent twice shows as two posts at X. Every test counts what X received
(posts, POST requests, timeline reads) and the store's take-overs of claims.
"""
from __future__ import annotations

import os
import signal
import socket
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from bot.models import POSTED, SENDING, Post, utcnow
from bot.posting.dispatcher import CLAIM_WINDOW
from bot.posting.settling import settle_after
from bot.settings import load_settings
from bot.store import TAKE_OVER_EVENT, Repository

from sandbox_helpers import SandboxControl
from test_worker_posting import TWEETS, env_for, posted_texts
from worker_support import WorkerProcess, connect_accounts, open_test_store, wait_until

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out

TIMELINE = "GET /2/users/:id/tweets"


def worker_name(worker: WorkerProcess) -> str:
    """The name the worker's claims go by (bot.posting.dispatcher.this_worker)."""
    return f"{socket.gethostname()}:{worker.pid}"


def sent_by(store: Repository, worker: WorkerProcess) -> int:
    """How many posts the worker has sent that are now `posted`."""
    return sum(post.claimed_by == worker_name(worker) for post in store.history(limit=10**6))


def queue_many(store: Repository, sandbox: SandboxControl, posts: int, accounts: int, prefix: str) -> None:
    """`posts` posts spread over `accounts` new accounts, due a millisecond apart from now."""
    connected = connect_accounts(store, sandbox, accounts, prefix=prefix)
    start = utcnow()
    store.add_posts([Post(id=0, account_id=connected[n % accounts].user_id, parts=(f"{prefix} post {n:04d}",),
                          due_at=start + timedelta(milliseconds=n)) for n in range(posts)])


def each_post_once_in_order(sandbox: SandboxControl, store: Repository, count: int, what: str) -> Counter[str | None]:
    """Every one of `count` posts is at X once and `posted`, each account's in due order; posts per worker."""
    finished = store.history(limit=10**6)
    by_worker = Counter(p.claimed_by for p in finished)
    requests = sandbox.state("request_counts")["request_counts"]
    print(f"{what}: posts by worker {dict(by_worker)}; X received {requests.get(TWEETS, 0)} POST /2/tweets, "
          f"{requests.get(TIMELINE, 0)} timeline reads; {len(store.events(limit=10**6, kind=TAKE_OVER_EVENT))} "
          "claims taken over")
    texts = posted_texts(sandbox)
    assert sum(texts.values()) == count and set(texts.values()) == {1}
    assert Counter(p.status for p in finished) == Counter({POSTED: count})
    assert_each_account_in_due_order(sandbox, store)
    return by_worker


def assert_each_account_in_due_order(sandbox: SandboxControl, store: Repository) -> None:
    """At X, every account's posts were created in the order they were due."""
    due = {p.parts[0]: (p.due_at, p.id) for p in store.history(limit=10**6)}
    created: dict[str, list[str]] = defaultdict(list)
    for post in sorted(sandbox.posts(), key=lambda p: int(p["id"])):
        created[post["username"]].append(post["text"])
    for username, texts in created.items():
        assert texts == sorted(texts, key=lambda text: due[text]), f"{username} posted out of order"


def assert_nothing_settled(sandbox: SandboxControl, store: Repository, count: int) -> None:
    """No claim was taken over, X's timeline was never read, and X got one POST per post."""
    requests = sandbox.state("request_counts")["request_counts"]
    assert store.events(limit=10**6, kind=TAKE_OVER_EVENT) == []
    assert requests.get(TIMELINE, 0) == 0
    assert requests.get(TWEETS, 0) == count


def test_two_workers_share_the_posting_each_post_once_in_order_and_settle_no_live_claim(
        tmp_path: Path, sandbox: SandboxControl, database_env: dict[str, str]) -> None:
    """The first worker (one posting thread: it holds at most one account) is paused mid-run with
    SIGSTOP; while it cannot move, the second posts every other account, which shows the sharing
    without depending on timing, and must leave the paused one's live claims alone."""
    sandbox.configure(rate_limits=False, duplicate_window=1)
    sandbox.fault(TWEETS, "latency", latency=0.01)
    # HTTP_TIMEOUT 60: a claim dies 130 s after it was made, far beyond this test, so nothing may be settled.
    env = env_for(tmp_path, sandbox, HTTP_TIMEOUT="60", **database_env)
    store = open_test_store(env)
    queue_many(store, sandbox, 400, 20, "shared")
    paused = WorkerProcess({**env, "POST_CONCURRENCY": "1"}, tmp_path, name="paused")
    other: WorkerProcess | None = None
    try:
        wait_until(lambda: sent_by(store, paused), 60, "the first worker to have sent a post")
        os.kill(paused.pid, signal.SIGSTOP)
        other = WorkerProcess(env, tmp_path, name="other")
        # With one posting thread, the paused worker is in one account's turn at most: the other
        # posts every other account, and leaves that one's claims (committed or not) alone.
        wait_until(lambda: len({p.account_id for p in store.queued_posts()}) <= 1, 120,
                   "the second worker to post every account the paused one does not hold", every=0.2)
        os.kill(paused.pid, signal.SIGCONT)
        wait_until(lambda: not store.queued_posts(), 120, "every post out", every=0.5)
        assert paused.terminate() == 0 and other.terminate() == 0
    finally:
        if paused.process.poll() is None:
            os.kill(paused.pid, signal.SIGCONT)
        paused.stop_quietly()
        if other is not None:
            other.stop_quietly()
    by_worker = each_post_once_in_order(sandbox, store, 400, "two workers, one paused, 400 posts on 20 accounts")
    assert by_worker[worker_name(paused)] >= 1 and by_worker[worker_name(other)] >= 1
    assert_nothing_settled(sandbox, store, 400)


def test_three_workers_post_each_post_once_in_order_and_settle_nothing(
        tmp_path: Path, sandbox: SandboxControl, database_url: str) -> None:
    sandbox.configure(rate_limits=False, duplicate_window=1)
    sandbox.fault(TWEETS, "latency", latency=0.005)
    env = env_for(tmp_path, sandbox, DATABASE_URL=database_url, HTTP_TIMEOUT="60")
    store = open_test_store(env)
    workers = [WorkerProcess(env, tmp_path, name=f"worker{n}") for n in (1, 2, 3)]
    try:
        for worker in workers:
            worker.wait_started()
        queue_many(store, sandbox, 300, 30, "three")  # due now, while all three look every second
        wait_until(lambda: not store.queued_posts(), 180, "every post out", every=0.5)
        assert all(worker.terminate() == 0 for worker in workers)
    finally:
        for worker in workers:
            worker.stop_quietly()
    each_post_once_in_order(sandbox, store, 300, "three workers, 300 posts on 30 accounts")
    assert_nothing_settled(sandbox, store, 300)


def test_a_worker_killed_mid_run_leaves_its_accounts_to_the_other(tmp_path: Path, sandbox: SandboxControl,
                                                                  database_url: str) -> None:
    sandbox.configure(rate_limits=False, duplicate_window=1)
    sandbox.fault(TWEETS, "latency", latency=0.2)  # 40 posts an account: 8 s of posting each
    env = env_for(tmp_path, sandbox, DATABASE_URL=database_url, HTTP_TIMEOUT="2")
    store = open_test_store(env)
    queue_many(store, sandbox, 400, 10, "survivor")
    # The first worker to start takes every account (each is claimed again as soon as a batch
    # ends), so the doomed one starts first and is killed once the survivor is up.
    doomed = WorkerProcess(env, tmp_path, name="doomed")
    survivor: WorkerProcess | None = None
    try:
        wait_until(lambda: sent_by(store, doomed), 60, "the worker to be killed to have sent a post")
        survivor = WorkerProcess(env, tmp_path, name="survivor")
        survivor.wait_started()
        doomed.kill()
        left = {p.id: p for p in store.sending_posts() if p.claimed_by == worker_name(doomed)}
        wait_until(lambda: not store.queued_posts(), 180, "the survivor to finish every account", every=0.5)
        assert survivor.terminate() == 0
    finally:
        doomed.stop_quietly()
        if survivor is not None:
            survivor.stop_quietly()
    by_worker = each_post_once_in_order(sandbox, store, 400, "one worker killed mid-run")
    assert by_worker[worker_name(doomed)] > 0 and by_worker[worker_name(survivor)] > 0
    taken = store.events(limit=10**6, kind=TAKE_OVER_EVENT)
    assert {event.post_id for event in taken} == set(left)  # the dead claims, each taken over once
    dead_after = (settle_after(load_settings(dotenv_path=None, environ=env)) + CLAIM_WINDOW).total_seconds()
    for event in taken:
        assert f"claim of {worker_name(doomed)} made" in (event.detail or "")
        age = float((event.detail or "").split(" made ")[1].split(" s ")[0])
        assert age >= dead_after, f"post {event.post_id} was settled {age} s after its claim"
    assert all(store.get_post(post_id).status == POSTED for post_id in left)  # type: ignore[union-attr]
    assert store.sending_posts() == [] and SENDING not in {p.status for p in store.history(limit=10**6)}


def test_the_survivor_reads_the_timeline_only_for_the_dead_workers_posts(tmp_path: Path, sandbox: SandboxControl,
                                                                         database_url: str) -> None:
    """A worker killed while its posts' requests hang (they land at X after it died): the other settles
    exactly those, after their claims died, with one timeline read per uncertain post at most, and
    sends nothing twice."""
    sandbox.configure(rate_limits=False, duplicate_window=1)
    env = env_for(tmp_path, sandbox, DATABASE_URL=database_url, HTTP_TIMEOUT="2", POST_CONCURRENCY="4")
    store = open_test_store(env)
    sandbox.fault(TWEETS, "latency", latency=3, times=4)  # the first four requests hang past the timeout
    queue_many(store, sandbox, 40, 4, "hanging")
    doomed = WorkerProcess(env, tmp_path, name="doomed")
    survivor: WorkerProcess | None = None
    try:
        wait_until(lambda: sandbox.state("request_counts")["request_counts"].get(TWEETS, 0) >= 4, 60,
                   "four requests hanging at X")
        doomed.kill()
        reads_before = sandbox.state("request_counts")["request_counts"].get(TIMELINE, 0)
        left = [p for p in store.sending_posts() if p.claimed_by == worker_name(doomed)]
        survivor = WorkerProcess(env, tmp_path, name="survivor")
        wait_until(lambda: not store.queued_posts(), 120, "every post out", every=0.5)
        assert survivor.terminate() == 0
    finally:
        doomed.stop_quietly()
        if survivor is not None:
            survivor.stop_quietly()
    each_post_once_in_order(sandbox, store, 40, "a worker killed with four requests hanging")
    taken = store.events(limit=10**6, kind=TAKE_OVER_EVENT)
    assert {event.post_id for event in taken} == {post.id for post in left}
    survivor_reads = sandbox.state("request_counts")["request_counts"].get(TIMELINE, 0) - reads_before
    assert 1 <= survivor_reads <= len(left)  # one look per dead claim at most, none for its own posts
