"""The dashboard's live panels (accounts, queue, history), worked out from the store for a template.

The dashboard renders them in place and `web.fragments` renders each alone (the same
partial template, the same values), so what the page polls is what a reload shows.
The list views are paginated (`PAGE_SIZE` rows), so a queue of 10,000 posts costs
one page of rows, not 10,000.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bot import analytics, read_spend
from bot.expiry import EXPIRED_EVENT, expires_at
from bot.limits import queue_warnings
from bot.models import POSTED, Account, Post
from bot.pricing import POST_PRICE, URL_POST_PRICE, cost_line, dollars
from web.db import settings, store
from web.display import account_view, default_due, held_accounts, history_view, local_time, queued_view, when_text

PAGE_SIZE = 50
EXPIRED_SHOWN = 500  # the newest `expired` events looked through for a page of the history


def page_number(raw: str | None) -> int:
    """A `?page=` value as a page number from 1 (anything else is page 1)."""
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < 100_000 else 1


def accounts_panel(now: datetime) -> dict[str, Any]:
    accounts = store().list_accounts()
    return {"accounts": [account_view(a, now, settings().zone) for a in accounts], "sandbox": settings().sandbox}


def clock_panel(now: datetime) -> dict[str, Any]:
    """The page's clock line, polled like the other panels so that an open page says the time it is, and
    the compose form's suggested time (an hour ahead), which compose.js moves on while nobody has typed one."""
    zone = settings().zone
    return {"zone": settings().timezone, "now": local_time(now, zone), "suggested_due": default_due(now, zone)}


def queue_panel(page: int, now: datetime, accounts: list[Account] | None = None) -> dict[str, Any]:
    """One page of the queue, its 30 days' cost, the tier's warnings and the accounts X holds."""
    zone = settings().zone
    accounts = store().list_accounts() if accounts is None else accounts
    by_id = {a.user_id: a for a in accounts}
    queued = store().queued_posts()
    pages = max(1, -(-len(queued) // PAGE_SIZE))
    page = min(page, pages)
    shown = queued[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    return {
        "queue": [queued_view(p, by_id.get(p.account_id), now, zone) for p in shown],
        "queue_total": len(queued), "queue_page": page, "queue_pages": pages,
        "queue_cost": cost_line(queued, now, settings().x_tier) if queued else None,
        "reads_cost": read_spend.spend_line(store(), now),
        "reading_budget": analytics.status_line(settings(), store(), now),
        "prices": {"post": dollars(POST_PRICE), "url": dollars(URL_POST_PRICE)},
        "warnings": queue_warnings(queued, settings().x_tier, {a.user_id: a.handle for a in accounts}, zone),
        "held": held_accounts(accounts, now, zone),
        "queued_posts": queued,  # the whole queue as read, for the charts (web.charts); no template shows it
    }


def history_panel(page: int, now: datetime, accounts: list[Account] | None = None) -> dict[str, Any]:
    """One page of the history, newest first (one more row is read to know whether a next page exists)."""
    zone = settings().zone
    accounts = store().list_accounts() if accounts is None else accounts
    by_id = {a.user_id: a for a in accounts}
    read = store().history(PAGE_SIZE * page + 1)
    shown = read[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    if not shown and page > 1:
        return history_panel(1, now, accounts)
    readings = store().readings(p.id for p in shown if p.status == POSTED)
    expiries = expiry_notes(shown, now)
    return {
        "history": [history_view(p, by_id.get(p.account_id), settings(), zone, now, readings.get(p.id),
                                 expiries.get(p.id)) for p in shown],
        "history_page": page, "history_more": len(read) > PAGE_SIZE * page,
    }


def expiry_notes(posts: list[Post], now: datetime) -> dict[int, str]:
    """"expires …" for the shown posts whose deletion from X is to come, "expired …: what was done" for
    those it ended (`bot.expiry`)."""
    if not any(post.options.get("expire_after") for post in posts):
        return {}
    zone = settings().zone
    notes = {post_id: f"expires {when_text(at, now, zone)}" for post_id, at in expires_at(store()).items()}
    for event in store().events(EXPIRED_SHOWN, kind=EXPIRED_EVENT):
        if event.post_id is not None:
            notes.setdefault(event.post_id, f"expired {when_text(event.at, now, zone)}: {event.detail}")
    return notes


def back_target(raw: str | None) -> str:
    """Where a form sends the browser back to: only the calendar's own paths, else "" (the dashboard).
    Anything else (another host, `//…`, control characters) is ignored, so this is never an open redirect."""
    if raw and re.fullmatch(r"/calendar(\?(account=\d+&?)?(week=[01])?)?", raw):
        return raw
    return ""
