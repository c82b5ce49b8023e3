"""The token keeper under load, and the idle worker's footprint.

    .venv/bin/python bench/refresh.py

Prints (1) how long a real worker takes to refresh 500 accounts whose tokens all
expire within the same minute, with the sandbox answering the token endpoint
after 50 ms (target <= 60 s); (2) the idle worker's CPU share over 60 s and its
resident memory (targets <= 1 %, <= 80 MB).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import start_sandbox, stop_process, tweetbot_env  # noqa: E402
from sandbox_helpers import SandboxControl  # noqa: E402
from worker_support import TOKEN_ENDPOINT, WorkerProcess, connect_accounts, open_test_store, wait_until  # noqa: E402

ACCOUNTS = 500
IDLE_SECONDS = 60


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime, stime in clock ticks (100 Hz)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        server = start_sandbox(work / "sandbox")
        try:
            sandbox = SandboxControl(server.url)
            sandbox.configure(access_token_lifetime=60, rate_limits=False)
            env = tweetbot_env(work, server.url, REFRESH_MARGIN="600", REFRESH_EVERY="60")
            store = open_test_store(env)
            connected = connect_accounts(store, sandbox, ACCOUNTS, prefix="bench")
            sandbox.configure(access_token_lifetime=7200)  # refreshed tokens last: the worker goes idle
            sandbox.fault(TOKEN_ENDPOINT, "latency", latency=0.05)
            started = time.monotonic()
            worker = WorkerProcess(env, work)
            try:
                def all_refreshed() -> bool:
                    chains = sandbox.state("chains")["chains"]
                    return sum(c["refreshes"] >= 1 for c in chains) >= len(connected)
                wait_until(all_refreshed, 600, "every account refreshed", every=0.5)
                took = time.monotonic() - started
                print(f"refreshed {ACCOUNTS} accounts (50 ms token endpoint) in {took:.1f} s "
                      f"(target <= 60 s), worker start-up included")
                time.sleep(2)
                before, clock = cpu_seconds(worker.pid), time.monotonic()
                time.sleep(IDLE_SECONDS)
                share = (cpu_seconds(worker.pid) - before) / (time.monotonic() - clock) * 100
                print(f"idle worker over {IDLE_SECONDS} s: CPU {share:.2f} % (target <= 1 %), "
                      f"RSS {rss_mb(worker.pid):.1f} MB (target <= 80 MB)")
                worker.terminate()
            finally:
                worker.stop_quietly()
        finally:
            stop_process(server.process)


if __name__ == "__main__":
    main()
