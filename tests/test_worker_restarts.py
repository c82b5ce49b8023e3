"""Restarts while the dead worker's requests are still on their way to X, attempts, prompt stops.

Real worker processes, real SIGKILL and SIGTERM, the sandbox's latency faults standing
in for a slow X: a request the dead worker sent lands after the new worker has started.
"""
from __future__ import annotations

import random
import re
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from bot.models import FAILED, POSTED, SENDING, Post, utcnow

from conftest import free_port, start_sandbox, stop_process, tweetbot_env
from sandbox_helpers import SandboxControl
from test_worker_posting import env_for, posted_texts
from worker_support import (
    WorkerProcess,
    connect_accounts,
    open_test_store,
    wait_until,
    wait_until_x_has_finished_abandoned_calls,
)

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out

TWEETS = "POST /2/tweets"
TIMELINE = "GET /2/users/:id/tweets"


def requests_to(sandbox: SandboxControl, endpoint: str) -> int:
    return sandbox.state("request_counts")["request_counts"].get(endpoint, 0)


def run_until_settled(env: dict[str, str], workdir: Path, store, timeout: float = 90) -> WorkerProcess:
    """A worker that runs until nothing is queued, then stops on SIGTERM (exit 0)."""
    worker = WorkerProcess(env, workdir, name="last")
    try:
        worker.wait_started()  # its signal handlers are in place: the SIGTERM below is a clean stop
        wait_until(lambda: not store.queued_posts(), timeout, "every post settled", every=0.3)
        assert worker.terminate() == 0
    finally:
        worker.stop_quietly()
    return worker


@pytest.mark.parametrize("duplicate_window, retry_backoff", [
    (None, "8"),  # X's normal check: a resend after the first landed is refused as a duplicate
    (1, "0.2"),   # a short window: a resend well before the first lands makes a second copy
])
def test_a_restart_while_the_dead_workers_post_is_in_flight_posts_it_once(
        tmp_path: Path, sandbox: SandboxControl, duplicate_window: int | None, retry_backoff: str) -> None:
    if duplicate_window is not None:
        sandbox.configure(duplicate_window=duplicate_window)
    sandbox.fault(TWEETS, "latency", latency=5.0, times=1)
    env = env_for(tmp_path, sandbox, HTTP_TIMEOUT="2", RETRY_BACKOFF=retry_backoff)
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="restart")
    posts = store.add_posts([Post(id=0, account_id=account.user_id, parts=(f"restart post {n}",),
                                  due_at=utcnow()) for n in range(3)])
    first = WorkerProcess(env, tmp_path, name="first")
    try:
        wait_until(lambda: requests_to(sandbox, TWEETS) >= 1, 30, "the first post in flight", every=0.02)
        first.kill()  # its request lands at X five seconds later
    finally:
        first.stop_quietly()
    run_until_settled(env, tmp_path, store)
    wait_until_x_has_finished_abandoned_calls(sandbox)  # whatever the dead worker sent has landed
    assert posted_texts(sandbox) == Counter({(account.username, f"restart post {n}"): 1 for n in range(3)})
    assert [store.get_post(p.id).status for p in posts] == [POSTED] * 3


def test_posts_never_sent_are_never_given_up(tmp_path: Path, sandbox: SandboxControl) -> None:
    """Kill the worker right after each claim, three times, with MAX_ATTEMPTS=2: a claim is not an attempt."""
    sandbox.fault(TWEETS, "latency", latency=2.0)
    env = env_for(tmp_path, sandbox, HTTP_TIMEOUT="1", RETRY_BACKOFF="0.1", MAX_ATTEMPTS="2")
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="attempts")
    posts = store.add_posts([Post(id=0, account_id=account.user_id, parts=(f"claimed, maybe sent {n}",),
                                  due_at=utcnow()) for n in range(10)])
    for round_ in range(3):
        claims = len(store.events(limit=10**6, kind="sending"))
        worker = WorkerProcess(env, tmp_path, name=f"round-{round_}")
        try:
            wait_until(lambda before=claims: len(store.events(limit=10**6, kind="sending")) > before, 60,
                       "a batch claim", every=0.02)
            worker.kill()
        finally:
            worker.stop_quietly()
    sandbox.clear_faults()
    run_until_settled(env, tmp_path, store)
    finished = [store.get_post(p.id) for p in posts]
    assert [p.status for p in finished] == [POSTED] * 10, [p.last_error for p in finished if p.status == FAILED]
    assert sum(posted_texts(sandbox).values()) == 10 and set(posted_texts(sandbox).values()) == {1}
    assert sum(p.attempts for p in finished) <= requests_to(sandbox, TWEETS)  # an attempt is a request sent


def test_sigterm_exits_promptly_while_settling_twenty_posts_through_a_slow_timeline(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    sandbox.fault(TIMELINE, "latency", latency=1.5)
    env = env_for(tmp_path, sandbox)
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="settling")
    long_ago = utcnow() - timedelta(hours=1)
    for post in store.add_posts([Post(id=0, account_id=account.user_id, parts=(f"left sending {n}",),
                                      due_at=long_ago) for n in range(20)]):
        store.update_post(post.id, status=SENDING, sending_since=long_ago)
    worker = WorkerProcess(env, tmp_path)
    try:
        wait_until(lambda: requests_to(sandbox, TIMELINE) >= 1, 30, "settling under way", every=0.05)
        assert worker.terminate(timeout=10) == 0  # raises if it takes longer
    finally:
        worker.stop_quietly()
    # It stopped between posts instead of settling all twenty first.
    assert sum(p.status == SENDING for p in store.queued_posts()) > 10


def test_torture_immediate_restarts_while_requests_are_in_flight(tmp_path: Path, sandbox: SandboxControl,
                                                                 store_env: dict[str, str]) -> None:
    """200 posts, 10 accounts, faults, 50 SIGKILLs each followed within a second by a restart,
    while the dead worker's slow requests are still on their way; X's normal duplicate check."""
    rng = random.Random(31)
    sandbox.configure(rate_limits=False)
    sandbox.fault(TWEETS, "store_then_drop", probability=0.1)
    sandbox.fault(TWEETS, "status", status=503, probability=0.1)
    sandbox.fault(TWEETS, "latency", latency=1.2, probability=0.1)
    sandbox.fault("*", "latency", latency=0.03, probability=0.5)
    env = env_for(tmp_path, sandbox, MAX_ATTEMPTS="20", HTTP_TIMEOUT="2", **store_env)
    store = open_test_store(env)
    accounts = connect_accounts(store, sandbox, 10, prefix="inflight")
    start = utcnow()
    wanted = [Post(id=0, account_id=accounts[n % 10].user_id, parts=(f"in flight post {n:03d}",),
                   due_at=start + timedelta(seconds=n * 0.15)) for n in range(200)]
    store.add_posts(wanted)
    for kill in range(50):
        worker = WorkerProcess(env, tmp_path, name=f"kill-{kill}")
        worker.wait_started()
        time.sleep(rng.uniform(0.05, 0.8))
        worker.kill()
        time.sleep(rng.uniform(0, 1))
    run_until_settled(env, tmp_path, store, timeout=180)
    names = {a.user_id: a.username for a in accounts}
    expected = Counter((names[p.account_id], p.parts[0]) for p in wanted)
    at_x = posted_texts(sandbox)
    missing, duplicated = expected - at_x, {k: n for k, n in at_x.items() if n > 1}
    statuses = Counter(p.status for p in store.history(limit=1000))
    stuck = len(store.queued_posts())
    print(f"torture with immediate restarts: 200 posts, 10 accounts, 50 SIGKILLs; at X {sum(at_x.values())}, "
          f"missing {len(missing)}, duplicated {len(duplicated)}; in the store {statuses[POSTED]} posted, "
          f"{statuses[FAILED]} failed, {stuck} stuck")
    assert not missing and not duplicated and at_x == expected
    assert statuses == Counter({POSTED: 200}) and stuck == 0


def test_a_store_damaged_under_a_running_worker_stops_it_with_one_line_and_exit_2(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    env = env_for(tmp_path, sandbox)
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="damaged")
    store.add_posts([Post(id=0, account_id=account.user_id, parts=("later",), due_at=utcnow() + timedelta(hours=1))])
    worker = WorkerProcess(env, tmp_path)
    try:
        worker.wait_started()
        main = Path(env["STORE_PATH"])
        half = main.read_bytes()[: main.stat().st_size // 2]
        main.write_bytes(half)
        assert worker.process.wait(timeout=10) == 2
    finally:
        worker.stop_quietly()
    errors = [line for line in worker.log().splitlines() if "ERROR" in line]
    assert len(errors) == 1 and str(main) in errors[0], worker.log()
    assert "Traceback" not in worker.log()
    assert main.read_bytes() == half  # never rewritten


def test_a_worker_started_before_its_sandbox_waits_for_it_and_refreshes_the_kept_chain(tmp_path: Path) -> None:
    """As `tweetbot run` starts them, the worker may come up before the sandbox listens: it waits, says so
    once, and its first refresh, once the sandbox (started again on its state file) answers, goes through:
    no connection refused, no failed refresh, the chain the bot held goes on."""
    state, port = tmp_path / "sandbox.state", free_port()
    first = start_sandbox(tmp_path / "first", port=port, args=("--state", str(state)))
    try:
        x = SandboxControl(first.url)
        x.configure(access_token_lifetime=60)  # within the margin below from the start: due at once
        env = tweetbot_env(tmp_path, first.url, REFRESH_EVERY="1", REFRESH_MARGIN="600")
        store = open_test_store(env)
        (account,) = connect_accounts(store, x, 1, prefix="early")
    finally:
        stop_process(first.process)
    worker = WorkerProcess(env, tmp_path, name="early")
    try:
        wait_until(lambda: "waiting for the sandbox at" in worker.log(), 30, "the worker to wait for the sandbox")
        again = start_sandbox(tmp_path / "again", port=port, args=("--state", str(state)))
        try:
            wait_until(lambda: f"refreshed @{account.username}" in worker.log(), 60, "the first refresh")
            assert SandboxControl(again.url).reuse_count() == 0
            assert worker.terminate() == 0
        finally:
            stop_process(again.process)
    finally:
        worker.stop_quietly()
    log = worker.log()
    assert log.count("waiting for the sandbox at") == 1
    assert not re.search(r"refused|refresh failed|error", log, re.I), log
    assert store.get_account(account.user_id).refresh_failures == 0  # type: ignore[union-attr]
