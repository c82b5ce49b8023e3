"""Filling the queue: every way in (CLI, CSV, web form, slots, generators) comes through here,
so a bad post is refused when it is queued, with the reason, and not at 3 a.m. by X."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.models import CANCELED, DISCONNECTED, SCHEDULED, SENDING, Post, utcnow
from bot.store import Repository
from bot.text import length_error

PAST_GRACE = timedelta(seconds=60)  # "now" typed a moment ago is still now


class QueueError(ValueError):
    """A post cannot be queued; the message says why, for a person."""


def check_parts(parts: Sequence[str]) -> tuple[str, ...]:
    """The parts of a post or thread, each within X's length rules, or `QueueError`."""
    cleaned = tuple(part.strip() for part in parts)
    if not cleaned:
        raise QueueError("the post is empty")
    for number, part in enumerate(cleaned, start=1):
        reason = length_error(part)
        if reason:
            where = f"part {number} of the thread" if len(cleaned) > 1 else "the post"
            raise QueueError(f"{where} is too long or invalid: {reason}")
    return cleaned


def draft(store: Repository, account: str, parts: Sequence[str], due_at: datetime,
          now: datetime | None = None, source: str = "cli") -> Post:
    """A checked, unsaved post: the account exists and can post, the text fits, the time is ahead."""
    found = store.find_account(account)
    if found is None:
        raise QueueError(f"no account {account}")
    if found.status == DISCONNECTED:
        raise QueueError(f"{found.handle} is disconnected: reconnect it first")
    if due_at.tzinfo is None:
        raise QueueError("the time has no time zone")
    if due_at < (now or utcnow()) - PAST_GRACE:
        raise QueueError(f"{due_at.isoformat()} is in the past")
    return Post(id=0, account_id=found.user_id, parts=check_parts(parts), due_at=due_at, source=source)


def queue_post(store: Repository, account: str, parts: Sequence[str], due_at: datetime,
               now: datetime | None = None, source: str = "cli") -> Post:
    """Check and queue one post (or thread); returns it with its id."""
    return store.add_posts([draft(store, account, parts, due_at, now, source)])[0]


def cancel(store: Repository, post_id: int) -> Post:
    """Cancel a post that has not started going out."""
    with store.transaction():
        post = store.get_post(post_id)
        if post is None:
            raise QueueError(f"no post {post_id}")
        if post.status == SENDING:
            raise QueueError(f"post {post_id} is being sent right now")
        if post.status != SCHEDULED:
            raise QueueError(f"post {post_id} is already {post.status}")
        return store.update_post(post_id, status=CANCELED)
