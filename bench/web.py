"""The dashboard and the calendar under gunicorn: memory of a worker and response time, with a full store.

    .venv/bin/python bench/web.py [--requests 100] [--accounts 50] [--queued 10000] [--finished 100000]
                                  [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Fills a scratch store with 50 connected accounts (tokens encrypted, as connected ones
are), 10,000 queued posts and 100,000 finished ones, starts the web app as the Procfile does
(gunicorn, 2 workers) on a free port in sandbox mode (the dashboard makes no call to X),
signs in and asks for the dashboard, the calendar and /metrics 100 times each. Prints the median and p95
response time seen by the client and the resident memory (VmRSS) of each gunicorn worker afterwards.
Targets: ≤ 100 MB per worker, ≤ 100 ms median each.

By default the store is the TinyDB file (`make run`'s). With `--database-url` (a server the
bench may create databases on) it is PostgreSQL, as on a PaaS: a scratch database is made,
migrated, filled, and dropped afterwards.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from served import PASSWORD, environment, fill, free_port, wait_until_up, workers_of  # noqa: E402
from stores import bench_database  # noqa: E402

from bot.cli.processes import gunicorn_command  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.store import open_store  # noqa: E402

MEMORY_TARGET_MB = 100
TIME_TARGET_MS = 100


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024


def sign_in(url: str) -> requests.Session:
    http = requests.Session()
    page = http.get(url + "/signin", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = http.post(url + "/signin", data={"password": PASSWORD, "csrf_token": token},
                       allow_redirects=False, timeout=10)
    if answer.status_code != 302:
        raise SystemExit(f"sign-in failed: {answer.status_code}")
    return http


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--finished", type=int, default=100_000)
    parser.add_argument("--database-url", help="a PostgreSQL server to bench the PostgreSQL store on")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        folder = Path(scratch)
        port = free_port()
        env = environment(folder, port)
        if args.database_url:
            env["DATABASE_URL"] = stack.enter_context(bench_database("tweetbot_bench_web", args.database_url))
        store = open_store(load_settings(None, env))
        fill(store, args.accounts, args.queued, args.finished)
        store.close()
        url = f"http://127.0.0.1:{port}"
        with (folder / "gunicorn.log").open("wb") as log:
            process = subprocess.Popen(gunicorn_command("127.0.0.1", port, 2), cwd=ROOT, env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_up(url, process, 2)
            http = sign_in(url)
            timings: dict[str, list[float]] = {"/": [], "/calendar": [], "/metrics": []}
            for _ in range(args.requests):
                for path, times in timings.items():
                    start = time.perf_counter()
                    answer = http.get(url + path, timeout=30)
                    times.append((time.perf_counter() - start) * 1000)
                    if answer.status_code != 200 or "@bench_00" not in answer.text:
                        raise SystemExit(f"{path} answered {answer.status_code}")
            memory = {pid: rss_mb(pid) for pid in workers_of(process.pid)}
        finally:
            process.terminate()
            process.wait(timeout=10)

    worst = max(memory.values())
    print(f"{'PostgreSQL' if args.database_url else 'file'} store: {args.accounts} accounts, {args.queued:,} queued "
          f"posts, {args.finished:,} in history; {args.requests} requests each, gunicorn 2 workers")
    for path, times in timings.items():
        times.sort()
        median = statistics.median(times)
        p95 = times[int(len(times) * 0.95) - 1]
        name = {"/": "dashboard", "/calendar": "calendar", "/metrics": "metrics"}[path]
        print(f"{name}: median {median:.1f} ms, p95 {p95:.1f} ms, fastest {times[0]:.1f} ms "
              f"(target median <= {TIME_TARGET_MS} ms): {'ok' if median <= TIME_TARGET_MS else 'OVER'}")
    for pid, mb in sorted(memory.items()):
        print(f"worker {pid}: resident memory {mb:.1f} MB")
    print(f"largest worker: {worst:.1f} MB (target <= {MEMORY_TARGET_MB} MB): "
          f"{'ok' if worst <= MEMORY_TARGET_MB else 'OVER'}")


if __name__ == "__main__":
    main()
