"""How posts did, for the dashboard's charts section: the numbers the worker last read from X
(`bot.analytics`), per day of posting, the best posts, the posting hours that work, each account's totals.

Every figure is a sum over posted posts of the last PAST_DAYS days with a reading (a post not read yet
counts for nothing), by the day and hour they were posted in the bot's TIMEZONE.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from bot.analytics import engagements
from bot.models import POSTED, Account, Post
from bot.recent import history_since
from bot.settings import Settings
from bot.store import Reading, Repository
from web.charts import PAST_DAYS, Chart, day_start, last_days, layout
from web.display import post_link

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


def performance_panel(repo: Repository, settings: Settings, accounts: list[Account], now: datetime,
                      chosen: Account | None) -> dict[str, Any]:
    """The charts section's "how posts did": two charts per day, the best posts, the best hours, totals."""
    zone = settings.zone
    days = last_days(now, zone, PAST_DAYS)
    posted = [p for p in history_since(repo, day_start(days[0], zone), chosen.user_id if chosen else None,
                                       when=lambda post: post.posted_at or post.due_at)
              if p.status == POSTED and p.posted_at is not None]
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


def _per_day(read: Sequence[tuple[Post, Reading]], days: Sequence[Any], zone: tzinfo, kind: str,
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
