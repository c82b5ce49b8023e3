"""What an idle worker costs, with an empty queue and with 10,000 posts queued for later.

    .venv/bin/python bench/idle.py [seconds]

Starts the real sandbox and a real `tweetbot worker` process on a store with one
connected account, lets it settle in, then measures over 60 s (or `seconds`) the
CPU the worker process used (user + system, from /proc) and its resident memory
(at the end, and the peak). Target with 10,000 queued: at most 1 % CPU and 80 MB.
Nothing is due in the window; the heartbeat rewrites the main file every 30 s.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bot.models import Post, utcnow  # noqa: E402

from conftest import start_sandbox, stop_process, tweetbot_env  # noqa: E402
from sandbox_helpers import SandboxControl  # noqa: E402
from worker_support import WorkerProcess, connect_accounts, open_test_store  # noqa: E402

QUEUED = (0, 10_000)
WINDOW = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
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


def measure(folder: Path, sandbox: SandboxControl, queued: int) -> tuple[float, float, float]:
    """CPU % over the window, RSS and peak RSS (MB) of an idle worker with `queued` posts for later."""
    env = tweetbot_env(folder, sandbox.url)
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix=f"idle{queued}")
    later = utcnow() + timedelta(days=2)
    store.add_posts([Post(id=0, account_id=account.user_id, parts=(f"queued for later, number {n}",),
                          due_at=later + timedelta(minutes=n)) for n in range(queued)])
    worker = WorkerProcess(env, folder)
    try:
        worker.wait_started()
        time.sleep(SETTLE_IN)
        cpu, wall = cpu_seconds(worker.pid), time.monotonic()
        time.sleep(WINDOW)
        used, elapsed = cpu_seconds(worker.pid) - cpu, time.monotonic() - wall
        rss, peak = memory_mb(worker.pid)
        assert worker.terminate() == 0, worker.log()[-2000:]
    finally:
        worker.stop_quietly()
    return 100 * used / elapsed, rss, peak


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        server = start_sandbox(folder / "sandbox")
        sandbox = SandboxControl(server.url, server=server)
        try:
            for queued in QUEUED:
                sandbox.reset()
                cpu, rss, peak = measure(folder / f"queued-{queued}", sandbox, queued)
                verdict = "" if queued < 10_000 else \
                    f"  ({'meets' if cpu <= 1 and rss <= 80 else 'misses'} the target of 1 % and 80 MB)"
                print(f"idle worker, {queued:>6,} posts queued for later, {WINDOW:.0f} s: CPU {cpu:5.2f} %, "
                      f"RSS {rss:5.1f} MB (peak {peak:5.1f} MB){verdict}", flush=True)
        finally:
            sandbox.http.close()
            stop_process(server.process)


if __name__ == "__main__":
    main()
