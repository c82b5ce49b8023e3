"""The dashboard's charts (web.charts): their numbers, read from the SVG's data attributes, agree with
what the store holds, counted here independently.

The real app (Flask's test client) on a real store in tmp_path, accounts through the real consent
flow against the sandbox, posts queued through `bot.queue` and finished posts and events written to
the store as the worker writes them.
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask

from bot import queue
from bot.models import FAILED, POSTED, Account, Post, utcnow
from bot.store.file import TinyStore

from sandbox_helpers import SandboxControl
from web_support import Browser, account, make_app, open_store, text

ZONE = "Pacific/Auckland"  # far from UTC: a post at 23:30 UTC falls on the next local day


class Svg(HTMLParser):
    """Every chart on a page: its own data attributes, its days' data attributes, its title and desc."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict[str, object]] = []
        self._in: str | None = None
        self.style_attributes = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if "style" in found:
            self.style_attributes += 1
        if tag == "svg" and "data-chart" in found:
            self.charts.append({**found, "days": [], "ids": set()})
        elif self.charts and tag == "g" and "data-day" in found:
            self.charts[-1]["days"].append(found)  # type: ignore[union-attr]
        elif self.charts and tag == "line" and "data-limit" in found:
            self.charts[-1]["limit-line"] = found["data-limit"]
        if self.charts and tag in ("title", "desc") and "id" in found:
            self.charts[-1]["ids"].add(found["id"])  # type: ignore[union-attr]
            self._in = tag
        else:
            self._in = None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in and self.charts:
            self.charts[-1][self._in] = data


def charts_of(page: str, kind: str) -> list[dict[str, object]]:
    parser = Svg()
    parser.feed(page)
    return [c for c in parser.charts if c["data-chart"] == kind]


def days_of(chart: dict[str, object], *names: str) -> dict[date, tuple[int, ...]]:
    return {date.fromisoformat(g["data-day"]): tuple(int(g[f"data-{n}"]) for n in names)  # type: ignore[index]
            for g in chart["days"]}  # type: ignore[union-attr]


def operator(tmp_path: Path, sandbox: SandboxControl, tier: str = "free") -> tuple[Flask, Browser, Account, Account]:
    app = make_app(tmp_path, sandbox, TIMEZONE=ZONE, X_TIER=tier)
    browser = Browser(app)
    assert browser.sign_in().status_code == 302
    browser.connect("sandbox_alice")
    browser.connect("sandbox_bob")
    settings = app.config["TWEETBOT_SETTINGS"]
    return app, browser, account(settings, "sandbox_alice"), account(settings, "sandbox_bob")


def finished(account_id: str, status: str, at: datetime, parts: int = 1) -> Post:
    """A post as the worker leaves it in the history: posted (with its tweet ids) or failed, at `at`."""
    posted = status == POSTED
    return Post(id=0, account_id=account_id, parts=tuple(f"part {n}" for n in range(parts)), due_at=at - timedelta(minutes=1),
                status=status, posted_at=at if posted else None, finished_at=at,
                tweet_ids=tuple(str(10**18 + n) for n in range(parts)) if posted else (),
                last_error=None if posted else "X refused it (403): duplicate content")


def fill_history(store: TinyStore, alice: Account, bob: Account, now: datetime) -> None:
    """40 days of posts and holds, some right around local midnight, some older than the chart reaches."""
    posts = []
    for n in range(40 * 24 // 5):  # every 5 h, back 40 days
        at = now - timedelta(hours=5 * n, minutes=7)
        who = alice if n % 3 else bob
        posts.append(finished(who.user_id, FAILED if n % 7 == 0 else POSTED, at, parts=1 + n % 2))
    local_midnight = datetime.combine(now.astimezone(ZoneInfo(ZONE)).date() - timedelta(days=3),
                                      datetime.min.time(), ZoneInfo(ZONE))
    posts += [finished(alice.user_id, POSTED, local_midnight - timedelta(minutes=1)),
              finished(alice.user_id, POSTED, local_midnight + timedelta(minutes=1)),
              finished(bob.user_id, FAILED, local_midnight + timedelta(minutes=2))]
    store.add_posts(posts)
    for n in range(25):
        store.record_event("held", (alice if n % 2 else bob).user_id, None,
                           detail="X answered 429; held until the window opens", at=now - timedelta(hours=29 * n))


def independent_outcomes(store: TinyStore, account_id: str | None, first: date) -> Counter[tuple[date, str]]:
    """Per local day: posted and failed posts (at when they went out or failed) and held events, from the store."""
    zone = ZoneInfo(ZONE)
    counted: Counter[tuple[date, str]] = Counter()
    for post in store.history(limit=sys.maxsize):
        if account_id in (None, post.account_id) and post.status in (POSTED, FAILED):
            moment = post.posted_at if post.status == POSTED else post.finished_at
            assert moment is not None
            counted[moment.astimezone(zone).date(), post.status] += 1
    for event in store.events(limit=sys.maxsize, kind="held"):
        if account_id in (None, event.account_id):
            counted[event.at.astimezone(zone).date(), "held"] += 1
    return Counter({key: n for key, n in counted.items() if key[0] >= first})


def test_posts_per_day_agree_with_the_store_for_all_accounts_and_each(tmp_path: Path,
                                                                     sandbox: SandboxControl) -> None:
    app, browser, alice, bob = operator(tmp_path, sandbox)
    store = open_store(app.config["TWEETBOT_SETTINGS"])
    now = utcnow()
    fill_history(store, alice, bob, now)
    today = now.astimezone(ZoneInfo(ZONE)).date()
    first = today - timedelta(days=29)

    for account_id, pick in ((None, ""), (alice.user_id, "sandbox_alice"), (bob.user_id, bob.user_id)):
        page = browser.get(f"/?chart={pick}")  # the filter form sends the username; an id works too
        assert page.status_code == 200
        [chart] = charts_of(page.get_data(as_text=True), "posts")
        assert chart["data-account"] == (account_id or "all")
        shown = days_of(chart, "posted", "failed", "held")
        assert sorted(shown) == [first + timedelta(days=n) for n in range(30)]  # 30 local days, oldest first
        expected = independent_outcomes(store, account_id, first)
        assert {(d, k): n for d, values in shown.items() for k, n in zip(("posted", "failed", "held"), values, strict=True)
                if n} == dict(expected)
        assert sum(expected.values()) > 50 and any(k == "held" for _, k in expected)  # the fill reached the chart
        assert f"{sum(n for (_, k), n in expected.items() if k == 'posted')} posted" in str(chart["desc"])


def test_token_chains_count_refresh_events_per_day_and_show_the_time_left(tmp_path: Path,
                                                                         sandbox: SandboxControl) -> None:
    app, browser, alice, bob = operator(tmp_path, sandbox)
    store = open_store(app.config["TWEETBOT_SETTINGS"])
    now = utcnow()
    for n in range(30):  # every 7 h, back ~9 days: refreshes, passing failures, one refusal
        kind = "refresh_failed" if n % 4 == 1 else "refreshed"
        store.record_event(kind, alice.user_id, detail="XUnavailable: timed out" if kind != "refreshed" else None,
                           at=now - timedelta(hours=7 * n))
    store.record_event("needs_reconnect", bob.user_id, detail="X refused the refresh token", at=now - timedelta(days=2))
    store.record_event("refreshed", bob.user_id, at=now - timedelta(days=8))  # before the chart's week
    store.update_account(alice.user_id, refresh_failures=2, next_refresh_at=now + timedelta(minutes=4),
                         expires_at=now + timedelta(minutes=20))
    store.update_account(bob.user_id, status="needs_reconnect")

    page = browser.get("/").get_data(as_text=True)
    charts = {c["data-account"]: c for c in charts_of(page, "tokens")}
    assert set(charts) == {alice.user_id, bob.user_id}
    zone = ZoneInfo(ZONE)
    today = now.astimezone(zone).date()
    week = [today - timedelta(days=6 - n) for n in range(7)]
    kinds = {"refreshed": 0, "refresh_failed": 1, "needs_reconnect": 2}
    for who in (alice, bob):
        expected = {day: [0, 0, 0] for day in week}
        for event in store.events(limit=sys.maxsize, account_id=who.user_id):
            day = event.at.astimezone(zone).date()
            if event.kind in kinds and day in expected:
                expected[day][kinds[event.kind]] += 1
        shown = days_of(charts[who.user_id], "refreshes", "failures", "refused")
        assert shown == {day: tuple(values) for day, values in expected.items()}
    assert sum(sum(v) for v in days_of(charts[alice.user_id], "refreshes", "failures", "refused").values()) >= 20

    mine = charts[alice.user_id]
    fresh = store.get_account(alice.user_id)
    assert fresh is not None and fresh.expires_at is not None
    assert abs(int(str(mine["data-expires-in"])) - (fresh.expires_at - now).total_seconds()) < 120
    assert mine["data-refresh-failures"] == "2" and 0 < int(str(mine["data-retry-in"])) <= 240
    assert "2 failed refreshes in a row" in str(mine["desc"]) and "next try in" in str(mine["desc"])
    assert charts[bob.user_id]["data-status"] == "needs_reconnect"
    assert "reconnect it" in str(charts[bob.user_id]["desc"])


def test_the_next_seven_days_count_each_part_against_the_tiers_daily_limit(tmp_path: Path,
                                                                           sandbox: SandboxControl) -> None:
    app, browser, alice, bob = operator(tmp_path, sandbox, tier="free")  # 17 a day per user and per app
    store = open_store(app.config["TWEETBOT_SETTINGS"])
    zone = ZoneInfo(ZONE)
    now = utcnow()
    today = now.astimezone(zone).date()
    at_noon = [datetime.combine(today + timedelta(days=n), datetime.min.time(), zone) + timedelta(hours=12)
               for n in range(9)]
    for n in range(1, 9):  # tomorrow to 8 days ahead, one more post each day; day 3 crowded
        for k in range(n + {3: 15, 4: 13}.get(n, 0)):  # day 3: 18 tweets, day 4: exactly 17
            who = alice if k % 2 else bob
            queue.queue_post(store, who.user_id, [f"day {n} post {k}"], at_noon[n] + timedelta(minutes=k))
    thread = queue.queue_post(store, alice.user_id, ["one", "two", "three"], at_noon[2])  # three tweets
    canceled = queue.queue_post(store, alice.user_id, ["gone"], at_noon[2] + timedelta(hours=1))
    queue.cancel(store, canceled.id)
    assert len(thread.parts) == 3

    week = [today + timedelta(days=n) for n in range(7)]
    for account_id, scope in ((None, "app"), (alice.user_id, "user")):
        page = browser.get("/" if account_id is None else "/?chart=sandbox_alice").get_data(as_text=True)
        [chart] = charts_of(page, "ahead")
        assert chart["data-tier"] == "free" and chart["data-scope"] == scope and chart["data-limit"] == "17"
        assert chart.get("limit-line") == "17"  # the limit is drawn as a line
        expected = Counter({day: 0 for day in week})
        for post in store.queued_posts(account_id):
            day = max(post.due_at, now).astimezone(zone).date()
            if day in expected:
                expected[day] += len(post.parts)
        shown = days_of(chart, "due")
        assert shown == {day: (n,) for day, n in expected.items()}
        over = {date.fromisoformat(str(g["data-day"])) for g in chart["days"]  # type: ignore[union-attr]
                if g.get("data-over") == "true"}
        assert over == {day for day, n in expected.items() if n > 17}
    assert over == set()  # alice alone stays under 17 a day
    [everyone] = charts_of(browser.get("/").get_data(as_text=True), "ahead")
    assert {date.fromisoformat(str(g["data-day"])) for g in everyone["days"]  # type: ignore[union-attr]
            if g.get("data-over") == "true"} == {today + timedelta(days=3)}
    assert "1 day over it" in str(everyone["desc"])


def test_every_chart_is_labelled_and_styled_without_inline_style(tmp_path: Path, sandbox: SandboxControl) -> None:
    app, browser, alice, bob = operator(tmp_path, sandbox)
    answer = browser.get("/")
    page = answer.get_data(as_text=True)
    parser = Svg()
    parser.feed(page)
    assert {c["data-chart"] for c in parser.charts} == {"posts", "ahead", "tokens"}
    assert len(parser.charts) == 4  # posts, the week ahead, a token chain per account
    for chart in parser.charts:
        assert chart["role"] == "img"
        labelled_by = str(chart["aria-labelledby"]).split()
        assert set(labelled_by) == chart["ids"] and len(labelled_by) == 2
        assert chart.get("title") and chart.get("desc")
    assert parser.style_attributes == 0
    assert "style-src 'self'" in answer.headers["Content-Security-Policy"]
    assert re.search(r"<title>[A-Z][a-z]{2} \d+ [A-Z][a-z]{2}: 0 posted, 0 failed, 0 held</title>", page)
    shown = text(answer)
    assert "Posts per day, last 30 days, all accounts" in shown and "@sandbox_alice: token chain" in shown


def test_the_token_gauge_is_scaled_to_the_life_given_and_never_the_colour_of_a_failure(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    """Sandbox tokens that live 11 min fill the gauge at 11 min, not at X's 2 h; green while the worker has
    no reason to refresh (beyond REFRESH_MARGIN), blue once a refresh is due; never yellow, the legend's
    "failed, backed off"; the words count as English does."""
    app, browser, alice, bob = operator(tmp_path, sandbox)
    settings = app.config["TWEETBOT_SETTINGS"]
    store = open_store(settings)
    now = utcnow()
    store.update_account(alice.user_id, refreshed_at=now - timedelta(minutes=2), expires_at=now + timedelta(minutes=9))
    store.update_account(bob.user_id, refreshed_at=now - timedelta(minutes=10),
                         expires_at=now + timedelta(minutes=110))
    store.record_event("refreshed", bob.user_id, at=now - timedelta(minutes=10))
    queue.queue_post(store, alice.user_id, ["just one"], now + timedelta(days=1))
    page = browser.get("/?chart=sandbox_alice").get_data(as_text=True)
    gauges = {who: re.search(rf'id="chart-tokens-{who}".*?gauge-fill (\w+)".*?>([^<]+)</text>', page, re.S)
              for who in (alice.user_id, bob.user_id)}
    assert {who: (g[1], g[2]) for who, g in gauges.items() if g} == {alice.user_id: ("due", "11 min"),
                                                                     bob.user_id: ("ok", "2 h")}
    assert settings.refresh_margin == 600  # alice's 9 min left are within it, bob's 110 min are not
    css = (Path(__file__).resolve().parents[1] / "web" / "static" / "style.css").read_text()
    fills = dict(re.findall(r"svg\.chart \.(gauge-fill\.\w+|bar\.failures)[^{]*\{ fill: ([^;]+);", css))
    assert fills["gauge-fill.due"] != fills["bar.failures"] and fills["gauge-fill.ok"] != fills["bar.failures"]
    assert "gauge-fill low" not in page and "(of 2 h)" not in page
    [bob_chart] = [c for c in charts_of(page, "tokens") if c["data-account"] == bob.user_id]
    assert str(bob_chart["desc"]).startswith("1 refresh, ")
    [ahead] = charts_of(page, "ahead")
    assert str(ahead["desc"]).startswith("1 tweet due (each part of a thread counts")
