"""The calendar (`/calendar`): this week and the next, day by day, in the operator's zone (TIMEZONE).

Per account (`?account=<id>`) or all accounts: queued posts at their times, each
account's free slots (`bot.schedules` slots no queued post holds) as empty boxes that
open the compose form prefilled for that slot and account, and posted and failed posts
in the past with their links. The grid lives in `_calendar.html`, which
`/fragments/calendar` renders alone for the page's live polling (static/live.js), so
a post that goes out turns "posted" in its cell without a reload.

Cost: one read of the queue, the slots of each account, and the history only as far
back as the first day shown (read in growing pages, newest first).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import takewhile
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot.models import DISCONNECTED, POSTED, Account, Post
from bot.queue import why_not_editable
from bot.recent import history_since, outcome_time
from bot.schedules import load_slots
from web.db import now as clock_now
from web.db import settings, store
from web.display import MetricsView, post_link, when_text

bp = Blueprint("calendar", __name__)
DAYS = 14
EXCERPT = 90


@dataclass(frozen=True)
class Item:
    kind: str  # scheduled, sending, posted, failed, canceled, slot
    time: str  # "14:05"
    when: str  # "today 14:05 CET, in 12 min"
    handle: str
    text: str = ""
    post_id: int | None = None
    link: str | None = None  # a posted post's page on X (or the sandbox)
    fill: str | None = None  # a slot's prefilled compose form
    edit: str | None = None  # a post's edit page, while it can be edited
    post_now: str | None = None  # a scheduled post's "Post now" action
    metrics: MetricsView | None = None  # a posted post's, once read from X


@dataclass(frozen=True)
class Day:
    label: str
    today: bool
    past: bool
    items: tuple[Item, ...]


@dataclass(frozen=True)
class View:
    """What one calendar shows: the days from `start` (a Monday, local midnight) to `end`, for `shown`."""

    now: datetime
    zone: ZoneInfo
    start: datetime
    end: datetime
    by_id: dict[str, Account]
    shown: list[Account]
    chosen: Account | None
    back: str  # this calendar's own URL, where its forms come back to

    def handle(self, post: Post) -> str:
        found = self.by_id.get(post.account_id)
        return found.handle if found else f"account {post.account_id}"

    def item(self, kind: str, moment: datetime, handle: str, **rest: Any) -> tuple[datetime, Item]:
        return moment, Item(kind, moment.astimezone(self.zone).strftime("%H:%M"),
                            when_text(moment, self.now, self.zone), handle, **rest)


def excerpt(post: Post) -> str:
    first = post.parts[0]
    text = first if len(first) <= EXCERPT else first[:EXCERPT - 1] + "…"
    return text + (f" (+{len(post.parts) - 1} parts)" if len(post.parts) > 1 else "")


def per_post_url(endpoint: str, **values: Any) -> Callable[[int], str]:
    """`url_for(endpoint, post_id=…)` for many posts at the cost of one `url_for` (two weeks of a
    full queue are thousands of posts, and building each URL through the routing map showed)."""
    marker = 918273645  # an id no store hands out this early: it only marks where the id goes
    head, _, tail = url_for(endpoint, post_id=marker, **values).partition(str(marker))
    return lambda post_id: f"{head}{post_id}{tail}"


def calendar_view(account_id: str | None) -> View:
    now, zone = clock_now(), settings().zone
    accounts = store().list_accounts()
    by_id = {a.user_id: a for a in accounts}
    chosen = by_id.get(account_id or "")
    local_today = now.astimezone(zone).date()
    start_day = local_today - timedelta(days=local_today.weekday())
    start = datetime.combine(start_day, datetime.min.time(), zone)
    end = datetime.combine(start_day + timedelta(days=DAYS), datetime.min.time(), zone)
    back = url_for("calendar.week", account=chosen.user_id if chosen else None)
    return View(now, zone, start, end, by_id, [chosen] if chosen else accounts, chosen, back)


def queued_items(view: View, queued: list[Post]) -> list[tuple[datetime, Item]]:
    """The queued posts due before the calendar's end, at their due times (an overdue one on its day;
    one due before the first day shown is not shown), with Edit where the post can still be edited."""
    edit, post_now = per_post_url("edit.edit", back=view.back), per_post_url("dashboard.post_now")
    return [view.item(post.status, post.due_at, view.handle(post), text=excerpt(post), post_id=post.id,
                      edit=edit(post.id) if why_not_editable(post) is None else None, post_now=post_now(post.id))
            for post in queued if post.due_at < view.end]


def finished_items(view: View) -> list[tuple[datetime, Item]]:
    """Posted, failed and canceled posts at the time they were finished, with their links."""
    posts = [post for post in history_since(store(), view.start, view.chosen.user_id if view.chosen else None)
             if view.start <= outcome_time(post) < view.end]
    readings = store().readings(post.id for post in posts if post.status == POSTED)
    return [view.item(post.status, outcome_time(post), view.handle(post), text=excerpt(post), post_id=post.id,
                      link=post_link(settings(), view.by_id.get(post.account_id), post),
                      metrics=MetricsView.of(readings.get(post.id), view.now))
            for post in posts]


def slot_items(view: View, queued: list[Post]) -> list[tuple[datetime, Item]]:
    """Each shown account's free slots until the calendar's end: boxes that open compose prefilled."""
    taken: dict[str, set[datetime]] = {}
    for post in queued:
        taken.setdefault(post.account_id, set()).add(post.due_at)
    found = []
    for account in view.shown:
        schedule = load_slots(store(), account.user_id) if account.status != DISCONNECTED else None
        if schedule is None:
            continue
        for moment in takewhile(lambda m: m < view.end, schedule.times_after(view.now)):
            if moment not in taken.get(account.user_id, ()):
                at = moment.astimezone(view.zone).strftime("%Y-%m-%dT%H:%M")
                fill = url_for("dashboard.index") + "?" + urlencode(
                    {"account": account.user_id, "at": at, "back": view.back}) + "#compose"
                found.append(view.item("slot", moment, account.handle, fill=fill))
    return found


def days_of(view: View, items: list[tuple[datetime, Item]]) -> list[Day]:
    """The items grouped by local day, in time order, one `Day` for each of the `DAYS` days."""
    by_day: dict[date, list[tuple[datetime, Item]]] = {}
    for moment, item in items:
        by_day.setdefault(moment.astimezone(view.zone).date(), []).append((moment, item))
    today, first = view.now.astimezone(view.zone).date(), view.start.date()
    days = []
    for day in (first + timedelta(days=offset) for offset in range(DAYS)):
        inside = tuple(item for _, item in sorted(by_day.get(day, ()), key=lambda pair: pair[0]))
        label = ("today, " if day == today else "") + f"{day:%a %d %b}"
        days.append(Day(label, day == today, day < today, inside))
    return days


def calendar_context(account_id: str | None) -> dict[str, Any]:
    """What `calendar.html` and its live fragment show (one read of the queue for all three kinds)."""
    view = calendar_view(account_id)
    queued = store().queued_posts(view.chosen.user_id if view.chosen else None)
    items = queued_items(view, queued) + finished_items(view) + slot_items(view, queued)
    days = days_of(view, items)
    return {"weeks": [days[:7], days[7:]], "accounts": list(view.by_id.values()), "chosen": view.chosen,
            "back": view.back, "zone": settings().timezone,
            "live": url_for("fragments.calendar", account=view.chosen.user_id if view.chosen else None)}


@bp.get("/calendar")
def week() -> ResponseReturnValue:
    return render_template("calendar.html", **calendar_context(request.args.get("account")))
