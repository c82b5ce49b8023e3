"""Where the queue's and accounts' commands get their records and make their changes: the local store
(`LocalSource`, through `bot.queue`, `bot.schedules`, `bot.importer`), or a deployed bot through its API
(`bot.remote.Remote`). Both give the same records and raise the same refusals (`bot.refusals`), so a
command renders either with the same code; `open_source` is the one place that picks.

A leaf of the command line, like `bot.cli.common`: the command modules import it, it imports none of them.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import click

from bot import queue
from bot.cli.common import settings_or_exit, store_or_exit
from bot.importer import import_csv
from bot.media_checks import PartsMedia
from bot.models import Account, Post, utcnow
from bot.remote import Remote
from bot.schedules import SlotSchedule, clear_slots, free_slots, load_slots, save_slots
from bot.settings import Settings, SettingsError, load_remote_settings, remote_url
from bot.store import Reading, Repository

Command = TypeVar("Command", bound=Callable[..., Any])


class Source(Protocol):
    """What the commands read and change, wherever the queue is."""

    zone: ZoneInfo  # the operator's clock (TIMEZONE), for times typed and shown
    timezone: str
    x_tier: str  # X_TIER, for the queue's costs and warnings

    def list_accounts(self) -> list[Account]: ...
    def find_account(self, handle: str) -> Account | None: ...
    def get_account(self, user_id: str) -> Account | None: ...
    def sending_workers(self) -> dict[str, str]: ...
    def workers(self) -> dict[str, datetime]: ...
    def queued_posts(self) -> list[Post]: ...
    def history(self, limit: int) -> list[Post]: ...
    def get_post(self, post_id: int) -> Post | None: ...
    def link(self, post: Post, account: Account | None) -> str | None: ...
    def readings(self, posts: Sequence[Post]) -> dict[int, Reading]: ...
    def queue_post(self, account: Account, parts: Sequence[str], media: PartsMedia, due: datetime | None,
                   now: datetime, options: dict[str, Any] | None = None) -> Post: ...
    def import_csv(self, path: Path, now: datetime, show_progress: bool = False) -> list[Post]: ...
    def cancel(self, post_id: int) -> Post: ...
    def post_now(self, post_id: int) -> Post: ...
    def retry(self, post_id: int) -> Post: ...
    def slots(self, account: Account, count: int) -> tuple[SlotSchedule | None, list[datetime]]: ...
    def save_slots(self, account: Account, schedule: SlotSchedule, count: int) -> list[datetime]: ...
    def clear_slots(self, account: Account) -> None: ...


class LocalSource:
    """The store these settings name, through the one layer every way in calls."""

    def __init__(self, settings: Settings, store: Repository) -> None:
        self.settings, self.store = settings, store
        self.zone, self.timezone, self.x_tier = settings.zone, settings.timezone, settings.x_tier

    def list_accounts(self) -> list[Account]:
        return self.store.list_accounts()

    def find_account(self, handle: str) -> Account | None:
        return self.store.find_account(handle)

    def get_account(self, user_id: str) -> Account | None:
        return self.store.get_account(user_id)

    def sending_workers(self) -> dict[str, str]:
        return {post.account_id: post.claimed_by for post in self.store.sending_posts() if post.claimed_by}

    def workers(self) -> dict[str, datetime]:
        from bot.store.heartbeats import known_workers

        return known_workers(self.store)

    def queued_posts(self) -> list[Post]:
        return self.store.queued_posts()

    def history(self, limit: int) -> list[Post]:
        return self.store.history(limit)

    def get_post(self, post_id: int) -> Post | None:
        return self.store.get_post(post_id)

    def link(self, post: Post, account: Account | None) -> str | None:
        first_id = next((tweet_id for tweet_id in post.tweet_ids if tweet_id), None)
        return self.settings.post_url(first_id, account.username) if account and first_id else None

    def readings(self, posts: Sequence[Post]) -> dict[int, Reading]:
        return self.store.readings(post.id for post in posts)

    def queue_post(self, account: Account, parts: Sequence[str], media: PartsMedia, due: datetime | None,
                   now: datetime, options: dict[str, Any] | None = None) -> Post:
        """At `due`; without one, at the next free slot, or now when the account has no slots."""
        return queue.queue_post(self.store, account.user_id, parts, due, now, media=media, zone=self.zone,
                                options=options, tier=self.x_tier)

    def import_csv(self, path: Path, now: datetime, show_progress: bool = False) -> list[Post]:
        return import_csv(self.store, path, self.zone, now, show_progress=show_progress, tier=self.x_tier)

    def cancel(self, post_id: int) -> Post:
        return queue.cancel(self.store, post_id)

    def post_now(self, post_id: int) -> Post:
        return queue.post_now(self.store, post_id)

    def retry(self, post_id: int) -> Post:
        return queue.retry(self.store, post_id)

    def slots(self, account: Account, count: int) -> tuple[SlotSchedule | None, list[datetime]]:
        schedule = load_slots(self.store, account.user_id)
        return schedule, self._next_free(account, count) if schedule else []

    def save_slots(self, account: Account, schedule: SlotSchedule, count: int) -> list[datetime]:
        save_slots(self.store, account.user_id, schedule)
        return self._next_free(account, count)

    def clear_slots(self, account: Account) -> None:
        clear_slots(self.store, account.user_id)

    def _next_free(self, account: Account, count: int) -> list[datetime]:
        return list(islice(free_slots(self.store, account.user_id, utcnow()), count))


def open_source(url: str | None) -> Source:
    """The deployed bot at `url` (a command's --url) or TWEETBOT_URL, through its API; without either, the
    local store (verified). A setting missing or malformed: one line, exit 2."""
    target = remote_url(url)
    if target is None:
        settings = settings_or_exit()
        return LocalSource(settings, store_or_exit(settings))
    try:
        return Remote(load_remote_settings(target))
    except SettingsError as exc:
        click.secho(f"tweetbot: configuration error: {exc}", fg="red", err=True)
        sys.exit(2)


def remote_option(command: Command) -> Command:
    """`--url`: the command talks to the deployed bot there, with TWEETBOT_API_KEY's key."""
    return click.option("--url", metavar="URL", default=None,
                        help="A deployed bot to drive through its API, with the key in TWEETBOT_API_KEY "
                             "(default: TWEETBOT_URL; neither: the local store).")(command)
