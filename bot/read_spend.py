"""What reading X costs, kept per calendar month in the store (issue 22).

Under pay-per-use every read of posts is billed (x-api-facts §6): $0.005 a post returned, $0.001 on
the timeline of the account that owns the developer app (X_APP_OWNER) read with its own token, and a
post already billed in the same UTC day is not billed again. The worker prices each read it makes as
X bills it and adds it to the month's figure of its kind (`SETTLE`: the timeline reads that settle an
uncertain post, never cut by a budget, since exactly-once comes first), so the owner sees what reading
cost without asking X.

Kept in meta: `read_spend:YYYY-MM` (UTC month) → {kind: dollars as a decimal string}, and
`read_billed` → the UTC day and the post ids billed on it (yesterday's are forgotten).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal

from bot.pricing import dollars, read_cost
from bot.store import Repository

log = logging.getLogger("tweetbot.reads")

SETTLE = "settle"
ANALYTICS = "analytics"  # the reads of how posts did (`bot.analytics`), which ANALYTICS_BUDGET caps
EXPIRY = "expiry"  # the lookups before an expired post is deleted (`bot.expiry`)
BILLED_KEY = "read_billed"


def month_key(at: datetime) -> str:
    return f"read_spend:{at.astimezone(timezone.utc):%Y-%m}"


def record_read(store: Repository, at: datetime, kind: str, post_ids: Iterable[str], owned: bool) -> Decimal:
    """Add what a read that returned `post_ids` cost to the month's `kind`; that cost (those billed
    earlier the same UTC day cost nothing)."""
    day = at.astimezone(timezone.utc).date().isoformat()
    with store.transaction():
        earlier = billed_today(store, at)
        new = [post_id for post_id in dict.fromkeys(post_ids) if post_id not in earlier]
        if not new:
            return Decimal(0)
        store.set_meta(BILLED_KEY, {"day": day, "ids": sorted(earlier | set(new))})
        cost = read_cost(len(new), owned)
        spent = dict(store.get_meta(month_key(at)) or {})
        spent[kind] = str(Decimal(spent.get(kind, "0")) + cost)
        store.set_meta(month_key(at), spent)
    log.info("read %s post(s) billed today for the first time (%s): $%s", len(new), kind, cost)
    return cost


def billed_today(store: Repository, at: datetime) -> set[str]:
    """The posts X billed a read of earlier in `at`'s UTC day: read again that day, they cost nothing."""
    billed = store.get_meta(BILLED_KEY) or {}
    return set(billed.get("ids", ())) if billed.get("day") == at.astimezone(timezone.utc).date().isoformat() else set()


def month_spend(store: Repository, at: datetime) -> dict[str, Decimal]:
    """The month's read spend by kind (the UTC month of `at`)."""
    return {kind: Decimal(amount) for kind, amount in (store.get_meta(month_key(at)) or {}).items()}


KIND_WORDS = {SETTLE: "timeline reads that settled uncertain posts", ANALYTICS: "reads of how posts did",
              EXPIRY: "lookups before deleting expired posts"}


def spend_line(store: Repository, at: datetime) -> str | None:
    """The month's read spend as the dashboard says it; None when nothing was read this month."""
    spent = month_spend(store, at)
    if not spent:
        return None
    kinds = ", ".join(f"{KIND_WORDS.get(kind, kind)} {dollars(amount)}" for kind, amount in sorted(spent.items()))
    return f"Reads this month: {dollars(sum(spent.values(), Decimal(0)))} ({kinds})."
