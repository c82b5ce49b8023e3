"""Three workers on one PostgreSQL against a bare loop: 10,000 accounts, each with a token due for
refresh and one post due at once (X allows one app 10,000 posts a day on pay-per-use and Pro: a post
sent twice uses one of them up).

    .venv/bin/python bench/fleet.py [--accounts N] [--workers N]

(a) a bare `requests` loop, on as many threads as the workers have posting threads in all, that
    refreshes each account once and then posts for it;
(b) the same accounts, tokens and posts in a PostgreSQL store, and `--workers` real `tweetbot worker`
    processes started together, timed until every post is at X and every token refreshed.

Prints both times and their ratio (target <= 1.5), refreshes per account (target: exactly one),
claims taken over to settle (target 0) and timeline reads, the peak of the database's connections,
and each worker's CPU seconds and resident memory. The sandbox is reset between (a) and (b), so each
starts with a fresh day's allowance.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import psycopg  # noqa: E402
import requests  # noqa: E402
from refresh import cpu_seconds, rss_mb  # noqa: E402
from stores import bench_database  # noqa: E402

from bot import accounts  # noqa: E402
from bot.models import Post, utcnow  # noqa: E402
from bot.store import TAKE_OVER_EVENT, Repository  # noqa: E402
from bot.xclient import TokenSet  # noqa: E402

from conftest import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, start_sandbox, stop_process, tweetbot_env  # noqa: E402
from pg_servers import ConnectionPeak  # noqa: E402
from sandbox_helpers import SandboxControl  # noqa: E402
from worker_support import WorkerProcess, open_test_store, wait_until  # noqa: E402

THREADS_PER_WORKER = 16  # POST_CONCURRENCY's default
TOKEN_LIFETIME = 300  # s: inside REFRESH_MARGIN (600), so every granted token is due; none expires during the run
REFRESHED_LIFETIME = 7200  # s: X's two hours, for the tokens the refreshes get (due again only in 1 h 50)


def granted(sandbox: SandboxControl, count: int, prefix: str) -> list[tuple[dict[str, str], dict[str, object]]]:
    """`count` new sandbox users, each with a token pair (the user, X's token answer)."""
    users = sandbox.create_users(count, prefix)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda user: sandbox.grant(user["id"]), users))
    return list(zip(users, answers, strict=True))


def bare_loop(url: str, pairs: list[tuple[dict[str, str], dict[str, object]]], threads: int) -> float:
    """Refresh each account once, then post for it, on `threads` threads; the wall time."""
    local = threading.local()

    def one(pair: tuple[dict[str, str], dict[str, object]]) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        user, answer = pair
        refreshed = session.post(url + "/2/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": answer["refresh_token"], "client_id": SANDBOX_CLIENT_ID},
            auth=(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET), timeout=30)
        refreshed.raise_for_status()
        posted = session.post(url + "/2/tweets", json={"text": f"bare post of {user['username']}"},
                              headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}, timeout=30)
        posted.raise_for_status()

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, pairs))
    return time.monotonic() - started


def filled_store(store: Repository, pairs: list[tuple[dict[str, str], dict[str, object]]]) -> None:
    """Every account connected as the web callback would, and one post each, due now."""
    now = utcnow()
    for user, answer in pairs:
        accounts.connect(store, TokenSet.from_response(answer, now), {"id": user["id"], "username": user["username"]})
    store.add_posts([Post(id=0, account_id=user["id"], parts=(f"fleet post of {user['username']}",),
                          due_at=now - timedelta(seconds=1)) for user, _ in pairs])




def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process now (a backend that ended since is not counted)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                total += cpu_seconds(int(entry.name))
        except (OSError, ValueError):
            continue
    return total


def transactions(admin_url: str, database: str) -> int:
    """Transactions the database has committed so far (each statement outside one counts as one)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                           (database,)).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    threads = args.workers * THREADS_PER_WORKER
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        server = start_sandbox(work / "sandbox")
        try:
            sandbox = SandboxControl(server.url)
            sandbox.configure(access_token_lifetime=TOKEN_LIFETIME)
            pairs = granted(sandbox, args.accounts, "bare")
            sandbox.configure(access_token_lifetime=REFRESHED_LIFETIME)
            bare = bare_loop(server.url, pairs, threads)
            print(f"(a) bare loop, {threads} threads: {args.accounts:,} refreshes and posts in {bare:.1f} s")

            sandbox.reset()
            sandbox.configure(access_token_lifetime=TOKEN_LIFETIME)
            with bench_database("tweetbot_bench_fleet") as url:
                run_workers(work, sandbox, server.process.pid, url, args, bare)
        finally:
            stop_process(server.process)


def run_workers(work: Path, sandbox: SandboxControl, sandbox_pid: int, url: str, args: argparse.Namespace,
                bare: float) -> None:
    env = tweetbot_env(work, sandbox.url, DATABASE_URL=url, REFRESH_MARGIN="600", REFRESH_EVERY="5")
    store = open_test_store(env)
    filled_store(store, granted(sandbox, args.accounts, "fleet"))
    sandbox.configure(access_token_lifetime=REFRESHED_LIFETIME)
    database = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    peak = ConnectionPeak(admin, database=database, every=0.1)
    committed = transactions(admin, database)
    cpu_before = {"sandbox": cpu_seconds(sandbox_pid), "postgres": postgres_cpu()}
    started = time.monotonic()
    workers = [WorkerProcess(env, work, name=f"worker{n}") for n in range(1, args.workers + 1)]
    try:
        marks: dict[str, float] = {}

        def done() -> bool:
            """Counted from the sandbox's request counters (no fault: each request did its work); the
            chains, read once at the end, say that each account was refreshed once."""
            counts = sandbox.state("request_counts")["request_counts"]
            if counts.get("POST /2/oauth2/token", 0) >= args.accounts:
                marks.setdefault("refreshed", time.monotonic() - started)
            if counts.get("POST /2/tweets", 0) >= args.accounts:
                marks.setdefault("posted", time.monotonic() - started)
            return "refreshed" in marks and "posted" in marks
        for worker in workers:
            worker.wait_started()
        marks["started"] = time.monotonic() - started
        wait_until(done, 3600, "every post out and every token refreshed", every=0.25)
        took = time.monotonic() - started
        usage = [(cpu_seconds(w.pid), rss_mb(w.pid)) for w in workers]
        others = {"sandbox": cpu_seconds(sandbox_pid) - cpu_before["sandbox"],
                  "PostgreSQL": postgres_cpu() - cpu_before["postgres"]}
        for worker in workers:
            worker.terminate(timeout=60)
    finally:
        for worker in workers:
            worker.stop_quietly()
        most = peak.stop()
    state = sandbox.state("request_counts", "chains", "reuse_count")
    refreshes = Counter(chain["refreshes"] for chain in state["chains"])
    counts = state["request_counts"]
    taken = len(store.events(limit=10**6, kind=TAKE_OVER_EVENT))
    print(f"(b) {args.workers} workers: {args.accounts:,} refreshes and posts in {took:.1f} s, "
          f"{took / bare:.2f} x the bare loop (target <= 1.5); all started after {marks['started']:.1f} s, "
          f"every post out after {marks['posted']:.1f} s, every token refreshed after {marks['refreshed']:.1f} s")
    print(f"    refreshes per account: {dict(sorted(refreshes.items()))} (target: all exactly 1); "
          f"spent tokens presented again: {state['reuse_count']}")
    print(f"    POST /2/tweets {counts.get('POST /2/tweets', 0):,} for {args.accounts:,} posts; timeline reads "
          f"{counts.get('GET /2/users/:id/tweets', 0)}; claims taken over to settle: {taken} (target 0)")
    committed = transactions(admin, database) - committed
    print(f"    peak connections to the database: {most}; transactions: {committed:,} "
          f"({committed / args.accounts:.1f} per account)")
    for n, (cpu, rss) in enumerate(usage, start=1):
        print(f"    worker {n}: {cpu:.1f} CPU s, {rss:.0f} MB resident")
    print(f"    meanwhile: the sandbox {others['sandbox']:.1f} CPU s, PostgreSQL {others['PostgreSQL']:.1f} CPU s "
          f"(2 cores: {2 * took:.0f} CPU s in all)")


if __name__ == "__main__":
    main()
