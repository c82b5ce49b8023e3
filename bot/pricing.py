"""What the queue will cost under X's pay-per-use pricing (`x-api-facts.md` §2).

Each tweet is billed on its own: $0.015, or $0.20 when it contains a URL (as
`bot.text.contains_url` finds them, the same rule that weighs a link at 23). A
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
    sent = len(post.tweet_ids)
    return parts_cost([text for index, text in enumerate(post.parts)
                       if index >= sent or not post.tweet_ids[index]])


def cost_next_days(posts: Iterable[Post], now: datetime, days: int = 30) -> Decimal:
    """What the unfinished posts due before `now + days` will cost (overdue ones included: they go out next)."""
    horizon = now + timedelta(days=days)
    return sum((unsent_cost(post) for post in posts if not post.finished and post.due_at < horizon), Decimal(0))


def dollars(amount: Decimal) -> str:
    """"$0.015", "$0.20", "$12.345": cents always, a third decimal only when there is one."""
    text = f"{amount.quantize(Decimal('0.001')):f}"
    return "$" + (text[:-1] if text.endswith("0") else text)
