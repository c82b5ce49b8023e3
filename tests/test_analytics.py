"""How posts did (issue 22): the worker's reading plan against the sandbox, over real HTTP.

The worker's own `Reader` runs in this process with the worker's clock kept in step with the
sandbox's (`SandboxClock`), so a test can live through a month in seconds: each post is read at
its ages, what the store says reading cost is what the sandbox's charge counter billed to the
cent, the budget stops reading before it is spent, and a 402 pauses reading but never posting.
"""
from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot import read_spend
from bot.analytics import analytics_spent, engagements, next_day, next_month, reached_age, status_line
from bot.api_keys import create_key
from bot.models import POSTED, Post, to_iso, utcnow
from bot.pricing import dollars
from bot.settings import load_settings
from bot.xclient import XClient
from sandbox.metrics import non_public_metrics, public_metrics
from sandbox.options import SandboxConfig
from web import create_app

from conftest import TWEETBOT
from sandbox_helpers import SandboxControl
from test_posting import Rig
from web_support import Browser

DAY = 86400
HOUR = 3600
IDS = "GET /2/tweets"
TIMELINE = "GET /2/users/:id/tweets"


def analytics_rig(tmp_path: Path, sandbox: SandboxControl, accounts: int = 1, **env: str) -> Rig:
    sandbox.configure(access_token_lifetime=60 * DAY)  # the clock moves by days; refreshes are tested elsewhere
    return Rig(tmp_path, sandbox, accounts=accounts, **env)


def post_now(rig: Rig, *parts: str, account: int = 0) -> Post:
    post = rig.send(rig.queue(*parts, account=account))
    assert post.status == POSTED, post.last_error
    return post


def spent_every_month(rig: Rig, start_seconds: float) -> Decimal:
    """Every kind of read spend the store kept, over each UTC month from the start to now."""
    total, at = Decimal(0), rig.clock() - timedelta(seconds=rig.sandbox.now() - start_seconds)
    while at <= rig.clock():
        total += sum(read_spend.month_spend(rig.store, at).values(), Decimal(0))
        at = next_month(at)
    return total


def test_each_post_is_read_at_its_ages_and_what_reading_cost_is_what_x_billed_to_the_cent(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    """Two accounts, one owning the app, post a post (every third a thread) each day for a month while
    the clock moves in 12-hour steps: after each round every post's reading is for the oldest age it
    reached (1h, 24h, 7d), with the numbers the sandbox's seed gives for that age, and the store's
    month-by-month spend equals the sandbox's charges to the tenth of a cent."""
    rig = analytics_rig(tmp_path, sandbox, accounts=2, ANALYTICS_AGES="1h,24h,7d", ANALYTICS_BUDGET="20",
                        X_APP_OWNER="@poster_1")
    owner = rig.accounts[0]
    assert owner.username == "poster_1"
    sandbox.configure(app_owner=owner.user_id)
    start = sandbox.now()
    ages = rig.worker.settings.analytics_ages
    posts: list[Post] = []
    created = {}
    try:
        for step in range(60):
            if step % 2 == 0:
                for account in range(2):
                    parts = (f"a thread, day {step // 2}", "its second part") if step % 6 == 0 else \
                        (f"post of day {step // 2} by {account}",)
                    posts.append(post_now(rig, *parts, account=account))
                created = {p["id"]: p["created_at_ts"] for p in sandbox.posts()}
            rig.clock.advance(12 * HOUR)
            at = rig.clock()
            rig.worker.analytics.read_due()
            readings = rig.store.readings(p.id for p in posts)
            for post in posts:
                reached = reached_age(post, ages, at)
                assert (readings[post.id].age if post.id in readings else -1) == reached, (step, post.id)
            for post in posts[-4:]:
                check_numbers(readings[post.id].metrics, post, created, readings[post.id].read_at.timestamp())
    finally:
        rig.dispatcher.shutdown()
    billed = sandbox.charges()
    assert set(billed["by_endpoint"]) == {IDS, TIMELINE}  # the owner's own timeline, the other's by id
    assert spent_every_month(rig, start) == Decimal(str(billed["total_usd"]))
    assert all(readings[p.id].age == 2 for p in posts[:20])  # a month on: the first posts are read at 7d


def check_numbers(metrics: dict[str, int], post: Post, created: dict[str, float], read_at: float) -> None:
    """The reading's counts are the seed's for the post's age when read (summed over a thread's parts),
    within the second around the read."""
    seed = SandboxConfig().seed
    for name, value in metrics.items():
        bounds = []
        for slack in (-2.0, 2.0):
            total = 0
            for tweet_id in post.tweet_ids:
                age = read_at + slack - created[tweet_id]
                counts = {**public_metrics(seed, tweet_id, age), **non_public_metrics(seed, tweet_id, age)}
                total += counts[name]
            bounds.append(total)
        assert bounds[0] <= value <= bounds[1], (name, value, bounds)


def test_a_budget_stops_reading_before_it_is_spent_and_nothing_more_is_sent(tmp_path: Path,
                                                                            sandbox: SandboxControl) -> None:
    """$0.05 a month and 100 posts read by id at $0.005: the worker reads the 10 that fit, sends nothing
    after, and says how much was spent and when reading resumes."""
    rig = analytics_rig(tmp_path, sandbox, ANALYTICS_AGES="1h", ANALYTICS_BUDGET="0.05")
    try:
        posts = [post_now(rig, f"one of a hundred, number {n}") for n in range(100)]
        rig.clock.advance(HOUR + 60)
        first = rig.worker.analytics.read_due()
        sent = sandbox.state("request_counts")["request_counts"][IDS]
        rig.clock.advance(600)
        again = rig.worker.analytics.read_due()
    finally:
        rig.dispatcher.shutdown()
    billed = sandbox.charges()
    assert (first.posts_read, first.spent) == (10, Decimal("0.05")) and first.stopped is not None
    assert billed["total_usd"] == 0.05 and analytics_spent(rig.store, rig.clock()) == Decimal("0.05")
    assert (again.requests, sandbox.state("request_counts")["request_counts"][IDS]) == (0, sent)
    assert len(rig.store.readings(p.id for p in posts)) == 10
    line = status_line(rig.worker.settings, rig.store, rig.clock())
    assert "$0.05 of the $0.05 budget" in line
    assert f"resumes {next_month(rig.clock()):%Y-%m-%d}" in line


def test_x_answering_402_pauses_reading_until_the_next_day_and_posting_goes_on(tmp_path: Path,
                                                                               sandbox: SandboxControl) -> None:
    rig = analytics_rig(tmp_path, sandbox, ANALYTICS_AGES="1h", ANALYTICS_BUDGET="5")
    rig.clock.advance((next_day(rig.clock()) - rig.clock()).total_seconds() + HOUR)  # 01:00 UTC: hours to go
    try:
        sandbox.configure(credit_usd=0.01)
        first = [post_now(rig, f"read before the credit ran out {n}") for n in range(3)]
        rig.clock.advance(HOUR + 60)
        assert rig.worker.analytics.read_due().posts_read == 3  # $0.015: the credit is spent now
        later = post_now(rig, "read after the credit ran out")
        rig.clock.advance(HOUR + 60)
        refused = rig.worker.analytics.read_due()
        assert refused.posts_read == 0 and "402" in (refused.stopped or "")
        during = post_now(rig, "posting goes on")
        calls = sandbox.state("request_counts")["request_counts"][IDS]
        rig.clock.advance(HOUR)
        assert rig.worker.analytics.read_due().requests == 0  # paused: nothing is asked
        assert sandbox.state("request_counts")["request_counts"][IDS] == calls
        assert "Paused until" in status_line(rig.worker.settings, rig.store, rig.clock())
        sandbox.configure(credit_usd=None)  # the owner tops up; the pause still ends with the UTC day
        rig.clock.advance(DAY)
        assert rig.worker.analytics.read_due().posts_read == 2  # the one refused, the one posted meanwhile
    finally:
        rig.dispatcher.shutdown()
    every = [*first, later, during]
    assert set(rig.store.readings(p.id for p in every)) == {p.id for p in every}


def test_non_public_metrics_are_asked_only_for_posts_under_30_days_old(tmp_path: Path,
                                                                      sandbox: SandboxControl) -> None:
    rig = analytics_rig(tmp_path, sandbox, ANALYTICS_AGES="1h,31d", ANALYTICS_BUDGET="5")
    try:
        post = post_now(rig, "read young, then old")
        rig.clock.advance(HOUR + 60)
        rig.worker.analytics.read_due()
        young = rig.store.readings([post.id])[post.id].metrics
        rig.clock.advance(31 * DAY)
        rig.worker.analytics.read_due()
        old = rig.store.readings([post.id])[post.id]
    finally:
        rig.dispatcher.shutdown()
    asked = [r["query"]["tweet.fields"].split(",") for r in sandbox.requests(IDS)]
    assert asked == [["public_metrics", "non_public_metrics"], ["public_metrics"]]
    assert "engagements" in young and old.age == 1 and "engagements" not in old.metrics


def shown_in_history(page: str) -> dict[int, tuple[int, ...]]:
    """The dashboard history's figures of each post row that has them: likes, reposts, replies, impressions."""
    shown = {}
    for row in page.split('<tr class="post ')[1:]:
        found = re.search(r'data-post="(\d+)".*?class="metrics" data-likes="(\d+)" data-reposts="(\d+)" '
                          r'data-replies="(\d+)" data-impressions="(\d+)"', row.split("</tr>")[0], re.S)
        if found:
            shown[int(found[1])] = tuple(int(n) for n in found.groups()[1:])
    return shown


def figures(metrics: dict[str, int]) -> tuple[int, ...]:
    return tuple(metrics[name] for name in ("like_count", "retweet_count", "reply_count", "impression_count"))


def test_the_dashboard_the_api_the_cli_and_metrics_show_what_the_store_read(tmp_path: Path,
                                                                            sandbox: SandboxControl) -> None:
    rig = analytics_rig(tmp_path, sandbox, accounts=2, ANALYTICS_AGES="1h", ANALYTICS_BUDGET="5")
    try:
        posts = [post_now(rig, f"how did it do, {n}?", account=n % 2) for n in range(6)]
        posts.append(post_now(rig, "a thread does as well as", "its parts together", account=1))
        rig.clock.advance(HOUR + 60)
        assert rig.worker.analytics.read_due().posts_read == len(posts)
    finally:
        rig.dispatcher.shutdown()
    readings = rig.store.readings(p.id for p in posts)
    app = create_app({"SETTINGS": load_settings(None, rig.env), "TESTING": True, "CLOCK": rig.clock})
    browser = Browser(app)
    browser.sign_in()
    page = browser.get("/").get_data(as_text=True)

    assert shown_in_history(page) == {p.id: figures(readings[p.id].metrics) for p in posts}
    best = sorted(posts, key=lambda p: (engagements(readings[p.id].metrics),
                                        readings[p.id].metrics["impression_count"]), reverse=True)[:5]
    best_rows = r'<tr data-post="(\d+)" data-engagements="(\d+)"'
    assert [(int(i), int(n)) for i, n in re.findall(best_rows, page)] == \
        [(p.id, engagements(readings[p.id].metrics)) for p in best]
    live = browser.get("/fragments/charts").get_data(as_text=True)  # what the page's live refresh swaps in
    assert re.findall(best_rows, live) == re.findall(best_rows, page)
    totals = {handle: (int(i), int(e)) for handle, i, e in re.findall(
        r'data-handle="(@\w+)" data-impressions="(\d+)" data-engagements="(\d+)"', page)}
    assert totals == {a.handle: (sum(readings[p.id].metrics["impression_count"] for p in posts if p.account_id == a.user_id),
                                 sum(engagements(readings[p.id].metrics) for p in posts if p.account_id == a.user_id))
                      for a in rig.accounts}
    calendar = browser.get("/calendar").get_data(as_text=True)
    assert sorted(int(n) for n in re.findall(r'class="metrics" data-likes="(\d+)"', calendar)) == \
        sorted(readings[p.id].metrics["like_count"] for p in posts)
    spent = analytics_spent(rig.store, rig.clock())
    assert spent == len(posts) * Decimal("0.005") + Decimal("0.005")  # the thread's two parts billed each
    assert f"{dollars(spent)} of the $5.00 budget" in page

    key = create_key(rig.store, "reader", ("posts:read",), utcnow())[1]
    thread = posts[-1]
    answer = app.test_client().get(f"/api/v1/posts/{thread.id}", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert (answer.json["metrics"], answer.json["metrics_read_at"]) == \
        (readings[thread.id].metrics, to_iso(readings[thread.id].read_at))

    listed = subprocess.run([TWEETBOT, "history"], cwd=tmp_path, env=rig.env, capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {int(line.split()[0]): line for line in listed.stdout.splitlines()[1:]}
    for post in posts:
        likes, reposts, replies, views = figures(readings[post.id].metrics)
        assert re.search(rf" posted +- +{likes:,} +{reposts:,} +{replies:,} +{views:,} ", rows[post.id]), \
            rows[post.id]

    scraped = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in
               text_string_to_metric_families(browser.get("/metrics").get_data(as_text=True))
               for s in family.samples}
    for account in rig.accounts:
        mine = [readings[p.id].metrics for p in posts if p.account_id == account.user_id]
        for name in ("like_count", "impression_count", "engagements"):
            assert scraped["tweetbot_post_metric", (("account", account.handle), ("metric", name))] == \
                sum(m[name] for m in mine)
    assert scraped["tweetbot_read_spend_dollars", (("kind", "analytics"),)] == float(spent)
    assert scraped["tweetbot_read_budget_dollars", ()] == 5.0


def test_a_post_deleted_at_x_is_read_as_empty_once_and_not_asked_again(tmp_path: Path,
                                                                       sandbox: SandboxControl) -> None:
    rig = analytics_rig(tmp_path, sandbox, ANALYTICS_AGES="1h,24h", ANALYTICS_BUDGET="5")
    try:
        kept, deleted = post_now(rig, "still at X"), post_now(rig, "deleted by its author")
        author = rig.accounts[0].user_id
        XClient(rig.worker.settings).api(rig.worker.tokens.fresh_access_token(author) or "").delete_post(
            deleted.tweet_ids[0])
        rig.clock.advance(HOUR + 60)
        first = rig.worker.analytics.read_due()
        again = rig.worker.analytics.read_due()
    finally:
        rig.dispatcher.shutdown()
    readings = rig.store.readings([kept.id, deleted.id])
    assert (first.requests, first.posts_read, again.requests) == (1, 2, 0)
    assert readings[deleted.id].metrics == {} and readings[deleted.id].age == 0
    assert readings[kept.id].metrics["impression_count"] > 0
    assert sandbox.charges()["posts_billed"] == 1  # X bills the posts it returns


def test_a_post_read_twice_in_one_utc_day_is_paid_once(tmp_path: Path, sandbox: SandboxControl) -> None:
    """Ages of 1 h and 2 h fall in one UTC day (the clock is moved to 01:00 first): X bills the second
    read nothing, and the store's spend says the same."""
    rig = analytics_rig(tmp_path, sandbox, ANALYTICS_AGES="1h,2h", ANALYTICS_BUDGET="5")
    rig.clock.advance((next_day(rig.clock()) - rig.clock()).total_seconds() + HOUR)
    try:
        post = post_now(rig, "read twice today")
        rig.clock.advance(HOUR + 60)
        first = rig.worker.analytics.read_due()
        rig.clock.advance(HOUR)
        second = rig.worker.analytics.read_due()
    finally:
        rig.dispatcher.shutdown()
    assert (first.requests, first.spent, second.requests, second.spent) == (1, Decimal("0.005"), 1, Decimal(0))
    assert rig.store.readings([post.id])[post.id].age == 1
    assert sandbox.charges()["posts_billed"] == 1
    assert analytics_spent(rig.store, rig.clock()) == Decimal("0.005")
