"""Reading only the recent end of the history and the event log.

Both come newest first from the store, so what happened since a moment is read in
pages, each four times the last, until a page reaches back past that moment (or the
log's end): a page that needs the last day of a 100,000-post history reads a few
hundred posts, not all of them. The retention job, the calendar and the charts all
read this way.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from bot.models import Post
from bot.store import Event, Repository

T = TypeVar("T")
FIRST_PAGE = 200


def outcome_time(post: Post) -> datetime:
    """When a finished post went out (or failed, or was canceled): the moment pages show it at."""
    return post.posted_at or post.finished_at or post.due_at


def finished_time(post: Post) -> datetime:
    """When a finished post became finished (a post finished before `finished_at` existed:
    its posting or due time): the moment retention counts from."""
    return post.finished_at or post.posted_at or post.due_at


def newest_since(read: Callable[[int], list[T]], when: Callable[[T], datetime], since: datetime,
                 first_page: int = FIRST_PAGE) -> list[T]:
    """The records `read(limit)` gives newest first that are at or after `since`, read in growing pages."""
    limit = first_page
    while True:
        page = read(limit)
        kept = [record for record in page if when(record) >= since]
        if len(page) < limit or len(kept) < len(page):
            return kept
        limit *= 4


def history_since(store: Repository, since: datetime, account_id: str | None = None,
                  when: Callable[[Post], datetime] = outcome_time) -> list[Post]:
    """Finished posts (of one account, or all) whose `when` is at or after `since`, newest first."""
    return newest_since(lambda limit: store.history(limit, account_id), when, since)


def events_since(store: Repository, since: datetime) -> list[Event]:
    """Every event at or after `since`, newest first."""
    return newest_since(lambda limit: store.events(limit), lambda event: event.at, since, first_page=500)
