"""What an idle worker costs, with an empty queue and with 10,000 and 100,000 posts queued for later.

    .venv/bin/python bench/idle.py [seconds] [--store file|postgres] [--queued 0,10000,100000]

Starts the real sandbox and a real `tweetbot worker` process on a store with one
connected account, lets it settle in, then measures over 60 s (or `seconds`) the
CPU the worker process used (user + system, from /proc) and its resident memory
(at the end, and the peak). Target with 10,000 and with 100,000 queued: at most
1 % CPU and 80 MB. Nothing is due in the window; the heartbeat rewrites the main
file every 30 s (a file store) or its row (PostgreSQL).

`--store postgres`: each count gets a PostgreSQL database of its own on
TEST_DATABASE_URL's server (see bench/stores.py), named to the worker by DATABASE_URL.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from stores import add_store_option, store_env

from bot.models import Post, utcnow  # noqa: E402

from conftest import start_sandbox, stop_process, tweetbot_env  # noqa: E402
from sandbox_helpers import SandboxControl  # noqa: E402
from worker_support import WorkerProcess, connect_accounts, open_test_store  # noqa: E402

QUEUED = (0, 10_000, 100_000)
WINDOW = 60.0
TARGET_FROM = 10_000  # the counts the 1 % and 80 MB target is for
BATCH = 10_000
SETTLE_IN = 5.0  # seconds after start-up before the window opens (imports, the first run of every job)
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory now and at its peak, in MB."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def measure(folder: Path, sandbox: SandboxControl, queued: int, window: float,
            where: dict[str, str]) -> tuple[float, float, float]:
    """CPU % over the window, RSS and peak RSS (MB) of an idle worker with `queued` posts for later."""
    folder.mkdir(parents=True, exist_ok=True)
    env = tweetbot_env(folder, sandbox.url, **where)
    store = open_test_store(env)
    try:
        (account,) = connect_accounts(store, sandbox, 1, prefix=f"idle{queued}")
        later = utcnow() + timedelta(days=2)
        for start in range(0, queued, BATCH):
            store.add_posts([Post(id=0, account_id=account.user_id, parts=(f"queued for later, number {n}",),
                                  due_at=later + timedelta(minutes=n))
                             for n in range(start, min(start + BATCH, queued))])
    finally:
        store.close()
    worker = WorkerProcess(env, folder)
    try:
        worker.wait_started()
        time.sleep(SETTLE_IN)
        cpu, wall = cpu_seconds(worker.pid), time.monotonic()
        time.sleep(window)
        used, elapsed = cpu_seconds(worker.pid) - cpu, time.monotonic() - wall
        rss, peak = memory_mb(worker.pid)
        assert worker.terminate() == 0, worker.log()[-2000:]
    finally:
        worker.stop_quietly()
    return 100 * used / elapsed, rss, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seconds", nargs="?", type=float, default=WINDOW, help="the window (default %(default)s)")
    add_store_option(parser)
    parser.add_argument("--queued", default=",".join(str(n) for n in QUEUED),
                        help="posts queued for later in each run, comma-separated (default %(default)s)")
    args = parser.parse_args()
    window, store_kind = args.seconds, args.store
    print(f"store: {store_kind}", flush=True)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        server = start_sandbox(folder / "sandbox")
        sandbox = SandboxControl(server.url, server=server)
        try:
            for queued in (int(n) for n in args.queued.split(",")):
                sandbox.reset()
                with store_env(store_kind, prefix="tweetbot_bench_idle") as where:
                    cpu, rss, peak = measure(folder / f"queued-{queued}", sandbox, queued, window, where)
                verdict = "" if queued < TARGET_FROM else \
                    f"  ({'meets' if cpu <= 1 and rss <= 80 else 'misses'} the target of 1 % and 80 MB)"
                print(f"idle worker, {queued:>7,} posts queued for later, {window:.0f} s: CPU {cpu:5.2f} %, "
                      f"RSS {rss:5.1f} MB (peak {peak:5.1f} MB){verdict}", flush=True)
        finally:
            sandbox.http.close()
            stop_process(server.process)


if __name__ == "__main__":
    main()
