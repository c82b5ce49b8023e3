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

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import takewhile
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot.models import Account, Post, utcnow
from bot.recent import history_since, outcome_time
from bot.schedules import load_slots
from web.db import settings, store
from web.display import clock_text, post_link, span_words

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
    link: str | None = None
    fill: str | None = None  # a slot's prefilled compose form


@dataclass(frozen=True)
class Day:
    label: str
    today: bool
    past: bool
    items: tuple[Item, ...]


def excerpt(post: Post) -> str:
    first = post.parts[0]
    text = first if len(first) <= EXCERPT else first[:EXCERPT - 1] + "…"
    return text + (f" (+{len(post.parts) - 1} parts)" if len(post.parts) > 1 else "")


def calendar_context(account_id: str | None) -> dict[str, Any]:
    now, zone = utcnow(), settings().zone
    repo = store()
    accounts = repo.list_accounts()
    by_id = {a.user_id: a for a in accounts}
    chosen = by_id.get(account_id or "")
    shown: list[Account] = [chosen] if chosen else accounts
    start_day = now.astimezone(zone).date() - timedelta(days=now.astimezone(zone).weekday())
    start = datetime.combine(start_day, datetime.min.time(), zone)
    end = datetime.combine(start_day + timedelta(days=DAYS), datetime.min.time(), zone)
    back = url_for("calendar.week", account=chosen.user_id if chosen else None)
    items: list[tuple[datetime, Item]] = []

    def handle(post: Post) -> str:
        found = by_id.get(post.account_id)
        return found.handle if found else f"account {post.account_id}"

    queued = repo.queued_posts(chosen.user_id if chosen else None)
    for post in queued:
        if post.due_at < end:
            items.append((post.due_at, Item(post.status, post.due_at.astimezone(zone).strftime("%H:%M"),
                                            clock_text(post.due_at, now, zone) + ", " + span_words(post.due_at, now),
                                            handle(post), excerpt(post), post.id)))
    for post in history_since(repo, start, chosen.user_id if chosen else None):
        moment = outcome_time(post)
        if start <= moment < end:
            items.append((moment, Item(post.status, moment.astimezone(zone).strftime("%H:%M"),
                                       clock_text(moment, now, zone) + ", " + span_words(moment, now), handle(post),
                                       excerpt(post), post.id, post_link(settings(), by_id.get(post.account_id),
                                                                        post))))
    taken: dict[str, set[datetime]] = {}
    for post in queued:
        taken.setdefault(post.account_id, set()).add(post.due_at)
    for account in shown:
        if account.status == "disconnected":
            continue
        schedule = load_slots(repo, account.user_id)
        if schedule is None:
            continue
        for moment in takewhile(lambda m: m < end, schedule.times_after(now)):
            if moment in taken.get(account.user_id, ()):
                continue
            local = moment.astimezone(zone)
            fill = url_for("dashboard.index") + "?" + urlencode(
                {"account": account.user_id, "at": local.strftime("%Y-%m-%dT%H:%M"), "back": back}) + "#compose"
            items.append((moment, Item("slot", local.strftime("%H:%M"),
                                       clock_text(moment, now, zone) + ", " + span_words(moment, now),
                                       account.handle, fill=fill)))
    items.sort(key=lambda pair: pair[0])
    days = []
    today = now.astimezone(zone).date()
    for offset in range(DAYS):
        day = start_day + timedelta(days=offset)
        inside = tuple(item for moment, item in items if moment.astimezone(zone).date() == day)
        label = ("today, " if day == today else "") + f"{day:%a %d %b}"
        days.append(Day(label, day == today, day < today, inside))
    return {"weeks": [days[:7], days[7:]], "accounts": accounts, "chosen": chosen, "back": back,
            "zone": settings().timezone,
            "live": url_for("fragments.calendar", account=chosen.user_id if chosen else None)}


@bp.get("/calendar")
def week() -> ResponseReturnValue:
    return render_template("calendar.html", **calendar_context(request.args.get("account")))
