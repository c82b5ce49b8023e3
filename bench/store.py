"""How much one post-update transaction costs as the posted history grows.

    .venv/bin/python bench/store.py [--store file|postgres] [--sizes 1000,100000,1000000]

Prints the median cost of updating a queued post, of finishing one (which moves
it to the history), of the worker's due-posts question and of a history page,
with 1k, 100k and 1M posts in the store (the history grows between sizes; 100
posts stay queued). Target: at 1M no more than 2x the update's cost at 1k.

`--store postgres` works in a database of its own on TEST_DATABASE_URL's server
(see bench/stores.py); the history is inserted by `add_posts` in batches of 10k,
then `ANALYZE`d, as autovacuum would shortly after such a load.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet
from stores import FILE, POSTGRES, add_store_option, bench_database

from bot.crypto import TokenCipher
from bot.models import POSTED, Post, utcnow
from bot.store import Repository
from bot.store.file import TinyStore

QUEUED = 100
REPEATS = 300
BATCH = 10_000
SIZES = (1_000, 100_000, 1_000_000)


@contextmanager
def empty_store(kind: str) -> Iterator[Repository]:
    cipher = TokenCipher([Fernet.generate_key().decode()])
    if kind == FILE:
        with tempfile.TemporaryDirectory() as folder:
            yield TinyStore(Path(folder) / "tweetbot.json", cipher)
        return
    from bot.store.postgres import PostgresStore

    with bench_database() as url:
        store = PostgresStore(url, cipher)
        try:
            yield store
        finally:
            store.close()


def grow_history(store: Repository, have: int, want: int) -> None:
    """Add finished posts until the history holds `want` (it holds `have`), in batches of BATCH."""
    now = utcnow()
    for start in range(have, want, BATCH):
        store.add_posts([Post(id=0, account_id=str(n % 10 + 1), parts=(f"posted {n} " + "x" * 120,), due_at=now,
                              status=POSTED, tweet_ids=(str(10**18 + n),), posted_at=now)
                         for n in range(start, min(start + BATCH, want))])


def analyze(store: Repository) -> None:
    from bot.store.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        store._rows("ANALYZE posts")


def queue_some(store: Repository) -> list[int]:
    now = utcnow()
    added = store.add_posts([Post(id=0, account_id="1", parts=(f"queued {n}",), due_at=now + timedelta(hours=n))
                             for n in range(QUEUED)])
    return [p.id for p in added]


def median_ms(action: Callable[[int], object], repeats: int = REPEATS) -> float:
    costs = []
    for n in range(repeats):
        start = time.perf_counter()
        action(n)
        costs.append(time.perf_counter() - start)
    return statistics.median(costs) * 1000


def measure(store: Repository) -> tuple[float, float, float, float]:
    """(update, finish, due question, history page) medians in ms; the QUEUED posts end finished."""
    queued = queue_some(store)
    now = utcnow()
    update = median_ms(lambda n: store.update_post(queued[n % QUEUED], attempts=n))
    due = median_ms(lambda n: store.queued_posts(due_by=now))
    page = median_ms(lambda n: store.history(limit=50), repeats=100)
    finish = median_ms(lambda n: store.update_post(queued[n], status=POSTED), repeats=QUEUED)
    return update, finish, due, page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_option(parser)
    parser.add_argument("--sizes", default=",".join(str(n) for n in SIZES),
                        help="posts in the store at each measurement, comma-separated (default %(default)s)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    results: dict[int, tuple[float, float, float, float]] = {}
    print(f"store: {args.store}")
    print(f"{'posts in store':>15} {'update (ms)':>12} {'finish (ms)':>12} {'due query (ms)':>15} "
          f"{'history page (ms)':>18} {'filled in (s)':>14}", flush=True)
    with empty_store(args.store) as store:
        history = 0
        for size in sizes:
            started = time.monotonic()
            grow_history(store, history, size - QUEUED)
            history = max(history, size - QUEUED)
            if args.store == POSTGRES:
                analyze(store)
            filled = time.monotonic() - started
            results[size] = measure(store)
            history += QUEUED  # the measured posts finished
            update, finish, due, page = results[size]
            print(f"{size:>15,} {update:>12.2f} {finish:>12.2f} {due:>15.3f} {page:>18.2f} {filled:>14.1f}",
                  flush=True)
    first, last = sizes[0], sizes[-1]
    ratio = results[last][0] / results[first][0]
    print(f"update at {last:,} / update at {first:,}: {ratio:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
