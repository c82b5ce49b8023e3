"""What the dashboard shows, worked out from the store's records: plain values for the templates.

Times are shown in the operator's time zone (TIMEZONE); spans as "in 1 h 42 min" (the
CLI's wording, `bot.when.relative`). Costs and the next 30 days' total are worked out
and worded as `tweetbot queue` does (`bot.pricing`), so the page and the command line
show the same figures. Tokens never reach this module's output: the views below copy
only what a page may show.

A post's media shows as a count ("2 images") and, per part, a thumbnail of each image
(served by `web.media_bytes` at `/posts/<id>/media/<digest>`, its alt text as `alt`); a GIF
or a video shows as a labelled placeholder, never its bytes inline.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from bot.alerts import attention
from bot.analytics import engagements
from bot.media_checks import RECONNECT_FOR_MEDIA, can_post_media
from bot.models import (
    ACTIVE,
    CANCELED,
    DISCONNECTED,
    FAILED,
    NEEDS_RECONNECT,
    POSTED,
    SCHEDULED,
    SENDING,
    Account,
    MediaRef,
    Post,
)
from bot.post_options import described
from bot.pricing import dollars, post_cost
from bot.queue import InThePast, QueueError, refused_as_duplicate, why_not_editable
from bot.schedules import SlotSchedule
from bot.settings import Settings
from bot.store import Event, Reading
from bot.when import format_local, relative, spoken_span

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
    media_hint: str | None = None  # "reconnect to post media" when media.write was not granted


@dataclass(frozen=True)
class MediaView:
    """One file a post carries: a thumbnail's source and alt text for an image, a label for the rest."""

    kind: str
    digest: str
    name: str
    alt: str
    label: str
    thumbnail: bool
    post_id: int  # the post that carries it: `/posts/<id>/media/<digest>` serves it


@dataclass(frozen=True)
class MetricsView:
    """How a posted post did when last read from X (`bot.analytics`), for a row of the history or the calendar."""

    likes: int
    reposts: int
    replies: int
    impressions: int
    engagements: int
    read: str  # "read 3 h ago"

    @classmethod
    def of(cls, reading: Reading | None, now: datetime) -> MetricsView | None:
        if reading is None:
            return None
        counts = reading.metrics
        return cls(counts.get("like_count", 0), counts.get("retweet_count", 0), counts.get("reply_count", 0),
                   counts.get("impression_count", 0), engagements(counts), f"read {relative(reading.read_at, now)}")


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
    cost: str = ""
    can_post_now: bool = False
    retryable: bool = False
    media: tuple[tuple[MediaView, ...], ...] = ()  # per part, as `parts`
    media_count: str | None = None  # "2 images", "1 video"; None without media
    editable: bool = False
    metrics: MetricsView | None = None  # a posted post's, once read from X
    options: tuple[str, ...] = ()  # its post options in words (`bot.post_options.described`)


@dataclass(frozen=True)
class SlotsView:
    """One account's slot editor: its slots, the next free times, and what its form holds."""

    user_id: str
    handle: str
    spec: str | None
    zone: str | None
    next_free: tuple[str, ...]
    form_spec: str
    form_tz: str
    error: str | None


@dataclass(frozen=True)
class FailureView:
    """One `generator_failed` event."""

    when: str
    handle: str
    detail: str


def local_time(moment: datetime | None, zone: ZoneInfo | str) -> str:
    """"2026-12-01 09:00 CET" in the operator's zone (the CLI's wording)."""
    return format_local(moment, zone)


def span_words(moment: datetime, now: datetime) -> str:
    """How far `moment` is from `now`: "in 12 min", "3 h 5 min ago", "in 3 days", "just now"."""
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 60:
        return "just now" if seconds <= 0 else "in under a minute"
    hours = round(abs(seconds) / 60) // 60
    span = f"{hours // 24} days" if hours >= 48 else spoken_span(abs(seconds))
    return f"in {span}" if seconds > 0 else f"{span} ago"


def clock_text(moment: datetime, now: datetime, zone: ZoneInfo) -> str:
    """`moment` on the operator's clock, the day said as a person says it: "today 14:05 CET",
    "tomorrow 09:00 CET", "yesterday 18:30 CET", else "Tue 2026-12-01 09:00 CET"."""
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    words = {0: "today", 1: "tomorrow", -1: "yesterday"}
    day = words.get((local.date() - today).days) or local.strftime("%a %Y-%m-%d")
    return f"{day} {local:%H:%M} {local.tzname()}"


def when_text(moment: datetime | None, now: datetime, zone: ZoneInfo) -> str:
    """Absolute and relative together: "today 14:05 CET, in 12 min"; "-" for none."""
    if moment is None:
        return "-"
    return f"{clock_text(moment, now, zone)}, {span_words(moment, now)}"


PAST_GRACE = timedelta(seconds=60)  # as bot.queue's: "now" typed a moment ago is still now


def refusal_words(refusal: QueueError, now: datetime, zone: ZoneInfo) -> str:
    """What the queue refused, in the page's words: a past time on the operator's clock (`past_reason`),
    anything else as the queue says it."""
    if isinstance(refusal, InThePast):
        return past_reason(refusal.due_at, now, zone) or str(refusal)
    return str(refusal)


def past_reason(moment: datetime, now: datetime, zone: ZoneInfo) -> str | None:
    """"Wed 2020-01-01 09:00 UTC is in the past" (the operator's clock, never ISO), or None when it is ahead."""
    return f"{clock_text(moment, now, zone)} is in the past" if moment < now - PAST_GRACE else None


def ago(moment: datetime | None, now: datetime) -> str:
    """"just now", "12 min ago", "never"."""
    if moment is not None and abs((now - moment).total_seconds()) < 60:
        return "just now"
    return relative(moment, now)


def expiry_text(account: Account, now: datetime, zone: ZoneInfo) -> str:
    """"expires in 1 h 59 min (today 16:05 CET)"; "no token" once disconnected."""
    if account.expires_at is None or account.status == DISCONNECTED:
        return "no token"
    verb = "expires" if account.expires_at > now else "expired"
    return f"{verb} {relative(account.expires_at, now)} ({clock_text(account.expires_at, now, zone)})"


def refreshed_text(account: Account, now: datetime, zone: ZoneInfo) -> str:
    """"just now (today 14:05 CET)"; a disconnected account has no tokens, so nothing is refreshed."""
    if account.status == DISCONNECTED:
        return "none: disconnected, so nothing is refreshed"
    if account.refreshed_at is None:
        return "never"
    return f"{ago(account.refreshed_at, now)} ({clock_text(account.refreshed_at, now, zone)})"


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
    """An account's row; one granted without media.write (connected before the bot asked for it)
    says "reconnect to post media" and offers Reconnect, which asks for every scope again."""
    media_hint = RECONNECT_FOR_MEDIA if account.status == ACTIVE and not can_post_media(account) else None
    return AccountView(
        user_id=account.user_id, handle=account.handle, name=account.name, status=account.status,
        status_text=STATUS_WORDS.get(account.status, account.status), attention=attention(account),
        expiry=expiry_text(account, now, zone), refreshed=refreshed_text(account, now, zone),
        failures=account.refresh_failures, last_error=account.last_error,
        hold=account_hold(account, now, zone),
        can_reconnect=account.status in (NEEDS_RECONNECT, DISCONNECTED) or media_hint is not None,
        can_disconnect=account.status != DISCONNECTED, media_hint=media_hint)


def post_link(settings: Settings, account: Account | None, post: Post) -> str | None:
    """Where a posted post can be seen: on X, or on the sandbox's timeline page."""
    tweet_id = next((tid for tid in post.tweet_ids if tid), None)
    if post.status != POSTED or tweet_id is None:
        return None
    return settings.post_url(tweet_id, account.username if account else None)


def queued_view(post: Post, account: Account | None, now: datetime, zone: ZoneInfo) -> PostView:
    """A queued post with its pay-per-use price and why it is waiting, when it is held or being retried."""
    note = ("the account is gone: this post will not go out" if account is None
            else account_hold(account, now, zone))
    if note is None and post.next_attempt_at is not None and post.next_attempt_at > now:
        note = f"retrying {when_text(post.next_attempt_at, now, zone)}" + (
            f" ({post.last_error})" if post.last_error else "")
    if post.status == SENDING and post.claimed_by:
        note = f"being sent by worker {post.claimed_by}" + (f"; {note}" if note else "")
    scheduled = post.status == SCHEDULED
    return PostView(id=post.id, handle=_handle(post, account), parts=post.parts, when=when_text(post.due_at, now, zone),
                    status=post.status, note=note, link=None, cancellable=scheduled,
                    editable=why_not_editable(post) is None,
                    cost=dollars(post_cost(post)), can_post_now=scheduled, options=tuple(described(post.options)),
                    **media_fields(post))


def history_view(post: Post, account: Account | None, settings: Settings, zone: ZoneInfo,
                 now: datetime, reading: Reading | None = None, expiry: str | None = None) -> PostView:
    """A finished post; a failed one offers Retry unless X refused it as a duplicate or it was queued again."""
    when = post.posted_at if post.status == POSTED and post.posted_at else post.due_at
    note = post.last_error if post.status != POSTED else (f"sent by worker {post.claimed_by}" if post.claimed_by
                                                          else None)
    again = post.requeued_as
    if again is not None:
        note = f"{note + '; ' if note else ''}queued again as post {again}"
    elif refused_as_duplicate(post):
        note = f"{note}; X refuses the same text again, so it cannot be retried"
    if expiry:
        note = f"{note}; {expiry}" if note else expiry
    retryable = post.status == FAILED and again is None and not refused_as_duplicate(post)
    if post.status == CANCELED:  # it never went out: its due time is history, not "in 2 days"
        shown = f"was due {local_time(when, zone)}"
    else:
        shown = when_text(when, now, zone)
    return PostView(id=post.id, handle=_handle(post, account), parts=post.parts, when=shown,
                    status=post.status, note=note, link=post_link(settings, account, post), cancellable=False,
                    retryable=retryable, metrics=MetricsView.of(reading, now),
                    options=tuple(described(post.options, reading.poll if reading else ())), **media_fields(post))


KIND_WORDS = {"image": ("image", "images"), "gif": ("GIF", "GIFs"), "video": ("video", "videos")}


def media_fields(post: Post) -> dict[str, Any]:
    """A post view's `media` (per part, as many as `parts`) and `media_count`."""
    if not post.media_count:
        return {}
    per_part = tuple(tuple(media_view(ref, post.id) for ref in post.media_of(i)) for i in range(len(post.parts)))
    return {"media": per_part, "media_count": media_count(post)}


def media_view(ref: MediaRef, post_id: int) -> MediaView:
    """An image gets a thumbnail; a GIF or a video a label with its name (its bytes are not shown inline)."""
    label = f"{KIND_WORDS.get(ref.kind, (ref.kind,))[0]}: {ref.name or 'unnamed'}"
    return MediaView(kind=ref.kind, digest=ref.digest, name=ref.name, alt=ref.alt or "", label=label,
                     thumbnail=ref.kind == "image", post_id=post_id)


def media_count(post: Post) -> str:
    """"2 images", "1 video", "1 GIF and 3 images" (a thread's parts together)."""
    counts: dict[str, int] = {}
    for part in post.media:
        for ref in part:
            counts[ref.kind] = counts.get(ref.kind, 0) + 1
    words = [f"{count} {KIND_WORDS.get(kind, (kind, kind))[count != 1]}" for kind, count in sorted(counts.items())]
    return " and ".join(words)


def plural(count: int, word: str, words: str | None = None) -> str:
    """"1 tweet", "3 tweets"; `words` where adding an s is wrong ("1 refresh", "2 refreshes")."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def held_accounts(accounts: Iterable[Account], now: datetime, zone: ZoneInfo) -> list[str]:
    """The accounts X has stopped for now (a rate limit, a usage cap), each with X's reason."""
    return [f"{account.handle}: {account_hold(account, now, zone)}" for account in accounts
            if account.status == ACTIVE and account.hold_until is not None and account.hold_until > now]


def slots_view(account: Account, schedule: SlotSchedule | None, free: Iterable[datetime], zone: ZoneInfo,
               form: tuple[str, str] | None = None, error: str | None = None) -> SlotsView:
    """The slot editor of `account`: `free` are its next free slot times, shown on the operator's clock
    (and on the slots' own clock too when that is another zone); `form` is what was typed, after a refusal."""
    shown = []
    for moment in free:
        text = local_time(moment, zone)
        if schedule is not None and schedule.zone != zone.key:
            text += f" ({local_time(moment, schedule.zone)})"
        shown.append(text)
    spec, tz = form if form is not None else (
        (schedule.spec, schedule.zone) if schedule is not None else ("", ""))
    return SlotsView(user_id=account.user_id, handle=account.handle,
                     spec=schedule.spec if schedule else None, zone=schedule.zone if schedule else None,
                     next_free=tuple(shown), form_spec=spec, form_tz=tz, error=error)


def failure_view(event: Event, handles: Mapping[str, str], zone: ZoneInfo) -> FailureView:
    """A `generator_failed` event: when (operator's clock), which account, what went wrong."""
    account_id = event.account_id
    handle = handles.get(account_id, f"account {account_id}") if account_id else "no account"
    return FailureView(when=local_time(event.at, zone), handle=handle, detail=event.detail or "")


def _handle(post: Post, account: Account | None) -> str:
    return account.handle if account is not None else f"account {post.account_id}"


def default_due(now: datetime, zone: ZoneInfo) -> str:
    """The compose form's suggested time: an hour from now, to the minute, as `datetime-local` wants it."""
    return (now + timedelta(hours=1)).astimezone(zone).strftime("%Y-%m-%dT%H:%M")


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every named time zone this system knows, for the slot editor's suggestions (read once)."""
    return tuple(sorted(available_timezones() - {"localtime", "Factory"}))
