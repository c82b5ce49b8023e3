"""How wide the one window is in which a refreshed pair can still be lost: from X's answer to a refresh
until the new pair is committed. A process killed inside it loses the account's chain (X has spent the
old refresh token, and the new one exists nowhere else); anywhere else, nothing is lost.

    .venv/bin/python bench/window.py [--accounts N] [--threads N]

Refreshes N accounts with the worker's own TokenKeeper, on a file store and on PostgreSQL, on as many
threads as the worker uses, and prints the window's median, p99 and longest, and the whole refresh's
(X's answer included) for scale.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sandboxed import measure_each_store  # noqa: E402
from stores import store_env  # noqa: E402

from bot.models import Account  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.tokens import TokenKeeper  # noqa: E402
from bot.xclient import TokenSet, XClient  # noqa: E402

from conftest import tweetbot_env  # noqa: E402
from sandbox_helpers import SandboxControl  # noqa: E402
from worker_support import connect_accounts, open_test_store  # noqa: E402


class TimedKeeper(TokenKeeper):
    """The worker's TokenKeeper, timing each refresh: the whole of it, and from X's answer to the commit."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.windows: list[float] = []
        self.wholes: list[float] = []
        self._timing = threading.Lock()

    def _refresh_locked(self, account: Account) -> Account:
        started = time.perf_counter()
        done = super()._refresh_locked(account)
        with self._timing:
            self.wholes.append(time.perf_counter() - started)
        return done

    def _store_new_pair(self, account: Account, tokens: TokenSet) -> Account:
        answered = time.perf_counter()  # X's answer is in this process, and nowhere else
        stored = super()._store_new_pair(account, tokens)
        with self._timing:
            self.windows.append(time.perf_counter() - answered)
        return stored


def ms(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if q < 100 else max(values) * 1000


def measure(kind: str, work: Path, sandbox: SandboxControl, accounts: int, threads: int) -> None:
    sandbox.reset()
    sandbox.configure(access_token_lifetime=7200, rate_limits=False)
    with store_env(kind, prefix="tweetbot_bench_window") as where:
        env = tweetbot_env(work / kind, sandbox.url, **where)
        (work / kind).mkdir(exist_ok=True)
        store = open_test_store(env)
        connected = connect_accounts(store, sandbox, accounts, prefix="window")
        settings = load_settings(dotenv_path=None, environ=env)
        keeper = TimedKeeper(store, XClient(settings), timedelta(seconds=settings.refresh_margin))
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda a: keeper.refresh_if_due(a.user_id, force=True), connected))
        store.close()
    windows, wholes = keeper.windows, keeper.wholes
    print(f"{kind:8} {len(windows)} refreshes on {threads} threads: X's answer to the committed pair "
          f"median {ms(windows, 50):.1f} ms, p99 {ms(windows, 99):.1f} ms, longest {ms(windows, 100):.1f} ms "
          f"(the whole refresh: median {ms(wholes, 50):.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    measure_each_store(lambda kind, work, sandbox: measure(kind, work, sandbox, args.accounts, args.threads))


if __name__ == "__main__":
    main()
