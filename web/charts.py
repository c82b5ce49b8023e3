"""The dashboard's charts, drawn here as SVG (no chart service, no script): what a person would rather
look at than read.

1. Posts per day over the last 30 days, in the operator's zone (TIMEZONE): posted and failed posts
   (from the history, at the time they went out or failed) and holds (the worker's `held` events: a
   post put back because X or the account held it), stacked, for all accounts or one (`?chart=<id>`).
2. Each account's token chain over the last 7 days: refreshes (`refreshed`), passing failures that
   backed off (`refresh_failed`) and refusals (`needs_reconnect`) per day, from the store's events
   (`bot.tokens` records them), and the time left before the access token expires, the failures in a
   row and when the backed-off refresh is tried again (the account's fields).
3. The next 7 days: the posts (each thread part counts, as X counts) due per day against the tier's
   daily allowance (`bot.limits`: a window's limit times the windows in 24 h; per app for all accounts,
   per user for one), drawn as a line. A day over it goes out late; `queue_warnings` says which window.
4. How posts did, as the reading plan last read them (`bot.analytics`): impressions and engagements per
   day of posting, the best posts, the posting hours ranked by engagements a post, each account's totals;
   from the same 30 days of history as (1), and their readings (one read of the store).

Every chart carries its numbers in data attributes (`data-day`, `data-posted`…) and a `<title>` and
`<desc>` it is labelled by. The data is built by pure functions (records → series); `layout` turns a
series into geometry and `_charts.html` draws it (Jinja escapes every text and attribute).

Cost per request: the history and the events read newest first in growing pages, stopping at 30 days
back (as the calendar does); the queue the page has read already (else only up to 7 days ahead).
"""
from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from bot.analytics import engagements
from bot.limits import APP, USER, windows
from bot.models import DISCONNECTED, FAILED, POSTED, Account, Post
from bot.pricing import unsent_parts
from bot.recent import events_since, history_since, outcome_time
from bot.settings import Settings
from bot.store import Event, Reading, Repository
from bot.when import spoken_span
from web.display import plural, post_link, span_words

PAST_DAYS = 30
TOKEN_DAYS = 7
AHEAD_DAYS = 7
TOKEN_LIFETIME = timedelta(hours=2)  # an X access token's life: the gauge's full width
HELD = "held"
TOKEN_KINDS = {"refreshed": "refreshes", "refresh_failed": "failures", "needs_reconnect": "refused"}
DAY = timedelta(hours=24)


# -- series (pure) ---------------------------------------------------------------------------

def day_start(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), zone)


def last_days(now: datetime, zone: tzinfo, count: int) -> list[date]:
    """The `count` local days ending today, oldest first."""
    today = now.astimezone(zone).date()
    return [today - timedelta(days=count - 1 - n) for n in range(count)]


def next_days(now: datetime, zone: tzinfo, count: int) -> list[date]:
    """Today and the `count - 1` local days after it."""
    today = now.astimezone(zone).date()
    return [today + timedelta(days=n) for n in range(count)]


@dataclass(frozen=True)
class Outcomes:
    day: date
    posted: int = 0
    failed: int = 0
    held: int = 0


def posts_per_day(history: Iterable[Post], events: Iterable[Event], days: Sequence[date], zone: tzinfo,
                  account_id: str | None = None) -> list[Outcomes]:
    """Per local day: posts that went out, posts that failed, holds (`held` events); one account's or all."""
    counts: Counter[tuple[date, str]] = Counter()
    for post in history:
        if post.status in (POSTED, FAILED) and account_id in (None, post.account_id):
            counts[outcome_time(post).astimezone(zone).date(), post.status] += 1
    for event in events:
        if event.kind == HELD and account_id in (None, event.account_id):
            counts[event.at.astimezone(zone).date(), HELD] += 1
    return [Outcomes(day, counts[day, POSTED], counts[day, FAILED], counts[day, HELD]) for day in days]


@dataclass(frozen=True)
class TokenDay:
    day: date
    refreshes: int = 0
    failures: int = 0  # passing: network, 5xx, rate limit; the refresh backs off and is tried again
    refused: int = 0   # X refused the refresh token: the owner must reconnect


@dataclass(frozen=True)
class TokenChain:
    account_id: str
    handle: str
    status: str
    days: tuple[TokenDay, ...]
    expires_in: int | None  # seconds (whole minutes) until the access token expires (<= 0: expired); None: no token
    lifetime: int  # seconds the access token was given (expiry - last refresh; X's 2 h when unknown)
    failures_in_row: int
    retry_in: int | None  # seconds (whole minutes) until the backed-off refresh is tried again; None: not backing off
    summary: str


def token_chain(account: Account, events: Iterable[Event], days: Sequence[date], zone: tzinfo,
                now: datetime) -> TokenChain:
    """One account's refresh events per local day and where its chain stands now."""
    counts: Counter[tuple[date, str]] = Counter()
    for event in events:
        if event.account_id == account.user_id and event.kind in TOKEN_KINDS:
            counts[event.at.astimezone(zone).date(), TOKEN_KINDS[event.kind]] += 1
    series = tuple(TokenDay(d, counts[d, "refreshes"], counts[d, "failures"], counts[d, "refused"]) for d in days)
    has_token = account.expires_at is not None and account.status != DISCONNECTED
    expires_in = _minutes_up(account.expires_at - now) if has_token and account.expires_at else None
    retry_in = (_minutes_up(account.next_refresh_at - now)
                if account.next_refresh_at is not None and account.next_refresh_at > now else None)
    lifetime = (account.expires_at - account.refreshed_at if account.expires_at and account.refreshed_at
                and account.expires_at > account.refreshed_at else TOKEN_LIFETIME)
    return TokenChain(account.user_id, account.handle, account.status, series, expires_in,
                      round(lifetime.total_seconds()), account.refresh_failures, retry_in,
                      _chain_summary(account, expires_in, retry_in, now))


def _minutes_up(span: timedelta) -> int:
    """`span` in seconds, rounded up to a whole minute: the live page's charts then change once a
    minute, not on every poll (an expired token stays at 0 or below, a pending retry above 0)."""
    return -(-int(span.total_seconds()) // 60) * 60


def _chain_summary(account: Account, expires_in: int | None, retry_in: int | None, now: datetime) -> str:
    if account.status == DISCONNECTED:
        return "disconnected: no token"
    if account.status == "needs_reconnect":
        return "X refused the refresh token: reconnect it"
    parts = []
    if expires_in is None:
        parts.append("no token")
    elif account.expires_at is not None:
        parts.append(("expires " if expires_in > 0 else "expired ") + span_words(account.expires_at, now))
    if account.refresh_failures:
        plural = "s" if account.refresh_failures != 1 else ""
        parts.append(f"{account.refresh_failures} failed refresh{'es' if plural else ''} in a row")
    if retry_in is not None and account.next_refresh_at is not None:
        parts.append("next try " + span_words(account.next_refresh_at, now))
    return "; ".join(parts)


@dataclass(frozen=True)
class AheadDay:
    day: date
    due: int  # tweets due that day (a thread's unsent parts each count)


def due_per_day(queued: Iterable[Post], days: Sequence[date], zone: tzinfo, now: datetime,
                account_id: str | None = None) -> list[AheadDay]:
    """Tweets due per local day from today on; an overdue post counts today (it goes out next).
    Each post is placed by bisecting the days' starts (a zone conversion per post is what a
    queue of ten thousand cannot afford on every page view)."""
    bounds = [datetime.combine(day, time.min, zone).astimezone(timezone.utc)  # UTC: compared to UTC times fast
              for day in [*days, days[-1] + timedelta(days=1)]] if days else []
    counts = [0] * len(days)
    for post in queued:
        if post.finished or account_id not in (None, post.account_id):
            continue
        index = bisect_right(bounds, max(post.due_at, post.next_attempt_at or post.due_at, now)) - 1
        if 0 <= index < len(days):  # days are consecutive: bounds[i] is day i's start and day i-1's end
            counts[index] += unsent_parts(post)
    return [AheadDay(day, count) for day, count in zip(days, counts, strict=True)]


def daily_limit(tier: str, scope: str) -> int | None:
    """The most tweets a day the tier's `scope` windows allow (a 15-min window's limit × 96); None: no window."""
    allowed = [w.limit * max(1, int(DAY / w.span)) for w in windows(tier, scope) if w.span <= DAY]
    return min(allowed) if allowed else None


# -- geometry (pure) -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    kind: str   # the CSS class: posted, failed, held, refreshes…
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    x: float
    width: float
    title: str  # its tooltip and accessible name: "Tue 1 Dec: 3 posted, 1 failed"
    data: dict[str, str]
    segments: tuple[Segment, ...]
    tick: str | None  # the day's label under the axis (every few days)
    over: bool = False


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    desc: str
    data: dict[str, str]
    columns: tuple[Column, ...]
    legend: tuple[tuple[str, str], ...]
    top: int  # the value at the top of the plot
    limit_y: float | None = None
    limit_label: str = ""
    gauge: dict[str, Any] | None = None
    width: int = 600
    height: int = 170
    plot: dict[str, float] = field(default_factory=dict)
    compact: bool = False  # one of many (the token chains): no legend of its own, tooltips only on days with bars
    middle: tuple[int, float] | None = None  # a labelled line halfway up the scale: its value and its y


LEFT, RIGHT, TOP, BOTTOM = 34.0, 8.0, 10.0, 22.0


def layout(chart_id: str, title: str, desc: str, rows: Sequence[tuple[date, dict[str, int]]],
           legend: Sequence[tuple[str, str]], data: dict[str, str], width: int = 600, height: int = 170,
           limit: int | None = None, limit_label: str = "", tick_every: int = 1, top_pad: float = 0.0,
           gauge: dict[str, Any] | None = None, compact: bool = False) -> Chart:
    """Stacked bars, one column per day; `rows` hold each day's value of every kind in `legend` (and no other)."""
    kinds = [kind for kind, _ in legend]
    totals = [sum(values.values()) for _, values in rows]
    tallest = max(totals, default=0)
    shown_limit = limit if limit is not None and limit <= max(3 * tallest, 10) else None
    top = max(tallest, shown_limit or 0, 1)
    plot_top, plot_bottom = TOP + top_pad, height - BOTTOM
    scale = (plot_bottom - plot_top) / top
    step = (width - LEFT - RIGHT) / max(len(rows), 1)
    columns = []
    for index, (day, values) in enumerate(rows):
        y, segments = plot_bottom, []
        total = totals[index]
        for kind in kinds if total else ():
            h = values[kind] * scale
            if h:
                y -= h
                segments.append(Segment(kind, round(y, 2), round(h, 2)))
        words = ", ".join(f"{values[k]} {label}" for k, label in legend)
        columns.append(Column(
            x=round(LEFT + index * step + step * 0.12, 2), width=round(step * 0.76, 2),
            title=f"{day:%a} {day.day} {day:%b}: {words}",
            data={"data-day": day.isoformat(), **{f"data-{k}": str(values[k]) for k in kinds},
                  **({"data-over": "true"} if limit is not None and total > limit else {})},
            segments=tuple(segments), tick=f"{day.day} {day:%b}" if index % tick_every == 0 else None,
            over=limit is not None and total > limit))
    limit_y = round(plot_bottom - shown_limit * scale, 2) if shown_limit is not None else None
    middle = (top // 2, round(plot_bottom - top // 2 * scale, 2)) if top >= 4 else None
    return Chart(chart_id, title, desc, data, tuple(columns), tuple(legend), top, limit_y, limit_label, gauge,
                 width, height, {"left": LEFT, "right": width - RIGHT, "top": plot_top, "bottom": plot_bottom},
                 compact, middle)


# -- the page's charts -------------------------------------------------------------------------

def charts_panel(repo: Repository, settings: Settings, accounts: list[Account], now: datetime,
                 pick: str | None = None, queued: list[Post] | None = None) -> dict[str, Any]:
    """The dashboard's charts section: `pick` (`?chart=<username or id>`) narrows posts and the week ahead
    to one account (the filter's form says the username, so the address reads as a person would say it).
    `queued`: the queue as the page already read it (else the week ahead is read from the store)."""
    zone = settings.zone
    wanted = (pick or "").lstrip("@").lower()
    chosen = next((a for a in accounts if wanted and wanted in (a.user_id, a.username.lower())), None)
    past = last_days(now, zone, PAST_DAYS)
    since = day_start(past[0], zone)
    events = events_since(repo, since)
    recent = history_since(repo, since)
    outcomes = posts_per_day(recent, events, past, zone, chosen.user_id if chosen else None)
    who = chosen.handle if chosen else "all accounts"
    return {
        "chart_accounts": accounts, "chart_chosen": chosen,
        "posts_chart": _posts_chart(outcomes, who, chosen),
        "token_charts": [_token_chart(token_chain(a, events, past[-TOKEN_DAYS:], zone, now), settings.refresh_margin)
                         for a in accounts],
        "ahead_chart": _ahead_chart(repo, settings, now, chosen, who, queued),
        **performance_panel(repo, settings, accounts, recent, past, chosen),
    }


def _posts_chart(outcomes: list[Outcomes], who: str, chosen: Account | None) -> Chart:
    totals = {k: sum(getattr(o, k) for o in outcomes) for k in ("posted", "failed", "held")}
    return layout(
        "chart-posts", f"Posts per day, last {PAST_DAYS} days, {who}",
        f"{totals['posted']} posted, {totals['failed']} failed, {totals['held']} held "
        f"from {outcomes[0].day:%d %b} to {outcomes[-1].day:%d %b}.",
        [(o.day, {"posted": o.posted, "failed": o.failed, "held": o.held}) for o in outcomes],
        (("posted", "posted"), ("failed", "failed"), ("held", "held")),
        {"data-chart": "posts", "data-account": chosen.user_id if chosen else "all"}, tick_every=5)


def _token_chart(chain: TokenChain, refresh_margin: int) -> Chart:
    gauge = None
    if chain.expires_in is not None:
        left = max(0.0, min(1.0, chain.expires_in / chain.lifetime))
        # Green until the worker's refresh margin (it refreshes only then), blue while a refresh is due, red
        # once expired: none of them the yellow of "failed, backed off".
        kind = "ok" if chain.expires_in > refresh_margin else "due" if chain.expires_in > 0 else "gone"
        gauge = {"x": LEFT, "y": 4.0, "full": 300 - LEFT - RIGHT, "width": round((300 - LEFT - RIGHT) * left, 2),
                 "kind": kind, "of": spoken_span(chain.lifetime)}
    data = {"data-chart": "tokens", "data-account": chain.account_id, "data-status": chain.status,
            "data-refresh-failures": str(chain.failures_in_row),
            "data-expires-in": "" if chain.expires_in is None else str(chain.expires_in),
            "data-retry-in": "" if chain.retry_in is None else str(chain.retry_in)}
    return layout(
        f"chart-tokens-{chain.account_id}", f"{chain.handle}: token chain, last {TOKEN_DAYS} days",
        f"{plural(sum(d.refreshes for d in chain.days), 'refresh', 'refreshes')}, "
        f"{sum(d.failures for d in chain.days)} failed and backed off, "
        f"{sum(d.refused for d in chain.days)} refused; {chain.summary}.",
        [(d.day, {"refreshes": d.refreshes, "failures": d.failures, "refused": d.refused}) for d in chain.days],
        (("refreshes", "refreshes"), ("failures", "failed, backed off"), ("refused", "refused")),
        data, width=300, height=130, top_pad=18.0, gauge=gauge, tick_every=TOKEN_DAYS - 1, compact=True)


def _ahead_chart(repo: Repository, settings: Settings, now: datetime, chosen: Account | None, who: str,
                 queued: list[Post] | None) -> Chart:
    zone, tier = settings.zone, settings.x_tier
    days = next_days(now, zone, AHEAD_DAYS)
    if queued is None:
        end = day_start(days[-1] + timedelta(days=1), zone)
        queued = [*repo.sending_posts(chosen.user_id if chosen else None),
                  *repo.queued_posts(chosen.user_id if chosen else None, due_by=end)]
    ahead = due_per_day(queued, days, zone, now, chosen.user_id if chosen else None)
    scope = USER if chosen else APP
    limit = daily_limit(tier, scope)
    limit_label = (f"X_TIER={tier}: {limit:,} a day per {'account' if chosen else 'app'}" if limit is not None
                   else f"X_TIER={tier} has no daily window per {'account' if chosen else 'app'}")
    over = sum(1 for a in ahead if limit is not None and a.due > limit)
    return layout(
        "chart-ahead", f"Tweets due per day (each thread part is one), next {AHEAD_DAYS} days, {who}",
        f"{plural(sum(a.due for a in ahead), 'tweet')} due (each part of a thread counts, as X counts); {limit_label}"
        + (f"; {plural(over, 'day')} over it, so some go out late." if over else "."),
        [(a.day, {"due": a.due}) for a in ahead], (("due", "tweets due"),),
        {"data-chart": "ahead", "data-account": chosen.user_id if chosen else "all", "data-tier": tier,
         "data-scope": scope, "data-limit": "" if limit is None else str(limit)},
        limit=limit, limit_label=limit_label)


# -- how posts did, as last read from X (bot.analytics) ----------------------------------------------

BEST_SHOWN = 5  # posts in "best posts", hours in "best hours"


@dataclass(frozen=True)
class Performer:
    """One post among the best: its figures as last read."""

    post_id: int
    handle: str
    text: str
    link: str | None
    likes: int
    reposts: int
    replies: int
    impressions: int
    engagements: int


@dataclass(frozen=True)
class Hour:
    """One hour of the day posts went out at: how many were read, and their engagements on average."""

    label: str  # "09:00"
    posts: int
    average: float


@dataclass(frozen=True)
class Totals:
    """One account's sums over its posts read in the last PAST_DAYS days."""

    handle: str
    posts: int
    likes: int
    reposts: int
    replies: int
    impressions: int
    engagements: int


def performance_panel(repo: Repository, settings: Settings, accounts: list[Account], recent: Sequence[Post],
                      days: Sequence[date], chosen: Account | None) -> dict[str, Any]:
    """The charts section's "how posts did" from the finished posts `recent` the section read (of `chosen`,
    or all): two charts per day, the best posts, the best hours, totals."""
    zone = settings.zone
    posted = [p for p in recent if p.status == POSTED and p.posted_at is not None
              and (chosen is None or p.account_id == chosen.user_id) and p.posted_at >= day_start(days[0], zone)]
    readings = repo.readings(p.id for p in posted)
    read = [(p, readings[p.id]) for p in posted if p.id in readings]
    by_id = {a.user_id: a for a in accounts}
    who = chosen.handle if chosen else "all accounts"
    return {
        "reach_charts": [_per_day(read, days, zone, "impressions", f"Impressions per day of posting, {who}"),
                         _per_day(read, days, zone, "engagements", f"Engagements per day of posting, {who}")],
        "best_posts": best_posts(read, by_id, settings),
        "best_hours": best_hours(read, zone),
        "account_totals": account_totals(read, accounts if chosen is None else [chosen]),
        "posts_read": len(read),
    }


def _figure(kind: str, reading: Reading) -> int:
    return engagements(reading.metrics) if kind == "engagements" else reading.metrics.get("impression_count", 0)


def _per_day(read: Sequence[tuple[Post, Reading]], days: Sequence[date], zone: tzinfo, kind: str,
             title: str) -> Chart:
    sums = {day: 0 for day in days}
    for post, reading in read:
        day = post.posted_at.astimezone(zone).date() if post.posted_at else None
        if day in sums:
            sums[day] += _figure(kind, reading)
    return layout(f"chart-{kind}", title, f"{sum(sums.values()):,} {kind} of {len(read):,} posts read, "
                  f"by the day they were posted.", [(day, {kind: sums[day]}) for day in days], ((kind, kind),),
                  {"data-chart": kind}, tick_every=5)


def best_posts(read: Sequence[tuple[Post, Reading]], accounts: dict[str, Account],
               settings: Settings) -> list[Performer]:
    """The posts with the most engagements (then impressions), best first."""
    ranked = sorted(read, key=lambda pair: (engagements(pair[1].metrics), pair[1].metrics.get("impression_count", 0)),
                    reverse=True)
    shown = []
    for post, reading in ranked[:BEST_SHOWN]:
        account = accounts.get(post.account_id)
        counts = reading.metrics
        shown.append(Performer(post.id, account.handle if account else post.account_id, post.parts[0],
                               post_link(settings, account, post), counts.get("like_count", 0),
                               counts.get("retweet_count", 0), counts.get("reply_count", 0),
                               counts.get("impression_count", 0), engagements(counts)))
    return shown


def best_hours(read: Sequence[tuple[Post, Reading]], zone: tzinfo) -> list[Hour]:
    """The hours of the day posts went out at, ranked by the engagements a post posted then had on average."""
    found: dict[int, list[int]] = {}
    for post, reading in read:
        if post.posted_at is not None:
            found.setdefault(post.posted_at.astimezone(zone).hour, []).append(engagements(reading.metrics))
    hours = [Hour(f"{hour:02d}:00", len(values), round(sum(values) / len(values), 1)) for hour, values in found.items()]
    return sorted(hours, key=lambda h: (h.average, h.posts), reverse=True)[:BEST_SHOWN]


def account_totals(read: Sequence[tuple[Post, Reading]], accounts: Sequence[Account]) -> list[Totals]:
    """Each account's sums over its posts read (an account with none read shows zeros)."""
    totals = []
    for account in accounts:
        mine = [reading.metrics for post, reading in read if post.account_id == account.user_id]
        totals.append(Totals(account.handle, len(mine), _sum(mine, "like_count"), _sum(mine, "retweet_count"),
                             _sum(mine, "reply_count"), _sum(mine, "impression_count"),
                             sum(engagements(m) for m in mine)))
    return totals



def _sum(metrics: Sequence[dict[str, int]], name: str) -> int:
    return sum(m.get(name, 0) for m in metrics)
