"""More than one worker posting from one PostgreSQL store: claims that never overlap, each
account's posts in due order, and a killed worker's claims settled by the one left."""
from __future__ import annotations

import socket
import subprocess
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

from bot.models import POSTED, Post, utcnow

from sandbox_helpers import SandboxControl
from test_worker_posting import TWEETS, env_for, posted_texts
from worker_support import TWEETBOT, WorkerProcess, connect_accounts, open_test_store, wait_until


def worker_name(worker: WorkerProcess) -> str:
    """The name the worker's claims go by (bot.posting.this_worker)."""
    return f"{socket.gethostname()}:{worker.pid}"


def sent_by(store, worker: WorkerProcess) -> bool:
    """Whether the worker has sent a post that is now `posted`."""
    return any(post.claimed_by == worker_name(worker) for post in store.history(limit=10**6))


def queue_many(store, sandbox: SandboxControl, posts: int, accounts: int, prefix: str):
    """`posts` posts spread over `accounts` new accounts, due a millisecond apart from now."""
    connected = connect_accounts(store, sandbox, accounts, prefix=prefix)
    start = utcnow()
    store.add_posts([Post(id=0, account_id=connected[n % accounts].user_id, parts=(f"{prefix} post {n:04d}",),
                          due_at=start + timedelta(milliseconds=n)) for n in range(posts)])
    return connected


def each_post_once_in_order(sandbox: SandboxControl, store, count: int, what: str) -> Counter[str | None]:
    """Every one of `count` posts is at X once and `posted`, each account's in due order; posts per worker."""
    finished = store.history(limit=10**6)
    by_worker = Counter(p.claimed_by for p in finished)
    print(f"{what}: posts by worker {dict(by_worker)}")
    texts = posted_texts(sandbox)
    assert sum(texts.values()) == count and set(texts.values()) == {1}
    assert Counter(p.status for p in finished) == Counter({POSTED: count})
    assert_each_account_in_due_order(sandbox, store)
    return by_worker


def assert_each_account_in_due_order(sandbox: SandboxControl, store) -> None:
    """At X, every account's posts were created in the order they were due."""
    due = {p.parts[0]: (p.due_at, p.id) for p in store.history(limit=10**6)}
    created: dict[str, list[str]] = defaultdict(list)
    for post in sorted(sandbox.posts(), key=lambda p: int(p["id"])):
        created[post["username"]].append(post["text"])
    for username, texts in created.items():
        assert texts == sorted(texts, key=lambda text: due[text]), f"{username} posted out of order"


def test_two_workers_share_1000_posts_each_once_in_order(tmp_path: Path, sandbox: SandboxControl,
                                                         database_url: str) -> None:
    sandbox.configure(rate_limits=False)
    sandbox.fault(TWEETS, "latency", latency=0.01)
    env = env_for(tmp_path, sandbox, DATABASE_URL=database_url)
    store = open_test_store(env)
    queue_many(store, sandbox, 1000, 20, "shared")
    workers = [WorkerProcess(env, tmp_path, name=f"worker{n}") for n in (1, 2)]
    try:
        wait_until(lambda: not store.queued_posts(), 180, "every post out", every=0.5)
        assert all(worker.terminate() == 0 for worker in workers)
    finally:
        for worker in workers:
            worker.stop_quietly()
    by_worker = each_post_once_in_order(sandbox, store, 1000, "two workers, 1,000 posts on 20 accounts")
    assert set(by_worker) == {worker_name(w) for w in workers}  # both workers posted some
    listed = subprocess.run([TWEETBOT, "accounts"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0, listed.stderr
    for worker in workers:  # each worker's own heartbeat
        assert f"worker {worker_name(worker)}" in listed.stdout and "heartbeat" in listed.stdout


def test_a_worker_killed_mid_run_leaves_its_accounts_to_the_other(tmp_path: Path, sandbox: SandboxControl,
                                                                  database_url: str) -> None:
    sandbox.configure(rate_limits=False)
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
        killed_at = time.monotonic()
        wait_until(lambda: not store.queued_posts(), 180, "the survivor to finish every account", every=0.5)
        assert survivor.terminate() == 0
    finally:
        doomed.stop_quietly()
        if survivor is not None:
            survivor.stop_quietly()
    time.sleep(max(0.0, killed_at + 3 - time.monotonic()))  # anything the dead worker sent has landed
    by_worker = each_post_once_in_order(sandbox, store, 400, "one worker killed mid-run")
    assert survivor is not None
    assert by_worker[worker_name(doomed)] > 0 and by_worker[worker_name(survivor)] > 0
