"""How long a post's `post.posted` webhook takes to arrive: from the moment the worker records the post as
posted until a receiver on 127.0.0.1 has the signed request (the issue's target: p50 at most 2 s).

    .venv/bin/python bench/webhooks.py [--posts N] [--accounts N]

Runs a real `tweetbot worker` against the sandbox, on a file store and on PostgreSQL, with one
subscription to `post.posted`; queues N posts due now over the accounts, and prints the delay's
median, p99 and longest, measured on this machine's one clock (the payload's `posted_at` to arrival).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sandboxed import measure_each_store  # noqa: E402
from stores import store_env  # noqa: E402

from bot import webhooks  # noqa: E402
from bot.models import Post, utcnow  # noqa: E402

from conftest import tweetbot_env  # noqa: E402
from sandbox_helpers import SandboxControl  # noqa: E402
from worker_support import WorkerProcess, connect_accounts, open_test_store, wait_until  # noqa: E402


class Arrivals:
    """A receiver keeping, for each post.posted, its payload's `posted_at` and when it arrived."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                arrived = datetime.now(timezone.utc)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                posted = datetime.fromisoformat(body["data"]["posted_at"].replace("Z", "+00:00"))
                owner.delays.append((arrived - posted).total_seconds())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/posted"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def measure(kind: str, work: Path, sandbox: SandboxControl, posts: int, accounts: int) -> None:
    sandbox.reset()
    sandbox.configure(rate_limits=False)
    receiver = Arrivals()
    folder = work / kind
    folder.mkdir()
    with store_env(kind, prefix="tweetbot_bench_webhooks") as where:
        env = tweetbot_env(folder, sandbox.url, **where)
        store = open_test_store(env)
        connected = connect_accounts(store, sandbox, accounts, prefix="hooked")
        webhooks.subscribe(store, receiver.url, [webhooks.POST_POSTED])
        worker = WorkerProcess(env, folder)
        try:
            worker.wait_started()
            store.add_posts([Post(id=0, account_id=connected[n % accounts].user_id, parts=(f"bench post {n}",),
                                  due_at=utcnow()) for n in range(posts)])
            wait_until(lambda: len(receiver.delays) >= posts, 300, "every post.posted")
            worker.terminate()
        finally:
            worker.stop_quietly()
            store.close()
            receiver.close()
    delays = sorted(receiver.delays)
    p50, p99 = statistics.median(delays), statistics.quantiles(delays, n=100)[98]
    print(f"{kind:8} {posts} posts on {accounts} account(s): posted → webhook arrived median {p50:.2f} s, "
          f"p99 {p99:.2f} s, longest {delays[-1]:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=10)
    args = parser.parse_args()
    measure_each_store(lambda kind, work, sandbox: measure(kind, work, sandbox, args.posts, args.accounts))


if __name__ == "__main__":
    main()
