"""The queue's refusals and listings say exactly what is wrong, on the operator's clock (issue 12):
empty posts and parts, control characters, 12-hour slot times, times out of range, a missing
generators file, and the history's texts. Real `tweetbot` processes in a scratch folder."""
from __future__ import annotations

import csv
import re
from datetime import timedelta
from pathlib import Path

import pytest
from test_queue_support import BotFolder, make_folder, utc

from bot.models import POSTED, Post, utcnow
from bot.queue import QueueError, queue_post
from bot.schedules import SlotSpecError, load_slots, parse_slots
from bot.when import WhenError, format_utc, parse_when

from media_support import image_bytes

NOW = utc(2026, 11, 29, 18, 5)
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")  # what a raw isoformat() looks like


@pytest.fixture
def folder(tmp_path: Path) -> BotFolder:
    folder = make_folder(tmp_path, "Europe/Berlin")
    folder.connect("alice", "101")
    return folder


def refused(folder: BotFolder, *args: str) -> str:
    """Run a command that must be refused: its one-line reason (exit 1, no traceback, nothing queued)."""
    result = folder.run(*args)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert folder.store().queued_posts() == []
    return result.stderr.strip()


# --- empty posts and parts -----------------------------------------------------------------------

def test_an_empty_post_says_it_is_empty(folder: BotFolder) -> None:
    assert refused(folder, "post", "  ") == "tweetbot: the post is empty"


def test_an_empty_part_in_a_thread_file_is_refused_naming_it(folder: BotFolder) -> None:
    thread = folder.path / "thread.txt"
    thread.write_text("first\n---\n\n---\nthird\n", encoding="utf-8")
    assert refused(folder, "post", "--thread-file", str(thread)) == (
        "tweetbot: part 2 of thread.txt (line 3) is empty: write it, or remove the --- that starts or ends it")


def test_an_empty_first_part_is_refused_and_a_closing_separator_is_not(folder: BotFolder) -> None:
    thread = folder.path / "thread.txt"
    thread.write_text("---\nsecond\n", encoding="utf-8")
    assert "part 1 of thread.txt (line 1) is empty" in refused(folder, "post", "--thread-file", str(thread))
    thread.write_text("first\n---\nsecond\n---\n\n", encoding="utf-8")
    result = folder.run("post", "--thread-file", str(thread))
    assert result.returncode == 0, result.stderr
    assert folder.store().queued_posts()[0].parts == ("first", "second")


def test_a_thread_file_with_nothing_in_it_says_so(folder: BotFolder) -> None:
    thread = folder.path / "thread.txt"
    thread.write_text("\n---\n\n", encoding="utf-8")
    assert refused(folder, "post", "--thread-file", str(thread)) == (
        "tweetbot: thread.txt is empty: write the parts, separated by lines holding only ---")


def test_a_part_of_media_lines_only_is_a_part_and_is_told_it_needs_a_text(folder: BotFolder) -> None:
    (folder.path / "chart.png").write_bytes(image_bytes())
    thread = folder.path / "thread.txt"
    thread.write_text("first\n---\nmedia: chart.png\nalt: a chart\n---\nthird\n", encoding="utf-8")
    assert refused(folder, "post", "--thread-file", str(thread)) == (
        "tweetbot: part 2 of the thread has media but no text: a post needs a text too")


def test_an_empty_csv_text_says_it_is_empty(folder: BotFolder) -> None:
    path = folder.path / "posts.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("account", "due_at", "text"), ("@alice", "2099-12-01 09:00", " ")])
    assert "posts.csv: line 2: text is empty\n" in folder.run("import", str(path)).stderr + "\n"
    assert folder.store().queued_posts() == []


# --- control characters (a NUL PostgreSQL cannot keep) --------------------------------------------

@pytest.mark.parametrize("content, reason", [
    (b"\x00\x00\x00", "the post contains a control character U+0000 at position 0"),
    (b"hello\x00world\n---\nsecond part\n", "part 1 of the thread contains a control character U+0000 at position 5"),
    (b"fine\n---\n\x1b[31mred", "part 2 of the thread contains a control character U+001B at position 0"),
    (b"fine\n---\nbell\x07\n", "part 2 of the thread contains a control character U+0007 at position 4"),
])
def test_control_characters_are_refused(folder: BotFolder, content: bytes, reason: str) -> None:
    thread = folder.path / "thread.txt"
    thread.write_bytes(content)
    assert refused(folder, "post", "--thread-file", str(thread)) == (
        f"tweetbot: {reason} (only newlines and tabs may be in a post)")


def test_tabs_newlines_and_windows_line_ends_are_kept_as_text(folder: BotFolder) -> None:
    result = folder.run("post", "a\ttab\r\nand a line")
    assert result.returncode == 0, result.stderr
    assert folder.store().queued_posts()[0].parts == ("a\ttab\nand a line",)


def test_a_control_character_in_a_csv_text_or_an_alt_text_is_refused(folder: BotFolder) -> None:
    path = folder.path / "posts.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("account", "due_at", "text"), ("@alice", "2099-12-01 09:00", "nul\x01")])
    assert "line 2: text contains a control character U+0001 at position 3" in folder.run("import", str(path)).stderr
    (folder.path / "chart.png").write_bytes(image_bytes())
    assert refused(folder, "post", "chart", "--media", "chart.png", "--alt", "rose\x0112 %") == (
        "tweetbot: the alt text of chart.png contains a control character U+0001 at position 4 "
        "(only newlines and tabs may be in an alt text)")


# --- times -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["in 99999999999 hours", "in 999999999 days", "9999-12-31 23:59 -05:00",
                                  "0001-01-01 00:00 +05:00"])
def test_a_time_beyond_what_a_datetime_holds_is_refused(text: str) -> None:
    with pytest.raises(WhenError, match=r"out of range: tweetbot takes times from now to 100 years ahead"):
        parse_when(text, "Europe/Berlin", NOW)


def test_a_time_over_a_hundred_years_ahead_is_refused() -> None:
    assert parse_when("in 36000 days", "UTC", NOW) == NOW + timedelta(days=36000)
    with pytest.raises(WhenError, match=r"'in 99999 days': too far ahead"):
        parse_when("in 99999 days", "UTC", NOW)


def test_post_at_a_huge_hour_count_is_one_line(folder: BotFolder) -> None:
    assert refused(folder, "post", "later", "--at", "in 99999999999 hours") == (
        "tweetbot: 'in 99999999999 hours': out of range: tweetbot takes times from now to 100 years ahead")


def test_a_past_time_is_shown_on_the_operator_clock(folder: BotFolder) -> None:
    reason = refused(folder, "post", "too late", "--at", "2020-01-01 09:00")
    assert re.fullmatch(r"tweetbot: 2020-01-01 09:00 CET is in the past \(it is \d{4}-\d\d-\d\d \d\d:\d\d CET now\)",
                        reason), reason


def test_the_queue_shows_a_past_time_on_the_clock_it_is_given(folder: BotFolder) -> None:
    store = folder.store()
    with pytest.raises(QueueError) as utc_clock:
        queue_post(store, "@alice", ["late"], utc(2020, 1, 1, 8, 0), now=NOW)
    assert str(utc_clock.value) == "2020-01-01 08:00 UTC is in the past (it is 2026-11-29 18:05 UTC now)"
    with pytest.raises(QueueError) as berlin:
        queue_post(store, "@alice", ["late"], utc(2020, 1, 1, 8, 0), now=NOW, zone="Europe/Berlin")
    assert str(berlin.value) == "2020-01-01 09:00 CET is in the past (it is 2026-11-29 19:05 CET now)"
    assert not ISO.search(str(utc_clock.value) + str(berlin.value))


def test_the_worker_writes_times_people_read() -> None:
    assert format_utc(utc(2026, 12, 2, 14, 5, 59)) == "2026-12-02 14:05 UTC"


@pytest.mark.parametrize("spec, reason", [
    ("mon-fri 9am", "in 'mon-fri 9am': '9am' is not a time we understand "
                    "(expected HH:MM on a 24-hour clock: 09:00 for 9am)"),
    ("sat 9:30pm", "'9:30pm' is not a time we understand (expected HH:MM on a 24-hour clock: 21:30 for 9:30pm)"),
    ("mon 12am", "00:00 for 12am"),
    ("mon 09:00,5pm", "'5pm' is not a time we understand (expected HH:MM on a 24-hour clock: 17:00 for 5pm)"),
    ("mon 9", "'9' is not a time we understand (expected HH:MM on a 24-hour clock, e.g. 09:00 or 17:30)"),
])
def test_a_slot_time_written_another_way_is_a_time_not_understood(spec: str, reason: str) -> None:
    with pytest.raises(SlotSpecError) as refused_spec:
        parse_slots(spec)
    assert reason in str(refused_spec.value)
    assert "is not a day" not in str(refused_spec.value)


def test_slots_set_with_9am_says_how_to_write_it(folder: BotFolder) -> None:
    result = folder.run("slots", "set", "@alice", "mon-fri 9am")
    assert result.returncode == 1
    assert result.stderr.strip() == ("tweetbot: in 'mon-fri 9am': '9am' is not a time we understand "
                                     "(expected HH:MM on a 24-hour clock: 09:00 for 9am)")
    assert load_slots(folder.store(), "101") is None


def test_at_9am_says_how_to_write_it(folder: BotFolder) -> None:
    assert "'9am' is not a time of day (expected HH:MM on a 24-hour clock: 09:00 for 9am)" in refused(
        folder, "post", "hi", "--at", "tomorrow 9am")


# --- generators and history ------------------------------------------------------------------------

def test_generators_without_the_file_say_it_does_not_exist(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, GENERATORS_FILE="absent.toml")
    result = folder.run("generators")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "No generators: absent.toml does not exist (set GENERATORS_FILE to use another file).")
    (tmp_path / "absent.toml").write_text("# nothing yet\n", encoding="utf-8")
    assert folder.run("generators").stdout.strip() == "No generators (absent.toml has no [[generator]] entries)."


def test_history_shows_the_start_of_each_text(folder: BotFolder) -> None:
    store = folder.store()
    due = utcnow() + timedelta(hours=1)
    short, long_one, thread = store.add_posts([
        Post(id=0, account_id="101", parts=("Short one",), due_at=due),
        Post(id=0, account_id="101", parts=("A much longer post that goes on\nand on past the column",), due_at=due),
        Post(id=0, account_id="101", parts=("Thread start", "two", "three"), due_at=due)])
    for number, post in enumerate((short, long_one, thread), start=1):
        store.update_post(post.id, status=POSTED, tweet_ids=tuple(f"{number}{n}" for n in range(len(post.parts))),
                          posted_at=utc(2026, 12, 1, 8, number))
    result = folder.run("history")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "ACCOUNT", "POSTED", "STATUS", "MEDIA", "LIKES", "REPOSTS", "REPLIES", "VIEWS",
                              "READ", "TEXT", "LINK", "ERROR"]
    by_id = {row.split()[0]: row for row in rows}
    assert "Short one " in by_id[str(short.id)]
    assert "A much longer post that goes on…" in by_id[str(long_one.id)]
    assert "Thread start +2" in by_id[str(thread.id)]
    assert all("http://127.0.0.1:8100/alice" in row for row in rows)
