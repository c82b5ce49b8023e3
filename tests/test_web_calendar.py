"""The calendar (`/calendar`, `/fragments/calendar`): this week and the next in the operator's zone.

The real app and store, the sandbox process over HTTP. What the calendar shows is
counted back from the store: queued posts at their times, each account's free slots
as boxes that prefill the compose form, finished posts with their links.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from itertools import islice, takewhile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from bot.models import FAILED, POSTED, Post, utcnow
from bot.schedules import load_slots, parse_slots, save_slots

from sandbox_helpers import SandboxControl
from web_support import Browser, account, make_app, open_store, text


def berlin(tmp_path: Path, sandbox: SandboxControl) -> tuple[Browser, str, str]:
    app = make_app(tmp_path, sandbox, TIMEZONE="Europe/Berlin")
    browser = Browser(app)
    browser.sign_in()
    browser.connect("sandbox_alice")
    browser.connect("sandbox_bob")
    settings = app.config["TWEETBOT_SETTINGS"]
    return browser, account(settings, "sandbox_alice").user_id, account(settings, "sandbox_bob").user_id


def window() -> tuple[datetime, datetime]:
    zone = ZoneInfo("Europe/Berlin")
    today = utcnow().astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())
    start = datetime.combine(monday, datetime.min.time(), zone)
    return start, start + timedelta(days=14)


def items(page: str, kind: str) -> list[str]:
    return re.findall(rf'<li class="item {kind}"( data-post="\d+")?', page)


def test_the_calendar_shows_queued_posts_free_slots_and_finished_posts_with_links(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    browser, alice, bob = berlin(tmp_path, sandbox)
    settings = browser.app.config["TWEETBOT_SETTINGS"]
    store = open_store(settings)
    save_slots(store, alice, parse_slots("daily 09:00, 17:30", "Europe/Berlin"))
    now = utcnow()
    schedule = load_slots(store, alice)
    assert schedule is not None
    slot_times = list(islice(schedule.times_after(now), 3))
    queued = store.add_posts([
        Post(id=0, account_id=alice, parts=("in the first slot",), due_at=slot_times[0]),
        Post(id=0, account_id=bob, parts=("bob's, next week",), due_at=now + timedelta(days=7)),
        Post(id=0, account_id=bob, parts=("beyond the fortnight",), due_at=now + timedelta(days=15))])
    done = store.add_posts([
        Post(id=0, account_id=alice, parts=("went out",), due_at=now - timedelta(minutes=5), status=POSTED,
             tweet_ids=("1860000000000000001",), posted_at=now - timedelta(minutes=5)),
        Post(id=0, account_id=bob, parts=("did not",), due_at=now - timedelta(minutes=3), status=FAILED,
             last_error="X said no")])

    page = text(browser.get("/calendar"))

    start, end = window()
    shown_ids = [int(n) for n in re.findall(r'<li class="item [a-z]+" data-post="(\d+)"', page)]
    expected = [p.id for p in store.queued_posts() if start <= p.due_at < end] + [
        p.id for p in done if start <= (p.posted_at or p.due_at) < end]
    assert sorted(shown_ids) == sorted(expected)
    assert queued[2].id not in shown_ids
    free = [m for m in takewhile(lambda m: m < end, schedule.times_after(now)) if m != slot_times[0]]
    assert len(items(page, "slot")) == len(free)  # every free slot of alice's, none of the taken one; bob has none
    assert f'href="{settings.api_base}/sandbox_alice#post-1860000000000000001"' in page
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", page)

    fill = re.search(r'<a href="([^"]+)" class="slot-box"', page)
    assert fill
    query = parse_qs(urlsplit(fill.group(1).replace("&amp;", "&")).query)
    first_free = free[0].astimezone(ZoneInfo("Europe/Berlin"))
    assert query["account"] == [alice] and query["at"] == [first_free.strftime("%Y-%m-%dT%H:%M")]
    compose = text(browser.get(fill.group(1).replace("&amp;", "&")))
    assert f'value="{first_free:%Y-%m-%dT%H:%M}"' in compose and f'<option value="{alice}" selected>' in compose
    assert 'name="back" value="/calendar"' in compose
    answer = browser.post("/posts", {"account": alice, "part": "filled from the calendar", "when": "at",
                                     "due_at": first_free.strftime("%Y-%m-%dT%H:%M"), "back": "/calendar"},
                          content_type="multipart/form-data")
    assert answer.status_code == 303 and answer.headers["Location"] == "/calendar"
    after = text(browser.get("/calendar"))
    assert len(items(after, "slot")) == len(free) - 1 and "filled from the calendar" in after

    only_bob = text(browser.get(f"/calendar?account={bob}"))
    assert "bob&#39;s, next week" in only_bob or "bob's, next week" in only_bob
    assert "in the first slot" not in only_bob and items(only_bob, "slot") == []
    fragment = browser.get(f"/fragments/calendar?account={bob}")
    assert fragment.headers["X-Fragment"] == "1" and "bob's, next week" in text(fragment)


def test_a_back_path_elsewhere_is_ignored(tmp_path: Path, sandbox: SandboxControl) -> None:
    browser, alice, _ = berlin(tmp_path, sandbox)
    due = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    for back in ("//evil.example", "https://evil.example/calendar", "/calendar\n", "/signin"):
        answer = browser.post("/posts", {"account": alice, "part": f"back {back!r}", "due_at": due, "back": back},
                              content_type="multipart/form-data")
        assert answer.status_code == 303 and answer.headers["Location"] == "/", back
