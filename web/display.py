"""What the dashboard shows, worked out from the store's records: plain values for the templates.

Times are shown in the operator's time zone (TIMEZONE); spans as "in 1 h 42 min" (the
CLI's wording, `bot.when.relative`). Tokens never reach this module's output: the views
below copy only what a page may show.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.alerts import attention
from bot.when import relative
from bot.models import ACTIVE, DISCONNECTED, NEEDS_RECONNECT, POSTED, SCHEDULED, Account, Post
from bot.settings import Settings
from bot.when import format_local

STATUS_WORDS = {ACTIVE: "active", NEEDS_RECONNECT: "needs reconnecting", DISCONNECTED: "disconnected"}


@dataclass(frozen=True)
class AccountView:
    user_id: str
    handle: str
    name: str
    status: str
    status_text: str
    attention: str
    expiry: str
    refreshed: str
    failures: int
    last_error: str | None
    hold: str | None
    can_reconnect: bool
    can_disconnect: bool


@dataclass(frozen=True)
class PostView:
    id: int
    handle: str
    parts: tuple[str, ...]
    when: str
    status: str
    note: str | None
    link: str | None
    cancellable: bool


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """"2026-12-01 09:00 CET" in the operator's zone (the CLI's wording)."""
    return format_local(moment, zone)


def ago(moment: datetime | None, now: datetime) -> str:
    """"just now", "12 min ago", "never"."""
    if moment is not None and abs((now - moment).total_seconds()) < 60:
        return "just now"
    return relative(moment)


def expiry_text(account: Account, now: datetime) -> str:
    if account.expires_at is None:
        return "no token"
    return f"expires {relative(account.expires_at)}" if account.expires_at > now else f"expired {relative(account.expires_at)}"


def account_hold(account: Account, now: datetime, zone: ZoneInfo) -> str | None:
    """Why the worker is holding this account's posts, if it is."""
    if account.status == DISCONNECTED:
        return f"{account.handle} is disconnected: its posts are held until it is connected again"
    if account.status == NEEDS_RECONNECT:
        return f"{account.handle} needs reconnecting: its posts are held"
    if account.hold_until is not None and account.hold_until > now:
        reason = f" ({account.hold_reason})" if account.hold_reason else ""
        return f"held until {local_time(account.hold_until, zone)}{reason}"
    return None


def account_view(account: Account, now: datetime, zone: ZoneInfo) -> AccountView:
    return AccountView(
        user_id=account.user_id, handle=account.handle, name=account.name, status=account.status,
        status_text=STATUS_WORDS.get(account.status, account.status), attention=attention(account),
        expiry=expiry_text(account, now), refreshed=ago(account.refreshed_at, now),
        failures=account.refresh_failures, last_error=account.last_error,
        hold=account_hold(account, now, zone),
        can_reconnect=account.status in (NEEDS_RECONNECT, DISCONNECTED),
        can_disconnect=account.status != DISCONNECTED)


def post_link(settings: Settings, account: Account | None, post: Post) -> str | None:
    """Where a posted post can be seen: on X, or on the sandbox's timeline page."""
    tweet_id = next((tid for tid in post.tweet_ids if tid), None)
    if post.status != POSTED or tweet_id is None:
        return None
    if settings.sandbox:
        return None if account is None else f"{settings.api_base.rstrip('/')}/{account.username}#post-{tweet_id}"
    if account is None:
        return f"https://x.com/i/web/status/{tweet_id}"
    return f"https://x.com/{account.username}/status/{tweet_id}"


def queued_view(post: Post, account: Account | None, now: datetime, zone: ZoneInfo) -> PostView:
    """A queued post with why it is waiting, when it is held or being retried."""
    note = ("the account is gone: this post will not go out" if account is None
            else account_hold(account, now, zone))
    if note is None and post.next_attempt_at is not None and post.next_attempt_at > now:
        note = f"retrying {relative(post.next_attempt_at)}" + (f" ({post.last_error})" if post.last_error else "")
    return PostView(id=post.id, handle=_handle(post, account), parts=post.parts, when=local_time(post.due_at, zone),
                    status=post.status, note=note, link=None, cancellable=post.status == SCHEDULED)


def history_view(post: Post, account: Account | None, settings: Settings, zone: ZoneInfo) -> PostView:
    when = post.posted_at if post.status == POSTED and post.posted_at else post.due_at
    note = post.last_error if post.status != POSTED else None
    return PostView(id=post.id, handle=_handle(post, account), parts=post.parts, when=local_time(when, zone),
                    status=post.status, note=note, link=post_link(settings, account, post), cancellable=False)


def _handle(post: Post, account: Account | None) -> str:
    return account.handle if account is not None else f"account {post.account_id}"


def default_due(now: datetime, zone: ZoneInfo) -> str:
    """The compose form's suggested time: an hour from now, to the minute, as `datetime-local` wants it."""
    return (now + timedelta(hours=1)).astimezone(zone).strftime("%Y-%m-%dT%H:%M")
