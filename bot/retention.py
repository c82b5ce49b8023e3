"""Forgetting media no post needs any more, so the store does not grow with every image ever posted.

A stored file is kept while
- an unfinished post (scheduled or sending) refers to it: the worker has yet to send it;
- a finished post that finished within the retention period (MEDIA_RETENTION_DAYS) refers
  to it: the dashboard and history still show it, and a retry can still send it;
- it was stored less than `UPLOAD_GRACE` ago: the web or the CLI puts the bytes first and
  saves the post that refers to them after, so a fresh file no post names yet is an
  upload in flight, not garbage.
Everything else is deleted. The function works through the store contract alone, so
both stores share it; it reads only as much history as the retention period covers.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from bot.recent import finished_time, history_since
from bot.series import plug_digests
from bot.store import Repository

UPLOAD_GRACE = timedelta(hours=1)


def forget_finished_media(store: Repository, now: datetime, retention: timedelta) -> int:
    """Delete every stored media file no post needs any more (see the module); how many were deleted."""
    stored = store.media_digests()
    fresh_since = now - UPLOAD_GRACE
    candidates = {digest for digest, at in stored.items() if at < fresh_since}
    doomed = candidates - media_in_use(store, now - retention) if candidates else set()
    # Only files still older than the grace hour: a put of the same bytes meanwhile renews one. Called
    # even with nothing doomed: the file store then also clears what a crash mid-put left.
    return store.delete_media(sorted(doomed), stored_before=fresh_since)


def media_in_use(store: Repository, finished_since: datetime) -> set[str]:
    """Every digest an unfinished post needs, or a post finished at or after `finished_since`, or a plug
    still waiting.

    The queue is read before the history: a post only moves forward (queued, sending, finished),
    so one that moves while we read is seen in one of them.
    """
    needed: set[str] = plug_digests(store)  # a plug waits for its likes as long as they take
    for post in store.queued_posts():  # scheduled and sending
        needed |= post.digests()
    for post in store.sending_posts():  # part of the queue already; asked so no store's reading can miss one
        needed |= post.digests()
    for post in history_since(store, finished_since, when=finished_time):
        needed |= post.digests()
    return needed
