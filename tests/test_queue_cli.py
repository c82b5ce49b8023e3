"""`tweetbot post`, `queue`, `cancel` and `history`, run as real processes."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_queue_support import BotFolder, make_folder, utc

from bot.models import CANCELED, FAILED, POSTED, Post, utcnow
from bot.when import format_local


@pytest.fixture
def folder(tmp_path: Path) -> BotFolder:
    folder = make_folder(tmp_path, "Europe/Berlin")
    folder.connect("alice", "101")
    return folder


def test_post_goes_to_the_only_account_and_says_what_it_queued(folder: BotFolder) -> None:
    result = folder.run("post", "hello https://example.com", "--at", "2099-12-01 09:00")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Queued post 1 for @alice, due 2099-12-01 09:00 CET")
    assert "29/280" in result.stdout and "$0.20 under pay-per-use" in result.stdout
    [queued] = folder.store().queued_posts()
    assert (queued.account_id, queued.parts, queued.due_at, queued.source) == (
        "101", ("hello https://example.com",), utc(2099, 12, 1, 8, 0), "cli")


def test_post_without_a_time_or_slots_is_due_now(folder: BotFolder) -> None:
    before = utcnow()
    result = folder.run("post", "right away")
    assert result.returncode == 0, result.stderr
    [queued] = folder.store().queued_posts()
    assert before <= queued.due_at <= utcnow()


@pytest.mark.parametrize("args, reason", [
    (("post", "hi", "--account", "@carol"), "no account @carol (connected: @alice, @bob)"),
    (("post", "hi"), "there are several accounts: say which with --account (@alice, @bob)"),
    (("post", "界" * 141, "--account", "bob"), "the post is too long or invalid: 282 of 280 weighted characters"),
    (("post", "   ", "--account", "bob"), "the post is empty"),
    (("post", "--account", "bob"), "give either TEXT or --thread-file"),
])
def test_refused_posts_say_why_and_queue_nothing(folder: BotFolder, args: tuple[str, ...], reason: str) -> None:
    folder.connect("bob", "202")
    result = folder.run(*args)
    assert result.returncode == 1
    assert f"tweetbot: {reason}" in result.stderr
    assert "Traceback" not in result.stderr
    assert folder.store().queued_posts() == []


def test_post_without_any_account_says_to_connect_one(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    result = folder.run("post", "hi")
    assert result.returncode == 1 and "no accounts yet" in result.stderr


def test_a_thread_file_becomes_one_thread(folder: BotFolder) -> None:
    thread = folder.path / "thread.txt"
    thread.write_text("First part,\non two lines.\n---\nSecond part https://example.com\n  ---  \nThird part\n---\n",
                      encoding="utf-8")
    result = folder.run("post", "--thread-file", str(thread), "--at", "2099-12-01 09:00 UTC")
    assert result.returncode == 0, result.stderr
    assert "Queued thread 1 (3 parts) for @alice" in result.stdout
    assert "$0.23 under pay-per-use" in result.stdout
    [queued] = folder.store().queued_posts()
    assert queued.parts == ("First part,\non two lines.", "Second part https://example.com", "Third part")


def test_a_thread_with_one_part_too_long_is_refused(folder: BotFolder) -> None:
    thread = folder.path / "thread.txt"
    thread.write_text("fine\n---\n" + "x" * 281 + "\n", encoding="utf-8")
    result = folder.run("post", "--thread-file", str(thread))
    assert result.returncode == 1
    assert "part 2 of the thread is too long or invalid" in result.stderr
    assert folder.store().queued_posts() == []


def test_queue_shows_each_post_its_cost_the_month_total_and_tier_warnings(folder: BotFolder) -> None:
    folder.set(X_TIER="free")
    store = folder.store()
    start = utcnow() + timedelta(days=1)
    store.add_posts([Post(id=0, account_id="101", parts=(f"post {n}",), due_at=start + timedelta(minutes=n))
                     for n in range(17)])
    store.add_posts([Post(id=0, account_id="101", parts=("see https://example.com", "and more"),
                          due_at=start + timedelta(hours=2)),
                     Post(id=0, account_id="101", parts=("far away",), due_at=start + timedelta(days=40))])
    result = folder.run("queue")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "ACCOUNT", "DUE", "STATUS", "PARTS", "MEDIA", "LENGTH", "COST",
                                 "NOTE"]
    thread_line = next(line for line in lines if line.split()[0] == "18")
    assert thread_line.split()[1:] == ["@alice", *_local(start + timedelta(hours=2)), "scheduled", "2", "-",
                                       "27/280", "$0.215"]
    # 17 × $0.015 + $0.215 (the thread); the post 40 days out is left out.
    assert "Next 30 days: 18 posts (19 parts, each billed), $0.47 if billed per use (X_TIER=free is a subscription)." in result.stdout
    assert "warning: @alice: 19 posts due in the 24 h from" in result.stdout
    assert "X_TIER=free allows 17 per 24 h per user" in result.stdout


def _local(moment: datetime) -> list[str]:
    """A moment as `queue` shows it in Berlin: date, time, zone."""
    return format_local(moment, "Europe/Berlin").split()


def test_an_empty_queue_says_so(folder: BotFolder) -> None:
    result = folder.run("queue")
    assert result.returncode == 0 and result.stdout.strip() == "The queue is empty."


def test_cancel_takes_a_post_out_once(folder: BotFolder) -> None:
    folder.run("post", "to cancel", "--at", "2099-12-01 09:00")
    first = folder.run("cancel", "1")
    assert first.returncode == 0, first.stderr
    assert "Canceled post 1 (@alice, was due 2099-12-01 09:00 CET)." in first.stdout
    again = folder.run("cancel", "1")
    assert again.returncode == 1 and "post 1 is already canceled" in again.stderr
    missing = folder.run("cancel", "99")
    assert missing.returncode == 1 and "no post 99" in missing.stderr
    assert folder.store().queued_posts() == []
    assert folder.store().get_post(1).status == CANCELED  # type: ignore[union-attr]


def _finish_some_posts(folder: BotFolder) -> None:
    """Record outcomes as the dispatcher does: a posted post, a posted thread and a failed post."""
    store = folder.store()
    due = utcnow() + timedelta(hours=1)
    posted, thread, failed = store.add_posts([
        Post(id=0, account_id="101", parts=("out",), due_at=due),
        Post(id=0, account_id="101", parts=("one", "two"), due_at=due),
        Post(id=0, account_id="101", parts=("dup",), due_at=due)])
    store.update_post(posted.id, status=POSTED, tweet_ids=("1111",), posted_at=utc(2026, 12, 1, 8, 0))
    store.update_post(thread.id, status=POSTED, tweet_ids=("2221", "2222"), posted_at=utc(2026, 12, 1, 9, 0))
    store.update_post(failed.id, status=FAILED,
                      last_error="X refused it (403): You are not allowed to create a Tweet with duplicate content.")


def test_history_links_to_the_sandbox_timeline_in_sandbox_mode(folder: BotFolder) -> None:
    _finish_some_posts(folder)
    result = folder.run("history")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert lines["1"].split()[1:6] == ["@alice", "2026-12-01", "09:00", "CET", "posted"]
    assert "http://127.0.0.1:8100/alice#post-1111" in lines["1"].split()  # the post itself, as the dashboard links
    assert "http://127.0.0.1:8100/alice#post-2221" in lines["2"].split()  # a thread: its first part
    assert "failed" in lines["3"] and "duplicate content" in lines["3"]
    assert list(lines) == ["3", "2", "1"]  # the most recently finished first


def test_history_links_to_x_with_real_credentials(folder: BotFolder) -> None:
    _finish_some_posts(folder)
    result = folder.run("history", env={"X_CLIENT_ID": "a-real-client"})
    assert result.returncode == 0, result.stderr
    assert "https://x.com/alice/status/1111" in result.stdout
    assert "https://x.com/alice/status/2221" in result.stdout  # a thread links to its first part
