"""Real worker processes posting to the sandbox: SIGKILL torture, SIGTERM mid-post, a thread cut short."""
from __future__ import annotations

import random
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from bot.models import POSTED, Post, utcnow

from conftest import tweetbot_env
from sandbox_helpers import SandboxControl
from worker_support import (
    WorkerProcess,
    connect_accounts,
    open_test_store,
    wait_until,
    wait_until_x_has_finished_abandoned_calls,
)

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out

TWEETS = "POST /2/tweets"


def env_for(tmp_path: Path, sandbox: SandboxControl, **overrides: str) -> dict[str, str]:
    return tweetbot_env(tmp_path, sandbox.url, **{"RETRY_BACKOFF": "0.5", **overrides})


def posted_texts(sandbox: SandboxControl) -> Counter[tuple[str, str]]:
    """(username, text) of every live post at the sandbox, counted."""
    return Counter((p["username"], p["text"]) for p in sandbox.posts())


def test_torture_sigkill_50_times_every_post_exactly_once(tmp_path: Path, sandbox: SandboxControl,
                                                          store_env: dict[str, str]) -> None:
    rng = random.Random(29)
    sandbox.configure(rate_limits=False)
    sandbox.fault(TWEETS, "store_then_drop", probability=0.1)
    sandbox.fault(TWEETS, "status", status=503, probability=0.1)
    sandbox.fault("*", "latency", latency=0.03, probability=0.5)
    env = env_for(tmp_path, sandbox, MAX_ATTEMPTS="20", HTTP_TIMEOUT="5", **store_env)
    store = open_test_store(env)
    accounts = connect_accounts(store, sandbox, 10, prefix="torture")
    start = utcnow()
    wanted = [Post(id=0, account_id=accounts[n % 10].user_id, parts=(f"torture post {n:03d}",),
                   due_at=start + timedelta(seconds=n * 0.15)) for n in range(200)]
    store.add_posts(wanted)
    kills = 0
    while kills < 50:
        worker = WorkerProcess(env, tmp_path)
        worker.wait_started()
        time.sleep(rng.uniform(0.05, 0.8))
        worker.kill()
        kills += 1
        store.verify()  # the store is whole after every kill (the file parses; the database answers)
    worker = WorkerProcess(env, tmp_path)
    try:
        wait_until(lambda: not store.queued_posts(), 120, "every post to be settled", every=0.5)
        assert worker.terminate() == 0
    finally:
        worker.stop_quietly()
    names = {a.user_id: a.username for a in accounts}
    expected = Counter((names[p.account_id], p.parts[0]) for p in wanted)
    at_x = posted_texts(sandbox)
    missing, duplicated = expected - at_x, {k: n for k, n in at_x.items() if n > 1}
    finished = store.history(limit=1000)
    print(f"torture: 200 posts, 10 accounts, {kills} SIGKILLs; at X: {sum(at_x.values())} posts, "
          f"{len(missing)} missing, {len(duplicated)} duplicated; "
          f"{sum(p.attempts > 1 for p in finished)} needed more than one attempt")
    assert not missing and not duplicated and at_x == expected
    assert sorted(p.status for p in finished) == [POSTED] * 200


def test_sigterm_during_a_post_settles_it_and_nothing_goes_out_twice(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    sandbox.fault(TWEETS, "latency", latency=3.0, times=1)
    env = env_for(tmp_path, sandbox)
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="term")
    (post,) = store.add_posts([Post(id=0, account_id=account.user_id, parts=("in flight at SIGTERM",),
                                    due_at=utcnow())])
    worker = WorkerProcess(env, tmp_path)
    try:
        wait_until(lambda: sandbox.state("request_counts")["request_counts"].get(TWEETS), 30, "the post in flight")
        assert worker.terminate(timeout=10) == 0
    finally:
        worker.stop_quietly()
    assert store.get_post(post.id).status == POSTED
    # A later post of the account, due now: the new worker sends it only with or after every earlier
    # post of the account it would send (or settle), so once it is out a second copy would be at X.
    (later,) = store.add_posts([Post(id=0, account_id=account.user_id, parts=("due after the restart",),
                                     due_at=utcnow())])
    again = WorkerProcess(env, tmp_path, name="again")
    try:
        again.wait_started()
        wait_until(lambda: store.get_post(later.id).status == POSTED, 30, "the later post to go out")
        assert again.terminate() == 0
    finally:
        again.stop_quietly()
    assert posted_texts(sandbox) == Counter({("term_1", "in flight at SIGTERM"): 1, ("term_1", "due after the restart"): 1})


def test_a_thread_cut_by_sigkill_after_part_3_resumes_with_part_4_replying_to_part_3(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    # Part 4's call hangs, then fails without storing anything: the kill lands while it hangs.
    sandbox.fault(TWEETS, "status", status=503, latency=5.0, after=3, times=1)
    env = env_for(tmp_path, sandbox, HTTP_TIMEOUT="3")
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="thread")
    parts = tuple(f"part {n} of 5" for n in range(1, 6))
    (post,) = store.add_posts([Post(id=0, account_id=account.user_id, parts=parts, due_at=utcnow())])
    worker = WorkerProcess(env, tmp_path)
    try:
        wait_until(lambda: sandbox.state("request_counts")["request_counts"].get(TWEETS, 0) >= 4, 30,
                   "part 4 in flight")
        worker.kill()
    finally:
        worker.stop_quietly()
    cut = store.get_post(post.id)
    assert cut.status == "sending" and len([t for t in cut.tweet_ids if t]) == 3
    first_three = cut.tweet_ids[:3]
    wait_until_x_has_finished_abandoned_calls(sandbox)  # the hanging call ends at X (stores nothing)
    again = WorkerProcess(env, tmp_path, name="again")
    try:
        wait_until(lambda: store.get_post(post.id).status == POSTED, 60, "the thread to finish")
        assert again.terminate() == 0
    finally:
        again.stop_quietly()
    done = store.get_post(post.id)
    at_x = {p["id"]: p for p in sandbox.posts()}
    assert done.tweet_ids[:3] == first_three
    assert [at_x[i]["text"] for i in done.tweet_ids] == list(parts)
    assert [at_x[i]["reply_to"] for i in done.tweet_ids] == [None, *done.tweet_ids[:4]]
    assert len(at_x) == 5
    assert f"settled post {post.id}, left sending by a run that ended" in again.log()


def test_two_workers_at_once_post_each_post_once(tmp_path: Path, sandbox: SandboxControl) -> None:
    """A deploy overlap: only the worker holding the posting lease posts; the other keeps tokens fresh."""
    sandbox.configure(rate_limits=False)
    sandbox.fault(TWEETS, "latency", latency=0.05)
    env = env_for(tmp_path, sandbox)
    store = open_test_store(env)
    accounts = connect_accounts(store, sandbox, 3, prefix="overlap")
    start = utcnow()
    store.add_posts([Post(id=0, account_id=accounts[n % 3].user_id, parts=(f"overlap post {n}",),
                          due_at=start + timedelta(seconds=n * 0.1)) for n in range(60)])
    first = WorkerProcess(env, tmp_path, name="first")
    second = WorkerProcess(env, tmp_path, name="second")
    try:
        wait_until(lambda: not store.queued_posts(), 60, "every post out", every=0.2)
        logs = [first.log(), second.log()]  # read before stopping: the poster's stop hands the lease on
        waiter, poster = (first, second) if "this worker is the one that posts" in logs[1] else (second, first)
        assert waiter.terminate() == 0 and poster.terminate() == 0
    finally:
        first.stop_quietly()
        second.stop_quietly()
    texts = posted_texts(sandbox)
    assert sum(texts.values()) == 60 and set(texts.values()) == {1}
    assert sum("this worker is the one that posts" in log for log in logs) == 1
    assert sum("another worker is posting" in log for log in logs) == 1
