"""Stores written by an earlier version: the facts it kept only as words become fields, once, on upgrade.

Earlier versions kept "X refused it as duplicate content" only in a failed post's `last_error`, and
"queued again as post N" only in the detail of a `requeued` event. This version writes
`Post.failure_kind` and `Post.requeued_as` when they happen and never reads the words back, so a
store from before is converted when this version first opens it (PostgreSQL: migration 0004; the file
store: on its first `verify`). Without that, a failed post already queued again would offer Retry a
second time, and queue the same text twice.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg.types.json import Jsonb

from bot.crypto import TokenCipher
from bot.models import DUPLICATE, FAILED, SCHEDULED, Account, Post, utcnow
from bot.queue import QueueError, retry
from bot.store import REQUEUED_EVENT
from bot.store.file import TinyStore
from bot.store.files import decode, encode
from bot.store.postgres import PostgresStore
from bot.store.postgres.migrate import migrate, migrations

DUPLICATE_WORDS = ("X refused it as duplicate content (You are not allowed to create a Tweet with duplicate "
                   "content.) and it is not among the account's recent posts")


def earlier_posts() -> list[Post]:
    """Three failed posts as an earlier version left them: one refused as duplicate, one queued again as
    post 3 (which is queued), one refused for another reason."""
    due = utcnow() - timedelta(hours=1)
    return [Post(id=1, account_id="1", parts=("said twice",), due_at=due, status=FAILED, last_error=DUPLICATE_WORDS),
            Post(id=2, account_id="1", parts=("queued again",), due_at=due, status=FAILED,
                 last_error="X refused it (403): Forbidden"),
            Post(id=3, account_id="1", parts=("queued again",), due_at=utcnow(), status=SCHEDULED),
            Post(id=4, account_id="1", parts=("refused",), due_at=due, status=FAILED,
                 last_error="X refused it (400): too long")]


def check_converted(store: TinyStore | PostgresStore) -> None:
    said_twice, queued_again, _, refused = (store.get_post(n) for n in (1, 2, 3, 4))
    assert said_twice is not None and queued_again is not None and refused is not None
    assert (said_twice.failure_kind, said_twice.requeued_as) == (DUPLICATE, None)
    assert (queued_again.failure_kind, queued_again.requeued_as) == (None, 3)
    assert (refused.failure_kind, refused.requeued_as) == (None, None)
    assert [p.requeued_as for p in store.history() if p.id == 2] == [3]
    with pytest.raises(QueueError, match="already queued again as post 3"):
        retry(store, 2)
    with pytest.raises(QueueError, match="refused by X as duplicate content"):
        retry(store, 1)


def test_a_file_store_from_before_gets_the_facts_on_its_first_verify(tmp_path: Path) -> None:
    cipher = TokenCipher([Fernet.generate_key().decode()])
    path = tmp_path / "tweetbot.json"
    old = TinyStore(path, cipher)
    old.save_account(Account(user_id="1", username="one", access_token="a", refresh_token="r"))
    old.add_posts(earlier_posts())
    old.record_event(REQUEUED_EVENT, "1", 2, detail="queued again as post 3")
    tables = decode(path.read_bytes())
    del tables["noted"]  # what an earlier version wrote had no such table
    path.write_bytes(encode(tables))
    store = TinyStore(path, cipher)
    store.verify()
    # written once, not worked out on each read
    assert decode(path.read_bytes())["noted"] == {"1": {"failure_kind": DUPLICATE}, "2": {"requeued_as": 3}}
    check_converted(store)


def test_migration_4_turns_the_words_of_a_database_from_before_into_fields(unmigrated_database_url: str) -> None:
    with psycopg.connect(unmigrated_database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        for version, name, sql in migrations():
            if version < 4:
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
        conn.execute("INSERT INTO accounts (user_id, username_lower, doc) VALUES ('1', 'one', %s)",
                     (Jsonb({"user_id": "1", "username": "one"}),))
        for post in earlier_posts():
            doc = post.to_doc()
            for field in ("failure_kind", "requeued_as"):  # an earlier version had no such fields
                del doc[field]
            conn.execute("INSERT INTO posts (id, account_id, status, due_at, ready_at, finished_seq, doc) "
                         "VALUES (%s, %s, %s, %s, %s, CASE WHEN %s THEN nextval('posts_finished_seq') END, %s)",
                         (post.id, post.account_id, post.status, post.due_at, post.due_at, post.finished,
                          Jsonb(doc)))
        conn.execute("INSERT INTO events (at, kind, account_id, post_id, detail) "
                     "VALUES (now(), 'requeued', '1', 2, 'queued again as post 3')")
    assert migrate(unmigrated_database_url)[0] == "0004_failure_facts.sql"  # and the later ones
    store = PostgresStore(unmigrated_database_url, TokenCipher([Fernet.generate_key().decode()]))
    try:
        check_converted(store)
    finally:
        store.close()
