"""What the queue will cost under X's pay-per-use pricing (`x-api-facts.md` §2), and what reading costs (§6).

Each tweet is billed on its own: $0.015, or $0.20 when it contains a URL (as
`xtext.contains_url` finds them, the same rule that weighs a link at 23). A
thread's parts are the account's replies to its own posts, billed as posts: the
$0.01 "summoned reply" price is for answering someone who mentioned the account,
which a thread is not. Money is `Decimal`, never float, so totals add up exactly.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from bot.models import Post
from xtext import contains_url

POST_PRICE = Decimal("0.015")
URL_POST_PRICE = Decimal("0.20")
POST_READ_PRICE = Decimal("0.005")  # each post a read returns (`GET /2/tweets`, someone's timeline)
OWNED_READ_PRICE = Decimal("0.001")  # each post of the app owner's own timeline, read with their token


def read_cost(posts: int, owned: bool = False) -> Decimal:
    """The price of a read that returned `posts` posts not billed yet today (x-api-facts §6)."""
    return posts * (OWNED_READ_PRICE if owned else POST_READ_PRICE)


def part_cost(text: str) -> Decimal:
    """The price of one tweet with this text."""
    return URL_POST_PRICE if contains_url(text) else POST_PRICE


def parts_cost(parts: Sequence[str]) -> Decimal:
    """The price of a post or thread given as its texts (for a form, before anything is queued)."""
    return sum((part_cost(text) for text in parts), Decimal(0))


def post_cost(post: Post) -> Decimal:
    """The price of the whole post: each part priced on its own, summed."""
    return parts_cost(post.parts)


def unsent_cost(post: Post) -> Decimal:
    """The price of the parts X does not have yet (a thread cut short has paid for the rest)."""
    return parts_cost([post.parts[index] for index in post.missing_parts()])


def cost_next_days(posts: Iterable[Post], now: datetime, days: int = 30) -> Decimal:
    """What the unfinished posts due before `now + days` will cost (overdue ones included: they go out next)."""
    return sum((unsent_cost(post) for post in _upcoming(posts, now, days)), Decimal(0))


def cost_line(posts: Sequence[Post], now: datetime, tier: str, days: int = 30) -> str:
    """The queue's total for the next `days`, as `tweetbot queue` and the dashboard both word it.

    "Next 30 days: 3 posts, $0.23."; with threads "2 posts (4 parts, each billed), $0.06."
    (prices are pay-per-use; under a subscription tier the line says the figure is
    what the posts would cost if billed per use).
    """
    upcoming = _upcoming(posts, now, days)
    billing = "" if tier == "payg" else f" if billed per use (X_TIER={tier} is a subscription)"
    parts = sum(unsent_parts(p) for p in upcoming)
    counted = _plural(len(upcoming), "post") + (f" ({_plural(parts, 'part')}, each billed)"
                                                if parts != len(upcoming) else "")
    return f"Next {days} days: {counted}, {dollars(cost_next_days(upcoming, now, days))}{billing}."


def _upcoming(posts: Iterable[Post], now: datetime, days: int) -> list[Post]:
    horizon = now + timedelta(days=days)
    return [p for p in posts if not p.finished and p.due_at < horizon]


def unsent_parts(post: Post) -> int:
    """How many of the post's parts X does not have yet (what `unsent_cost` charges for)."""
    return len(post.missing_parts())


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def dollars(amount: Decimal) -> str:
    """"$0.015", "$0.20", "$12.345": cents always, a third decimal only when there is one."""
    text = f"{amount.quantize(Decimal('0.001')):f}"
    return "$" + (text[:-1] if text.endswith("0") else text)
