"""X's posting limits per tier, so the worker spaces posts before X answers 429.

The numbers are those of `x-api-facts.md` §4 for `POST /2/tweets` (X_TIER picks
the row). Every tweet counts, so a thread of five parts spends five. Windows
are treated as sliding (any span of that length holds at most `limit` posts):
X counts in fixed windows, and a sliding window never allows a post that a fixed
window of the same length would refuse, so this is the safe reading.
"""
from __future__ import annotations

import logging
import sys
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from bot.models import POSTED, Post
from bot.store import Repository
from bot.when import format_local

log = logging.getLogger("tweetbot.limits")

USER = "user"  # counted per account (per X user)
APP = "app"    # counted across every account of the app


@dataclass(frozen=True)
class Window:
    """At most `limit` posts in any `span`, per user or per app."""

    limit: int
    span: timedelta
    scope: str

    def describe(self) -> str:
        return f"{self.limit:,} per {_span_text(self.span)} per {self.scope}"


TIER_LIMITS: dict[str, tuple[Window, ...]] = {
    "payg": (Window(100, timedelta(minutes=15), USER), Window(10_000, timedelta(hours=24), APP)),
    "free": (Window(17, timedelta(hours=24), USER), Window(17, timedelta(hours=24), APP)),
    "basic": (Window(100, timedelta(hours=24), USER), Window(1_667, timedelta(hours=24), APP)),
    "pro": (Window(100, timedelta(minutes=15), USER),),
    "enterprise": (Window(100, timedelta(minutes=15), USER),),  # contracted per app; Pro's user window
}
LONGEST_SPAN = max(w.span for windows in TIER_LIMITS.values() for w in windows)


def windows(tier: str, scope: str | None = None) -> tuple[Window, ...]:
    """The tier's windows (optionally only one scope's); an unknown tier is a programming error."""
    try:
        found = TIER_LIMITS[tier]
    except KeyError:
        raise ValueError(f"unknown X tier {tier!r} (expected one of {', '.join(TIER_LIMITS)})") from None
    return tuple(w for w in found if scope is None or w.scope == scope)


def next_allowed_at(recent_post_times: list[datetime], tier: str, now: datetime,
                    parts: int = 1, scope: str = USER) -> datetime | None:
    """When `parts` more posts may go out without breaking a window; None = now.

    `recent_post_times` are the times of the tweets already sent (one entry per
    tweet, so a thread's parts each count), of one account for `scope=USER`, of
    every account for `scope=APP`. Only times within the longest window matter.
    A batch larger than a window's limit can never fit at once: it is allowed
    when the window is empty, and X's own 429 handling covers the rest.
    """
    latest = now
    for window in windows(tier, scope):
        inside = sorted(t for t in recent_post_times if now - window.span < t <= now)
        excess = len(inside) + min(parts, window.limit) - window.limit
        if excess > 0:
            # The window frees up when its `excess` oldest posts leave it.
            latest = max(latest, inside[excess - 1] + window.span)
    return None if latest <= now else latest


def recent_post_times(store: Repository, account_id: str | None, now: datetime,
                      span: timedelta = LONGEST_SPAN, scan: int = 2_000) -> list[datetime]:
    """The times this account's (None: every account's) tweets went out within `span` before `now`.

    Read from the history: each posted part counts once at the post's
    `posted_at` (the dispatcher records one time per post). `scan` bounds how
    many finished posts are read, newest first.
    """
    return recent_times_by_account(store, account_id, now, span, scan)[0]


def recent_times_by_account(store: Repository, account_id: str | None, now: datetime,
                            span: timedelta = LONGEST_SPAN, scan: int = 2_000,
                            ) -> tuple[list[datetime], dict[str, list[datetime]], bool]:
    """`recent_post_times`, the same times by account, and whether the read covered all of `span`
    (fewer than `scan` finished posts, or one older than the span reached): then an account
    missing from the dict sent nothing within it."""
    since = now - span
    times: list[datetime] = []
    by_account: dict[str, list[datetime]] = {}
    finished = store.history(limit=scan, account_id=account_id)
    for post in finished:
        if post.posted_at is None or post.posted_at <= since:
            continue
        sent = sum(1 for tweet_id in post.tweet_ids if tweet_id) or (1 if post.status == POSTED else 0)
        times.extend([post.posted_at] * sent)
        by_account.setdefault(post.account_id, []).extend([post.posted_at] * sent)
    oldest = finished[-1].finished_at or finished[-1].posted_at if finished else None
    covered = len(finished) < scan or (oldest is not None and oldest <= since)
    return times, by_account, covered


def queue_warnings(posts: Iterable[Post], tier: str, names: Mapping[str, str] | None = None,
                   zone: tzinfo | str = timezone.utc) -> list[str]:
    """Where the queue asks for more than the tier allows in a window, one line each.

    Each unfinished post counts its parts at its due time. `names` maps account
    ids to handles for the message; `zone` is the operator's, for the times shown.
    """
    names = names or {}
    due: dict[str, list[datetime]] = defaultdict(list)
    for post in posts:
        if post.finished:
            continue
        remaining = len(post.parts) - sum(1 for tweet_id in post.tweet_ids if tweet_id)
        due[post.account_id].extend([post.due_at] * remaining)
    warnings: list[str] = []
    for window in windows(tier, USER):
        for account_id in sorted(due, key=lambda a: names.get(a, a).lower()):
            crowded = _first_crowded_window(due[account_id], window)
            if crowded:
                who = names.get(account_id, account_id)
                warnings.append(_warning(who, crowded, window, tier, zone))
    for window in windows(tier, APP):
        crowded = _first_crowded_window([t for times in due.values() for t in times], window)
        if crowded:
            warnings.append(_warning("all accounts together", crowded, window, tier, zone))
    return warnings


def _first_crowded_window(times: list[datetime], window: Window) -> tuple[datetime, int] | None:
    """The start and the count of the first `window.span` that holds more than `window.limit` posts."""
    ordered = sorted(times)
    start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window.span:
            start += 1
        if end - start + 1 > window.limit:
            opens = ordered[start]
            count = sum(1 for t in ordered[start:] if t - opens < window.span)
            return opens, count
    return None


def _warning(who: str, crowded: tuple[datetime, int], window: Window, tier: str, zone: tzinfo | str) -> str:
    opens, count = crowded
    return (f"{who}: {count:,} posts due in the {_span_text(window.span)} from {format_local(opens, zone)}; "
            f"X_TIER={tier} allows {window.describe()}, so some will go out late")


def _span_text(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


class SentLog:
    """When each account's posts went out, to space posts within X_TIER's windows before X says 429.

    Seeded from the history once per account, then kept in memory, oldest first, as
    parts go out; one read of the app's recent history seeds every account when it covers
    the longest window. The windows are only worked out when a list is long enough to fill
    one: this runs before every post.
    """

    def __init__(self, store: Repository, tier: str, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.tier = tier
        self.clock = clock
        self._times: dict[str | None, deque[datetime]] = {}
        self._lock = threading.Lock()
        self._waiting_until: dict[str, datetime] = {}
        self._seeded_all: dict[str, list[datetime]] | None = None  # every account's, when the app's read covered all
        self._smallest_limit = {scope: min((w.limit for w in windows(tier, scope)), default=sys.maxsize)
                                for scope in (USER, APP)}

    def _seed(self, account_id: str, now: datetime) -> None:
        """Read the account's (and every account's) recent posts from the history once, outside the
        lock: the posting threads of other accounts do not wait for one account's first read."""
        self._seed_app(now)
        if account_id not in self._times:
            if self._seeded_all is not None:
                known = self._seeded_all.get(account_id, [])
            else:
                known = recent_post_times(self.store, account_id, now)
            with self._lock:
                self._times.setdefault(account_id, deque(sorted(known)))

    def _of(self, account_id: str | None, now: datetime) -> deque[datetime]:
        """The account's recent post times (seeded already), those out of every window dropped."""
        times = self._times[account_id]
        while times and now - times[0] >= LONGEST_SPAN:
            times.popleft()
        return times

    def add(self, account_id: str, when: datetime) -> None:
        self._seed(account_id, when)
        with self._lock:
            for key in (account_id, None):
                self._of(key, when).append(when)

    def waiting(self, now: datetime) -> set[str]:
        """The accounts whose window was found full, until the time it has room again."""
        with self._lock:
            return {account for account, until in self._waiting_until.items() if until > now}

    def app_room(self, now: datetime) -> bool:
        """Whether the app's windows have room for one more post now (before any account is claimed)."""
        self._seed_app(now)
        with self._lock:
            everyone = self._of(None, now)
            return len(everyone) < self._smallest_limit[APP] or \
                next_allowed_at(list(everyone), self.tier, now, scope=APP) is None

    def _seed_app(self, now: datetime) -> None:
        if None not in self._times:
            times, by_account, covered = recent_times_by_account(self.store, None, now)
            with self._lock:
                if None not in self._times:
                    self._times[None] = deque(sorted(times))
                    self._seeded_all = by_account if covered else None

    def room_for(self, account_id: str, now: datetime) -> bool:
        """Whether one more post fits the per-user and per-app windows now."""
        self._seed(account_id, now)
        with self._lock:
            if self._waiting_until.get(account_id, now) > now:
                return False
            mine, everyone = self._of(account_id, now), self._of(None, now)
            if len(mine) < self._smallest_limit[USER] and len(everyone) < self._smallest_limit[APP]:
                return True
            allowed = max((at for at in (next_allowed_at(list(mine), self.tier, now, scope=USER),
                                         next_allowed_at(list(everyone), self.tier, now, scope=APP))
                           if at is not None), default=None)
            if allowed is None:
                return True
            self._waiting_until[account_id] = allowed
        log.info("account %s: %s tier's window is full; next post at %s", account_id, self.tier,
                 allowed.isoformat())
        return False
