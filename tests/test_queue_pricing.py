"""What the queue costs under pay-per-use: $0.015 a post, $0.20 a post with a URL, per part."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from test_queue_support import utc

from bot.models import CANCELED, SENDING, Post
from bot.pricing import cost_next_days, dollars, parts_cost, post_cost

NOW = utc(2026, 12, 1, 12, 0)


def post(*parts: str, due_in: timedelta = timedelta(hours=1), **changes: object) -> Post:
    return Post(id=1, account_id="101", parts=parts, due_at=NOW + due_in, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("parts, expected", [
    (("good morning",), Decimal("0.015")),
    (("read this https://example.com/post",), Decimal("0.20")),
    (("bare links count too: example.com",), Decimal("0.20")),          # X links it, so it is a URL
    (("one", "two https://example.org", "three"), Decimal("0.23")),     # a thread: each part on its own
    (("a", "b", "c", "d", "e"), Decimal("0.075")),
])
def test_each_part_is_priced_on_its_own(parts: tuple[str, ...], expected: Decimal) -> None:
    assert post_cost(post(*parts)) == expected
    assert parts_cost(parts) == expected


def test_the_next_thirty_days_total_counts_only_what_will_still_be_sent() -> None:
    posts = [
        post("tomorrow", due_in=timedelta(days=1)),                                   # 0.015
        post("with https://example.com", due_in=timedelta(days=29, hours=23)),       # 0.20
        post("overdue, goes out next", due_in=-timedelta(minutes=5)),                # 0.015
        post("after the horizon", due_in=timedelta(days=30, minutes=1)),             # not counted
        post("canceled", status=CANCELED),                                           # not counted
        post("sent", "half https://example.com", "unsent", status=SENDING,
             tweet_ids=("111", "222")),                                              # only "unsent": 0.015
    ]
    assert cost_next_days(posts, NOW) == Decimal("0.245")
    assert cost_next_days(posts, NOW, days=2) == Decimal("0.045")
    assert cost_next_days([], NOW) == Decimal("0")


@pytest.mark.parametrize("amount, shown", [
    (Decimal("0.015"), "$0.015"), (Decimal("0.20"), "$0.20"), (Decimal("0.23"), "$0.23"),
    (Decimal("12.345"), "$12.345"), (Decimal("0"), "$0.00"), (Decimal("150.000"), "$150.00"),
])
def test_dollars_show_cents_and_a_third_decimal_only_when_needed(amount: Decimal, shown: str) -> None:
    assert dollars(amount) == shown
