"""Slots: the weekly times an account posts at, kept at the wall-clock time across DST."""
from __future__ import annotations

from datetime import datetime
from itertools import islice
from pathlib import Path

import pytest
from test_queue_support import make_folder, utc

from bot.models import utcnow
from bot.queue import NEXT_SLOT, queue_post
from bot.schedules import (
    NoSlots,
    SlotSpecError,
    load_slots,
    next_free_slot,
    parse_slots,
    save_slots,
)
from bot.store import Repository


def labels(text: str, tz: str | None = None) -> list[str]:
    return [slot.label() for slot in parse_slots(text, tz).slots]


def test_slot_text_reads_days_ranges_and_times() -> None:
    assert labels("mon-fri 09:00,13:00; sat 11:00") == [
        "mon 09:00", "mon 13:00", "tue 09:00", "tue 13:00", "wed 09:00", "wed 13:00",
        "thu 09:00", "thu 13:00", "fri 09:00", "fri 13:00", "sat 11:00"]
    assert labels("fri-mon 10:00") == ["mon 10:00", "fri 10:00", "sat 10:00", "sun 10:00"]  # wraps the week
    assert labels("mon, wed 9:30") == ["mon 09:30", "wed 09:30"]
    assert labels("weekends 12:00") == ["sat 12:00", "sun 12:00"]
    assert len(labels("daily 08:00, 20:00")) == 14
    assert len(labels("07:15")) == 7  # no days: every day


def test_the_zone_comes_from_tz_or_the_text_or_the_default() -> None:
    assert parse_slots("mon 09:00", "Europe/Berlin").zone == "Europe/Berlin"
    assert parse_slots("mon-fri 09:00, 13:00 Europe/Berlin").zone == "Europe/Berlin"
    assert parse_slots("mon 09:00", None, default_tz="Asia/Tokyo").zone == "Asia/Tokyo"


@pytest.mark.parametrize("text, tz, reason", [
    ("xyz 09:00", None, "'xyz' is not a day"),
    ("mon", None, "no time of day"),
    ("mon 24:00", None, "'24:00' is not a time of day"),
    ("09:00 mon", None, "days come before times"),
    ("", None, "no slots given"),
    ("mon 09:00 Europe/Paris", "Europe/Berlin", "the text says Europe/Paris but --tz says Europe/Berlin"),
    ("mon 09:00", "Nowhere/Land", "is not a named time zone"),
    ("mon 09:00 +02:00", None, "is not a named time zone"),  # an offset does not follow DST
])
def test_bad_slot_text_is_refused_with_the_reason(text: str, tz: str | None, reason: str) -> None:
    with pytest.raises(SlotSpecError, match=reason):
        parse_slots(text, tz)


@pytest.fixture
def berlin_store(tmp_path: Path) -> Repository:
    folder = make_folder(tmp_path, "Europe/Berlin")
    folder.connect("alice", "101")
    store = folder.store()
    save_slots(store, "101", parse_slots("daily 09:00", "Europe/Berlin"))
    return store


@pytest.mark.parametrize("now, expected", [
    (utc(2026, 3, 27, 6, 0), utc(2026, 3, 27, 8, 0)),   # Friday before the change: CET, 09:00 = 08:00 UTC
    (utc(2026, 3, 28, 9, 0), utc(2026, 3, 29, 7, 0)),   # the morning of the change: already CEST
    (utc(2026, 3, 30, 6, 0), utc(2026, 3, 30, 7, 0)),   # Monday after: CEST, 09:00 = 07:00 UTC
    (utc(2026, 10, 24, 9, 0), utc(2026, 10, 25, 8, 0)),  # back to CET in October
])
def test_a_0900_berlin_slot_stays_at_0900_across_daylight_saving(berlin_store: Repository, now: datetime,
                                                                   expected: datetime) -> None:
    assert next_free_slot(berlin_store, "101", now) == expected


def test_the_next_free_slot_skips_slots_taken_by_queued_posts(berlin_store: Repository) -> None:
    now = utc(2026, 3, 27, 6, 0)
    first = queue_post(berlin_store, "@alice", ["one"], NEXT_SLOT, now)
    second = queue_post(berlin_store, "@alice", ["two"], NEXT_SLOT, now)
    queue_post(berlin_store, "@alice", ["exact"], utc(2026, 3, 29, 7, 0), now)  # takes Sunday's slot by hand
    third = queue_post(berlin_store, "@alice", ["three"], NEXT_SLOT, now)
    assert [first.due_at, second.due_at, third.due_at] == [
        utc(2026, 3, 27, 8, 0), utc(2026, 3, 28, 8, 0), utc(2026, 3, 30, 7, 0)]
    assert {p.source for p in berlin_store.queued_posts()} == {"cli"}


def test_a_slot_in_the_skipped_hour_moves_forward_by_the_gap(berlin_store: Repository) -> None:
    schedule = parse_slots("sun 02:30", "Europe/Berlin")
    times = list(islice(schedule.times_after(utc(2026, 3, 28, 0, 0)), 2))
    assert times == [utc(2026, 3, 29, 1, 30), utc(2026, 4, 5, 0, 30)]  # 03:30 CEST, then 02:30 CEST


def test_an_account_without_slots_has_no_next_slot(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    folder.connect("bob", "202")
    with pytest.raises(NoSlots, match="@bob has no slots"):
        next_free_slot(folder.store(), "202", utc(2026, 3, 27))


@pytest.mark.slow
def test_slots_commands_set_show_and_fill(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, "UTC")
    folder.connect("alice", "101")
    folder.connect("bob", "202")
    set_result = folder.run("slots", "set", "@alice", "mon-fri 09:00,13:00; sat 11:00", "--tz", "Europe/Berlin")
    assert set_result.returncode == 0, set_result.stderr
    assert "@alice: mon-fri 09:00,13:00; sat 11:00 (Europe/Berlin)" in set_result.stdout
    stored = load_slots(folder.store(), "101")
    assert stored is not None and stored.zone == "Europe/Berlin" and len(stored.slots) == 11

    before = utcnow()
    first = folder.run("post", "into a slot", "--account", "@alice")
    second = folder.run("post", "into the next slot", "--account", "@alice")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    posts = folder.store().queued_posts("101")
    assert len(posts) == 2 and posts[0].due_at < posts[1].due_at
    expected = list(islice(stored.times_after(before), 2))
    assert [p.due_at for p in posts] == expected

    shown = folder.run("slots", "show")
    assert shown.returncode == 0, shown.stderr
    alone = folder.run("slots")  # what a person types first: every account's slots, as `slots show`
    assert alone.returncode == 0 and alone.stdout == shown.stdout, alone.stderr
    assert "@alice: mon-fri 09:00,13:00; sat 11:00 (Europe/Berlin)" in shown.stdout
    assert "@bob: no slots" in shown.stdout
    assert shown.stdout.count("next free:") == 5

    bad = folder.run("slots", "set", "@bob", "someday 09:00")
    assert bad.returncode == 1 and "'someday' is not a day" in bad.stderr
    assert load_slots(folder.store(), "202") is None

    cleared = folder.run("slots", "clear", "@alice")
    assert cleared.returncode == 0 and load_slots(folder.store(), "101") is None
