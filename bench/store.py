"""How much one post-update transaction costs as the posted history grows.

    .venv/bin/python bench/store.py

Prints the median cost of updating a queued post (and of finishing one, which
moves it to the history) with 1k, 10k and 100k posts already in the store.
Target: at 100k no more than 2x the cost at 1k.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet  # noqa: E402

from bot.crypto import TokenCipher  # noqa: E402
from bot.models import POSTED, Post, utcnow  # noqa: E402
from bot.store import TinyStore  # noqa: E402

QUEUED = 100
REPEATS = 300


def populated(folder: Path, posted: int) -> TinyStore:
    """A store holding `posted` finished posts and QUEUED scheduled ones."""
    store = TinyStore(folder / "tweetbot.json", TokenCipher([Fernet.generate_key().decode()]))
    now = utcnow()
    history = [Post(id=0, account_id=str(n % 10 + 1), parts=(f"posted {n} " + "x" * 120,), due_at=now,
                    status=POSTED, tweet_ids=(str(10**18 + n),), posted_at=now) for n in range(posted)]
    for start in range(0, posted, 10_000):
        store.add_posts(history[start:start + 10_000])
    store.add_posts([Post(id=0, account_id="1", parts=(f"queued {n}",), due_at=now + timedelta(hours=n))
                     for n in range(QUEUED)])
    return store


def median_ms(action, repeats: int = REPEATS) -> float:
    costs = []
    for n in range(repeats):
        start = time.perf_counter()
        action(n)
        costs.append(time.perf_counter() - start)
    return statistics.median(costs) * 1000


def measure(posted: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        store = populated(Path(folder), posted)
        queued = [p.id for p in store.queued_posts()]
        update = median_ms(lambda n: store.update_post(queued[n % QUEUED], attempts=n))
        finish = median_ms(lambda n: store.update_post(queued[n], status=POSTED), repeats=QUEUED)
        return update, finish


def main() -> None:
    results = {}
    print(f"{'posts in store':>15} {'update (ms)':>12} {'finish (ms)':>12}")
    for posted in (1_000, 10_000, 100_000):
        results[posted] = measure(posted)
        print(f"{posted:>15,} {results[posted][0]:>12.2f} {results[posted][1]:>12.2f}")
    ratio = results[100_000][0] / results[1_000][0]
    print(f"update at 100k / update at 1k: {ratio:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
