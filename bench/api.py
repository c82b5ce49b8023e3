"""The API's figures: POST /api/v1/posts under gunicorn (requests a second, p50/p99 latency) on the file
store and on PostgreSQL, then how long a post's `post.posted` webhook takes to arrive (bench/webhooks.py).

    .venv/bin/python bench/api.py [--requests 2000] [--clients 8] [--accounts 10] [--no-webhooks]

Starts the web app as the Procfile does (gunicorn, 2 workers) on a scratch store with connected
accounts, makes an API key, and sends `--requests` POST /api/v1/posts (each with its own
Idempotency-Key, as a careful client does) from `--clients` threads at once. Prints requests a
second and the client's p50/p99 latency, and checks every post was stored once; first on the file
store, then on a scratch database of TEST_DATABASE_URL's server (as the other benches: bench/stores.py).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from served import environment, fill, free_port, wait_until_up  # noqa: E402
from stores import FILE, POSTGRES, store_env  # noqa: E402

from bot.api_keys import create_key  # noqa: E402
from bot.cli.processes import gunicorn_command  # noqa: E402
from bot.models import utcnow  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.store import open_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--no-webhooks", action="store_true", help="skip the webhook delay (bench/webhooks.py)")
    args = parser.parse_args()
    for kind in (FILE, POSTGRES):
        bench_posts(args, kind)
    if not args.no_webhooks:
        subprocess.run([sys.executable, str(ROOT / "bench" / "webhooks.py"), "--posts", "60"], check=True)


def bench_posts(args: argparse.Namespace, kind: str) -> None:
    """POST /api/v1/posts on a file store or a scratch PostgreSQL database (`kind`)."""
    with tempfile.TemporaryDirectory() as scratch, store_env(kind, "tweetbot_bench_api") as where:
        folder, port = Path(scratch), free_port()
        env = {**environment(folder, port), "API_RATE": "100000", **where}
        store = open_store(load_settings(None, env))
        fill(store, args.accounts, queued=0, finished=0)
        key = create_key(store, "bench", ["posts:write"], utcnow())[1]
        url = f"http://127.0.0.1:{port}"
        with (folder / "gunicorn.log").open("wb") as log:
            process = subprocess.Popen(gunicorn_command("127.0.0.1", port, 2), cwd=ROOT, env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_up(url, process, 2)
            took, seconds = send_all(url, key, args)
        finally:
            process.terminate()
            process.wait(timeout=10)
        stored = len(store.queued_posts())
        store.close()
    took.sort()
    print(f"{kind} store, gunicorn 2 workers, {args.clients} clients: {args.requests} POST /api/v1/posts in "
          f"{seconds:.1f} s = {args.requests / seconds:.0f} requests/s; p50 {statistics.median(took):.1f} ms, "
          f"p99 {took[int(len(took) * 0.99) - 1]:.1f} ms; {stored} posts stored (expected {args.requests})")


def send_all(url: str, key: str, args: argparse.Namespace) -> tuple[list[float], float]:
    """Every request from the clients at once: each one's latency (ms), and the wall time (s)."""
    due = (utcnow() + timedelta(days=2)).isoformat()
    sessions = [requests.Session() for _ in range(args.clients)]

    def send(n: int) -> float:
        start = time.perf_counter()
        answer = sessions[n % args.clients].post(
            f"{url}/api/v1/posts", timeout=30,
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": f"bench-{n}"},
            json={"account": f"bench_{n % args.accounts:02d}", "text": f"bench post {n}", "at": due})
        if answer.status_code != 201:
            raise SystemExit(f"request {n} answered {answer.status_code}: {answer.text}")
        return (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        took = list(pool.map(send, range(args.requests)))
    return took, time.perf_counter() - start


if __name__ == "__main__":
    main()
