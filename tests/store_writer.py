"""A child process for the store tests: runs read-increment-write transactions.

    python tests/store_writer.py KIND LOCATION KEY COUNT    (KIND: file or postgres)

Each transaction increments the meta counter, queues a post and finishes the
previous one (which moves it to the history log), and records an event; it
prints the counter's new value after the commit. Killed at any instant, the
store must hold the last printed value or the next.
"""
from __future__ import annotations

import sys

from bot.models import POSTED, Post, utcnow
from bot.store import Repository

from store_support import StoreAt


def step(store: Repository) -> int:
    with store.transaction():
        value = int(store.get_meta("counter", 0)) + 1
        store.set_meta("counter", value)
        for post in store.queued_posts():
            store.update_post(post.id, status=POSTED, tweet_ids=(str(value),))
        store.add_posts([Post(id=0, account_id="1", parts=(f"post {value}",), due_at=utcnow())])
        store.record_event("counted", detail=str(value))
    return value


def main(kind: str, location: str, key: str, count: int) -> None:
    store = StoreAt(kind, location, key).open()
    print("ready", flush=True)
    for _ in range(count):
        print(step(store), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
