"""Reading `--at` times: formats, the operator's zone, named zones, DST, and refusals."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from test_queue_support import make_folder, utc

from bot.models import utcnow
from bot.when import WhenError, format_local, parse_when

# Sunday 2026-11-29, 18:05 UTC = 19:05 in Berlin (CET, UTC+1).
NOW = utc(2026, 11, 29, 18, 5)


@pytest.mark.parametrize("text, expected", [
    ("2026-12-01 09:00", utc(2026, 12, 1, 8, 0)),                    # operator's zone: Berlin, winter
    ("2026-12-01T09:00", utc(2026, 12, 1, 8, 0)),
    ("2026-07-01 09:00", utc(2026, 7, 1, 7, 0)),                     # Berlin, summer
    ("2026-12-01T09:00:00+01:00", utc(2026, 12, 1, 8, 0)),           # its own offset wins
    ("2026-12-01T08:00Z", utc(2026, 12, 1, 8, 0)),
    ("2026-12-01 09:00 UTC", utc(2026, 12, 1, 9, 0)),
    ("2026-12-01 09:00 America/New_York", utc(2026, 12, 1, 14, 0)),
    ("2026-12-01 09:00 +05:30", utc(2026, 12, 1, 3, 30)),
    ("now", NOW),
    ("today 20:30", utc(2026, 11, 29, 19, 30)),
    ("tomorrow 09:00", utc(2026, 11, 30, 8, 0)),
    ("Tomorrow  9:00", utc(2026, 11, 30, 8, 0)),
    ("tomorrow 09:00 Asia/Tokyo", utc(2026, 12, 1, 0, 0)),           # already the 30th in Tokyo: its tomorrow is the 1st
    ("mon 09:00", utc(2026, 11, 30, 8, 0)),
    ("friday 18:30", utc(2026, 12, 4, 17, 30)),
    ("sun 20:00", utc(2026, 11, 29, 19, 0)),                         # today is Sunday and 20:00 is ahead
    ("sun 19:00", utc(2026, 12, 6, 18, 0)),                          # 19:00 has passed: next Sunday
    ("09:00", utc(2026, 11, 30, 8, 0)),                              # the next 09:00
    ("in 90 minutes", utc(2026, 11, 29, 19, 35)),
    ("in 2 hours", utc(2026, 11, 29, 20, 5)),
    ("in 3 days", utc(2026, 12, 2, 18, 5)),
    ("2026-10-25 02:30", utc(2026, 10, 25, 0, 30)),                  # happens twice: the first one
])
def test_times_people_type(text: str, expected: datetime) -> None:
    moment = parse_when(text, "Europe/Berlin", NOW)
    assert moment == expected
    assert moment.tzinfo == timezone.utc


@pytest.mark.parametrize("text, reason", [
    ("", "no time given"),
    ("yesterday", "not a time we understand"),
    ("2026-12-01", "a date needs a time of day too"),
    ("tomorrow 25:00", "is not a time of day"),
    ("tomorrow 9", "is not a time of day"),
    ("2026-13-01 09:00", "not a valid date and time"),
    ("2026-12-01 09:00 Mars/Olympus", "'Mars/Olympus' is not a time zone"),
    ("2026-12-01T09:00+01:00 Europe/Berlin", "names two time zones"),
    ("2026-03-29 02:30", "does not exist in Europe/Berlin"),          # the hour the clocks skip
    ("in 3 weeks", "'weeks' is not a unit"),
])
def test_what_is_refused_says_why(text: str, reason: str) -> None:
    with pytest.raises(WhenError, match=reason):
        parse_when(text, "Europe/Berlin", NOW)


def test_times_are_shown_on_the_operator_clock() -> None:
    assert format_local(utc(2026, 12, 1, 8, 0), "Europe/Berlin") == "2026-12-01 09:00 CET"
    assert format_local(utc(2026, 7, 1, 7, 0), "Europe/Berlin") == "2026-07-01 09:00 CEST"
    assert format_local(None, "UTC") == "-"


def test_post_at_reads_the_operator_zone_unless_the_text_names_one(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, "Europe/Berlin")
    folder.connect("alice", "101")
    berlin = folder.run("post", "in Berlin's winter", "--at", "2099-12-01 09:00")
    assert berlin.returncode == 0, berlin.stderr
    assert "due 2099-12-01 09:00 CET" in berlin.stdout
    named = folder.run("post", "in New York", "--at", "2099-12-01 09:00 America/New_York")
    assert named.returncode == 0, named.stderr
    zulu = folder.run("post", "in UTC", "--at", "2099-12-01T09:00Z")
    assert zulu.returncode == 0, zulu.stderr
    due = {post.text: post.due_at for post in folder.store().queued_posts()}
    assert due == {"in Berlin's winter": utc(2099, 12, 1, 8, 0), "in New York": utc(2099, 12, 1, 14, 0),
                   "in UTC": utc(2099, 12, 1, 9, 0)}


@pytest.mark.parametrize("when, reason", [
    ("2020-01-01 09:00", "2020-01-01 09:00 CET is in the past"),
    ("today 25:00", "is not a time of day"),
    ("2099-03-29 02:30", "does not exist in Europe/Berlin"),
    ("yesterday 09:00", "09:00 CET is in the past"),  # understood, and refused for what it is
])
def test_post_refuses_a_bad_or_past_time_and_queues_nothing(tmp_path: Path, when: str, reason: str) -> None:
    folder = make_folder(tmp_path, "Europe/Berlin")
    folder.connect("alice", "101")
    result = folder.run("post", "too late", "--at", when)
    assert result.returncode == 1
    assert reason in result.stderr
    assert "Traceback" not in result.stderr
    assert folder.store().queued_posts() == []


@pytest.mark.parametrize("when, minutes, said", [("in 3 minutes", 3, "in 3 min"), ("+3m", 3, "in 3 min"),
                                                  ("+2h", 120, "in 2 h"), ("+ 90 min", 90, "in 1 h 30 min")])
def test_post_in_some_minutes_is_queued_then_and_says_so(tmp_path: Path, when: str, minutes: int, said: str) -> None:
    folder = make_folder(tmp_path, "Europe/Berlin")
    folder.connect("alice", "101")
    before = utcnow()
    result = folder.run("post", "a little later", "--at", when)
    assert result.returncode == 0, result.stderr
    [queued] = folder.store().queued_posts()
    assert before + timedelta(minutes=minutes) <= queued.due_at <= utcnow() + timedelta(minutes=minutes)
    assert f"({said})" in result.stdout  # not one minute less, a moment after it was queued
