"""How fast and how punctually the worker posts, against the sandbox on loopback.

    .venv/bin/python bench/dispatch.py [--store file|postgres] [--only-a]

(a) wall time for a real worker to post 1,000 due posts for 10 accounts, against
    a bare loop of tweepy `create_tweet` calls to the same sandbox (target: ratio <= 1.5);
(b) with 200 ms sandbox latency: time until the last of 200 posts due in the same
    second across 50 accounts is out, at the default POST_CONCURRENCY (target <= 5 s),
    and the p99 lateness of single posts due at scattered times (target <= 1.5 s).

`--store postgres`: each worker run gets a PostgreSQL database of its own on
TEST_DATABASE_URL's server (see bench/stores.py), named to it by DATABASE_URL.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tweepy
from stores import FILE, add_store_option, store_env

from bot.models import Post, utcnow  # noqa: E402
from bot.transport import mount_api_base  # noqa: E402

from conftest import start_sandbox, stop_process, tweetbot_env  # noqa: E402
from sandbox_helpers import SandboxControl  # noqa: E402
from worker_support import WorkerProcess, connect_accounts, open_test_store, wait_until  # noqa: E402

TWEETS = "POST /2/tweets"


def posted_at_x(sandbox: SandboxControl) -> list[dict]:
    return sandbox.posts()


def tweets_sent(sandbox: SandboxControl) -> int:
    """How many POST /2/tweets the sandbox has answered (every one stores a post: no faults, no limits)."""
    return sandbox.state("request_counts")["request_counts"].get(TWEETS, 0)


def seconds_to_post(env: dict[str, str], work: Path, sandbox: SandboxControl, count: int,
                    name: str = "worker") -> float:
    """Start a real worker; seconds from its start until the sandbox has `count` more posts; stop it."""
    before = tweets_sent(sandbox)
    worker = WorkerProcess(env, work, name=name)
    try:
        worker.wait_started()
        started = time.monotonic()
        # A cheap counter, polled: reading every post back while the worker runs would steal its CPU.
        wait_until(lambda: tweets_sent(sandbox) - before >= count, 900, "every post out", every=0.05)
        wall = time.monotonic() - started
        worker.terminate()
    finally:
        worker.stop_quietly()
    return wall


def worker_run(work: Path, sandbox: SandboxControl, accounts: int, posts: list[tuple[int, datetime]],
               concurrency: int | None = None, store_kind: str = FILE) -> tuple[float, list[float]]:
    """Queue `posts` (account index, due), run a worker until all are out; (wall s, lateness list s).

    `concurrency` None: the default POST_CONCURRENCY. `store_kind` postgres: a database of its own."""
    with store_env(store_kind, prefix="tweetbot_bench_dispatch") as where:
        return _worker_run(work, sandbox, accounts, posts, concurrency, where)


def _worker_run(work: Path, sandbox: SandboxControl, accounts: int, posts: list[tuple[int, datetime]],
                concurrency: int | None, where: dict[str, str]) -> tuple[float, list[float]]:
    extra = {} if concurrency is None else {"POST_CONCURRENCY": str(concurrency)}
    work.mkdir(parents=True, exist_ok=True)
    env = tweetbot_env(work, sandbox.url, **extra, **where)
    store = open_test_store(env)
    connected = connect_accounts(store, sandbox, accounts, prefix=f"b{int(time.time() * 1000) % 10**6}")
    queued = store.add_posts([Post(id=0, account_id=connected[n].user_id, parts=(f"bench {i} {n} {due}",),
                                   due_at=due) for i, (n, due) in enumerate(posts)])
    try:
        wall = seconds_to_post(env, work, sandbox, len(posts), name=f"worker-{len(posts)}-{concurrency}")
    finally:
        store.close()
    due_of = {p.parts[0]: p.due_at for p in queued}
    late = [max((datetime.fromisoformat(x["created_at"].replace("Z", "+00:00")) - due_of[x["text"]])
                .total_seconds(), 0.0) for x in posted_at_x(sandbox) if x["text"] in due_of]
    return wall, late


def bare_loop(sandbox: SandboxControl, count: int, accounts: int) -> float:
    """The same number of posts by plain tweepy calls in one loop, one after another."""
    clients = []
    for user in sandbox.create_users(accounts, prefix=f"bare{int(time.time() * 1000) % 10**6}"):
        client = tweepy.Client(bearer_token=sandbox.grant(user["id"])["access_token"])
        mount_api_base(client.session, sandbox.url)
        clients.append(client)
    started = time.monotonic()
    for n in range(count):
        clients[n % accounts].create_tweet(text=f"bare {n}", user_auth=False)
    return time.monotonic() - started


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def main(only_a: bool = False, store_kind: str = FILE) -> None:
    print(f"store: {store_kind}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        server = start_sandbox(work / "sandbox")
        try:
            sandbox = SandboxControl(server.url)
            sandbox.configure(rate_limits=False)

            # The sandbox holds more posts as the bench goes on: time the bare loop before and after.
            bare_before = bare_loop(sandbox, 1000, 10)
            now = utcnow()
            wall, _ = worker_run(work / "a", sandbox, 10, [(n % 10, now) for n in range(1000)],
                                 store_kind=store_kind)
            bare = (bare_before + bare_loop(sandbox, 1000, 10)) / 2
            print(f"(a) 1,000 due posts, 10 accounts: worker {wall:.2f} s, bare tweepy loop {bare:.2f} s "
                  f"(mean of one run before and one after), ratio {wall / bare:.2f} (target <= 1.5)")

            if only_a:
                return
            sandbox.fault(TWEETS, "latency", latency=0.2)
            due = utcnow() + timedelta(seconds=3)
            _, late = worker_run(work / "b", sandbox, 50, [(n % 50, due) for n in range(200)],
                                store_kind=store_kind)
            print(f"(b) 200 posts due in one second, 50 accounts, 200 ms latency, default POST_CONCURRENCY: "
                  f"last out {max(late):.2f} s after due (target <= 5 s)")
            start = utcnow() + timedelta(seconds=3)
            scattered = [(n % 20, start + timedelta(seconds=n * 0.37)) for n in range(100)]
            _, late = worker_run(work / "c", sandbox, 20, scattered, store_kind=store_kind)
            print(f"(b) 100 single posts at scattered times, 200 ms latency: lateness median "
                  f"{statistics.median(late):.2f} s, p99 {p99(late):.2f} s (target <= 1.5 s)")
        finally:
            stop_process(server.process)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_option(parser)
    parser.add_argument("--only-a", action="store_true", help="only the 1,000-post run against the bare loop")
    args = parser.parse_args()
    main(only_a=args.only_a, store_kind=args.store)
