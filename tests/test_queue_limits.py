"""Tier limits: spacing an account's posts, and warning when the queue asks for too much."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_queue_support import make_folder, utc

from bot.limits import APP, TIER_LIMITS, next_allowed_at, queue_warnings, recent_post_times
from bot.models import POSTED, Post

NOW = utc(2026, 12, 1, 12, 0)


def times_before(now: datetime, count: int, step: timedelta) -> list[datetime]:
    """`count` post times ending at `now`, `step` apart, oldest first."""
    return [now - step * (count - 1 - n) for n in range(count)]


def post(post_id: int, account_id: str, due_at: datetime, parts: int = 1) -> Post:
    return Post(id=post_id, account_id=account_id, parts=tuple(f"part {n}" for n in range(parts)), due_at=due_at)


def test_the_tier_tables_hold_the_documented_numbers() -> None:
    described = {tier: [w.describe() for w in windows] for tier, windows in TIER_LIMITS.items()}
    assert described == {
        "payg": ["100 per 15 min per user", "10,000 per 24 h per app"],
        "free": ["17 per 24 h per user", "17 per 24 h per app"],
        "basic": ["100 per 24 h per user", "1,667 per 24 h per app"],
        "pro": ["100 per 15 min per user"],
        "enterprise": ["100 per 15 min per user"],
    }


@pytest.mark.parametrize("tier, count, step, expected", [
    ("free", 16, timedelta(hours=1), None),                                   # one left in the day
    ("free", 17, timedelta(hours=1), NOW - timedelta(hours=16) + timedelta(hours=24)),  # when the oldest leaves
    ("basic", 99, timedelta(minutes=10), None),
    ("basic", 100, timedelta(minutes=10), NOW - timedelta(minutes=990) + timedelta(hours=24)),
    ("payg", 99, timedelta(seconds=5), None),
    ("payg", 100, timedelta(seconds=5), NOW - timedelta(seconds=495) + timedelta(minutes=15)),
    ("pro", 100, timedelta(seconds=5), NOW - timedelta(seconds=495) + timedelta(minutes=15)),
    ("payg", 100, timedelta(seconds=10), None),   # 100 posts over 16.5 min: the oldest is out of the window
])
def test_next_allowed_at_spaces_an_accounts_posts(tier: str, count: int, step: timedelta,
                                                   expected: datetime | None) -> None:
    assert next_allowed_at(times_before(NOW, count, step), tier, NOW) == expected


def test_a_thread_needs_room_for_all_its_parts() -> None:
    recent = times_before(NOW, 14, timedelta(hours=1))  # free: 3 left today
    assert next_allowed_at(recent, "free", NOW, parts=3) is None
    # 4 parts: the oldest post must leave the window first.
    assert next_allowed_at(recent, "free", NOW, parts=4) == NOW - timedelta(hours=13) + timedelta(hours=24)
    # 5 parts: the two oldest.
    assert next_allowed_at(recent, "free", NOW, parts=5) == NOW - timedelta(hours=12) + timedelta(hours=24)


def test_old_and_future_times_do_not_count() -> None:
    old = [NOW - timedelta(hours=25)] * 50
    future = [NOW + timedelta(minutes=1)] * 50
    assert next_allowed_at(old + future, "free", NOW) is None


def test_the_app_window_counts_every_account_together() -> None:
    recent = times_before(NOW, 1_667, timedelta(seconds=30))
    assert next_allowed_at(recent, "basic", NOW, scope=APP) == recent[0] + timedelta(hours=24)
    assert next_allowed_at(recent[1:], "basic", NOW, scope=APP) is None
    assert next_allowed_at(recent, "pro", NOW, scope=APP) is None  # pro has no documented app window


def test_recent_post_times_come_from_the_history(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    folder.connect("alice", "101")
    store = folder.store()
    queued = store.add_posts([post(0, "101", NOW - timedelta(hours=h), parts=2 if h == 1 else 1) for h in (1, 2, 30)])
    for stored in queued:
        store.update_post(stored.id, status=POSTED, posted_at=stored.due_at,
                          tweet_ids=tuple(f"{stored.id}{n}" for n in range(len(stored.parts))))
    times = recent_post_times(store, "101", NOW)
    assert sorted(times) == [NOW - timedelta(hours=2), NOW - timedelta(hours=1), NOW - timedelta(hours=1)]


def test_queue_warnings_name_the_account_the_window_and_the_tier() -> None:
    start = utc(2026, 12, 1, 9, 0)
    crowded = [post(n, "101", start + timedelta(minutes=30 * n)) for n in range(20)]  # 20 in 10 h
    calm = [post(100 + n, "202", start + timedelta(hours=2 * n)) for n in range(5)]
    warnings = queue_warnings(crowded + calm, "free", names={"101": "@alice", "202": "@bob"}, zone="Europe/Berlin")
    assert warnings[0] == ("@alice: 20 posts due in the 24 h from 2026-12-01 10:00 CET; "
                           "X_TIER=free allows 17 per 24 h per user, so some will go out late")
    assert warnings[1].startswith("all accounts together: 25 posts due in the 24 h from")
    assert len(warnings) == 2
    assert queue_warnings(crowded + calm, "payg") == []  # 100 per 15 min is far away


def test_queue_warnings_count_thread_parts_and_the_pay_per_use_burst() -> None:
    start = utc(2026, 12, 1, 9, 0)
    burst = [post(n, "101", start + timedelta(seconds=n), parts=4) for n in range(26)]  # 104 tweets in 26 s
    warnings = queue_warnings(burst, "payg")
    assert warnings == ["101: 104 posts due in the 15 min from 2026-12-01 09:00 UTC; "
                        "X_TIER=payg allows 100 per 15 min per user, so some will go out late"]
    assert queue_warnings(burst[:25], "payg") == []  # exactly 100 is allowed
