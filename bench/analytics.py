"""Reading how 10,000 posted posts of 50 accounts did, once, against the cheapest plan X allows.

    .venv/bin/python bench/analytics.py [--accounts N] [--posts-per-account N] [--store file|postgres]

Each account's posts are put at the sandbox (through its API, with the account's token) and in the
store as posted; the first account owns the app (X_APP_OWNER and the sandbox's `app_owner`). The
sandbox clock then moves past the first of ANALYTICS_AGES and the worker's `Reader` runs one round.

Prints the requests sent, the dollars the sandbox billed (and that the store kept), the seconds, and
the lower bounds: the cheapest plan for these very reads (the owner's posts as owned reads on its
timeline, $0.001 each, everyone else's by id, $0.005 each, 100 posts a request; target ratio <= 1.1),
and the issue's bound of every post as an owned read, which X allows only for the one account that
owns the app.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import requests  # noqa: E402
from fleet import granted  # noqa: E402
from stores import add_store_option, store_env  # noqa: E402

from bot import accounts  # noqa: E402
from bot.analytics import Reader  # noqa: E402
from bot.models import POSTED, Post, utcnow  # noqa: E402
from bot.pricing import OWNED_READ_PRICE, POST_READ_PRICE, dollars  # noqa: E402
from bot.read_spend import ANALYTICS, month_spend  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.tokens import TokenKeeper  # noqa: E402
from bot.xclient import TokenSet, XClient  # noqa: E402

from conftest import start_sandbox, stop_process, tweetbot_env  # noqa: E402
from sandbox_helpers import SandboxControl  # noqa: E402
from worker_support import open_test_store  # noqa: E402

PER_REQUEST = 100


def post_at_sandbox(url: str, token: str, texts: list[str]) -> list[str]:
    """Post `texts` as the token's user, in order; the tweet ids."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    ids = []
    for text in texts:
        answer = session.post(url + "/2/tweets", json={"text": text}, timeout=30)
        answer.raise_for_status()
        ids.append(str(answer.json()["data"]["id"]))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--posts-per-account", type=int, default=200)
    add_store_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        server = start_sandbox(work / "sandbox")
        try:
            sandbox = SandboxControl(server.url)
            sandbox.configure(access_token_lifetime=30 * 86400)
            measure(work, sandbox, args)
        finally:
            stop_process(server.process)


def measure(work: Path, sandbox: SandboxControl, args: argparse.Namespace) -> None:
    pairs = granted(sandbox, args.accounts, "reader")
    owner = pairs[0][0]
    sandbox.configure(app_owner=owner["id"])
    sandbox.limit("POST /2/tweets")  # setting up the posts is not what is measured: no posting windows
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        tweet_ids = list(pool.map(lambda pair: post_at_sandbox(sandbox.url, str(pair[1]["access_token"]), [
            f"post {n} of {pair[0]['username']}" for n in range(args.posts_per_account)]), pairs))
    print(f"{args.accounts * args.posts_per_account:,} posts put at the sandbox in {time.monotonic() - started:.1f} s")
    with store_env(args.store) as where:
        env = tweetbot_env(work, sandbox.url, ANALYTICS_AGES="1h", ANALYTICS_BUDGET="1000",
                           X_APP_OWNER=f"@{owner['username']}", **where)
        store = open_test_store(env)
        now = utcnow()
        for (user, answer), ids in zip(pairs, tweet_ids, strict=True):
            accounts.connect(store, TokenSet.from_response(answer, now), {"id": user["id"],
                                                                          "username": user["username"]})
            store.add_posts([Post(id=0, account_id=user["id"], parts=(f"post {n}",), due_at=now, status=POSTED,
                                  tweet_ids=(tweet_id,), posted_at=now, finished_at=now)
                             for n, tweet_id in enumerate(ids)])
        sandbox.advance(3660)
        settings = load_settings(None, env)
        clock = lambda: utcnow() + timedelta(seconds=3660)  # noqa: E731 (the sandbox's, an hour on)
        x = XClient(settings)
        reader = Reader(settings, store, x, TokenKeeper(store, x, timedelta(minutes=10), clock), clock)
        started = time.monotonic()
        done = reader.read_due()
        seconds = time.monotonic() - started
        spent = month_spend(store, clock()).get(ANALYTICS, Decimal(0))
        store.close()
    report(args, done.requests, done.posts_read, spent, Decimal(str(sandbox.charges()["total_usd"])), seconds)


def report(args: argparse.Namespace, requests_sent: int, read: int, spent: Decimal, billed: Decimal,
           seconds: float) -> None:
    per = args.posts_per_account
    cheapest = per * OWNED_READ_PRICE + (args.accounts - 1) * per * POST_READ_PRICE
    fewest = args.accounts * math.ceil(per / PER_REQUEST)
    all_owned = args.accounts * per * OWNED_READ_PRICE
    print(f"store: {args.store}")
    print(f"posts read: {read:,} of {args.accounts * per:,}, in {seconds:.1f} s ({read / seconds:,.0f} posts/s)")
    print(f"requests sent: {requests_sent:,}; the fewest possible: {fewest:,} (ratio {requests_sent / fewest:.2f})")
    print(f"dollars: the sandbox billed {dollars(billed)}, the store kept {dollars(spent)}; the cheapest plan X "
          f"allows these accounts: {dollars(cheapest)} (ratio {spent / cheapest:.3f}, target <= 1.1)")
    print(f"every post an owned read (only the app's owner may): {dollars(all_owned)} "
          f"(ratio {spent / all_owned:.2f})")


if __name__ == "__main__":
    main()
