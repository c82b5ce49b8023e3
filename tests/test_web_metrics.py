"""/metrics: Prometheus' text format, read back with prometheus_client's own parser; its numbers agree
with the store; a signed-in session or `Authorization: Bearer <METRICS_TOKEN>` reads it, nothing else.

The account comes through the real consent flow against the sandbox, its refreshes through real
`tweetbot refresh` processes, the posts into the real store; the token test runs gunicorn over HTTP.
"""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bot import read_spend
from bot.accounts import connect
from bot.models import CANCELED, FAILED, POSTED, Post, to_iso, utcnow
from bot.settings import load_settings
from bot.xclient import TokenSet
from web import create_app

from conftest import TWEETBOT
from sandbox_helpers import SandboxControl
from web_support import Browser, gunicorn, make_app, open_store, web_env

TOKEN = "a-scraper-token-of-32-characters"


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels (sorted), as the parser reads it."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


def test_metrics_agree_with_the_store(tmp_path: Path, sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox)  # the app's and the `tweetbot refresh` processes' (one TOKEN_KEY)
    app = create_app({"SETTINGS": load_settings(None, env), "TESTING": True})
    browser = Browser(app)
    browser.sign_in()
    browser.connect("sandbox_alice")
    store = open_store(app.config["TWEETBOT_SETTINGS"])
    alice = store.find_account("sandbox_alice")
    assert alice is not None
    for _ in range(2):  # two real refreshes: two `refreshed` events
        done = subprocess.run([TWEETBOT, "refresh", "@sandbox_alice"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    bob = connect(store, TokenSet(access_token="made-up", refresh_token="unknown-to-x",
                                  expires_at=utcnow() + timedelta(hours=2), scopes=alice.scopes),
                  {"id": "999", "username": "bob", "name": "Bob"})
    refused = subprocess.run([TWEETBOT, "refresh", "@bob"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 1  # X refuses the token: a `needs_reconnect` event
    store.record_event("refresh_failed", alice.user_id, detail="XUnavailable: timed out")  # as TokenKeeper does

    now = utcnow()
    first_due = now + timedelta(minutes=10)
    posts = store.add_posts([Post(id=0, account_id=alice.user_id, parts=(f"post {n}",), due_at=first_due
                                  + timedelta(minutes=n)) for n in range(7)]
                            + [Post(id=0, account_id=bob.user_id, parts=("bob's",), due_at=now + timedelta(days=1))])
    store.update_post(posts[0].id, status=POSTED, tweet_ids=("1",), posted_at=now)
    store.update_post(posts[1].id, status=POSTED, tweet_ids=("2",), posted_at=now)
    store.update_post(posts[2].id, status=FAILED, last_error="X refused it")
    store.update_post(posts[3].id, status=CANCELED)
    store.set_meta("worker_heartbeat", to_iso(now - timedelta(seconds=42)))
    read_spend.record_read(store, now, read_spend.SETTLE, ["1", "2", "3"], owned=False)  # as settling does
    read_spend.record_read(store, now, read_spend.SETTLE, ["3", "4"], owned=False)  # "3": billed today already

    answer = browser.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(answer.get_data(as_text=True))

    queued, finished = store.queued_posts(), store.history(limit=sys.maxsize)
    for handle, user_id in (("@sandbox_alice", alice.user_id), ("@bob", bob.user_id)):
        for status in ("scheduled", "sending", "posted", "failed", "canceled"):
            expected = sum(1 for post in [*queued, *finished] if post.account_id == user_id and post.status == status)
            assert found[("tweetbot_posts", (("account", handle), ("status", status)))] == expected, (handle, status)
    assert found[("tweetbot_posts", (("account", "@sandbox_alice"), ("status", "scheduled")))] == 3
    assert found[("tweetbot_queue_depth", ())] == len(queued) == 4
    due_in = found[("tweetbot_next_post_due_seconds", ())]
    earliest = min(post.due_at for post in queued)
    assert earliest == first_due + timedelta(minutes=4)
    assert abs(due_in - (earliest - utcnow()).total_seconds()) < 10

    def events(kind: str, user_id: str) -> int:
        return sum(1 for event in store.events(limit=sys.maxsize, kind=kind) if event.account_id == user_id)

    assert found[("tweetbot_token_refreshes_total", (("account", "@sandbox_alice"),))] == events(
        "refreshed", alice.user_id) == 2
    assert found[("tweetbot_token_refreshes_total", (("account", "@bob"),))] == events("refreshed", bob.user_id) == 0
    assert found[("tweetbot_token_refresh_failures_total", (("account", "@bob"), ("kind", "refused")))] == events(
        "needs_reconnect", bob.user_id) == 1
    assert found[("tweetbot_token_refresh_failures_total", (("account", "@sandbox_alice"), ("kind", "passing")))] == 1
    assert found[("tweetbot_token_refresh_failures_total", (("account", "@sandbox_alice"), ("kind", "refused")))] == 0
    assert found[("tweetbot_accounts", (("status", "active"),))] == 1
    assert found[("tweetbot_accounts", (("status", "needs_reconnect"),))] == 1
    assert 42 <= found[("tweetbot_worker_heartbeat_age_seconds", ())] < 60
    spent = read_spend.month_spend(store, now)
    assert found[("tweetbot_read_spend_dollars", (("kind", "settle"),))] == float(spent["settle"]) == 0.02
    assert "Reads this month: $0.02 (timeline reads that settled uncertain posts $0.02)." in browser.get(
        "/").get_data(as_text=True)

    store.update_post(posts[4].id, status=POSTED, tweet_ids=("5",), posted_at=utcnow())  # a fresh registry each time
    again = samples(browser.get("/metrics").get_data(as_text=True))
    assert again[("tweetbot_posts", (("account", "@sandbox_alice"), ("status", "posted")))] == 3
    assert again[("tweetbot_queue_depth", ())] == 3


def test_an_empty_store_has_no_next_due_time_and_no_heartbeat(tmp_path: Path, sandbox: SandboxControl) -> None:
    browser = Browser(make_app(tmp_path, sandbox))
    browser.sign_in()
    found = samples(browser.get("/metrics").get_data(as_text=True))
    assert found[("tweetbot_queue_depth", ())] == 0
    names = {name for name, _ in found}
    assert "tweetbot_next_post_due_seconds" not in names and "tweetbot_worker_heartbeat_age_seconds" not in names


def test_ages_and_times_to_come_are_counted_on_the_apps_clock(tmp_path: Path, sandbox: SandboxControl) -> None:
    """The app's clock (`CLOCK`) is the one /metrics counts from, so a test can read exact seconds."""
    moment = datetime(2021, 3, 2, 10, 0, tzinfo=timezone.utc)
    settings = load_settings(None, web_env(tmp_path, sandbox, METRICS_TOKEN=TOKEN))
    app = create_app({"SETTINGS": settings, "TESTING": True, "CLOCK": lambda: moment})
    store = open_store(settings)
    store.add_posts([Post(id=0, account_id="1720000000000000009", parts=("later",),
                          due_at=moment + timedelta(minutes=10))])
    store.set_meta("worker_heartbeat", to_iso(moment - timedelta(seconds=42)))

    answer = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    found = samples(answer.get_data(as_text=True))
    assert found[("tweetbot_next_post_due_seconds", ())] == 600.0
    assert found[("tweetbot_worker_heartbeat_age_seconds", ())] == 42.0


def test_without_sign_in_or_token_metrics_are_refused(tmp_path: Path, sandbox: SandboxControl) -> None:
    client = make_app(tmp_path, sandbox).test_client()
    answer = client.get("/metrics")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/signin")
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})  # no METRICS_TOKEN set
    assert wrong.status_code == 401 and "METRICS_TOKEN is not set" in wrong.get_data(as_text=True)
    assert "tweetbot_" not in wrong.get_data(as_text=True)


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer ", TOKEN])
def test_a_wrong_token_is_refused_with_401(tmp_path: Path, sandbox: SandboxControl, header: str) -> None:
    client = make_app(tmp_path, sandbox, METRICS_TOKEN=TOKEN).test_client()
    answer = client.get("/metrics", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "tweetbot_" not in answer.get_data(as_text=True)


def test_the_token_reads_metrics_over_http_without_sign_in(tmp_path: Path, sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox, METRICS_TOKEN=TOKEN)
    with gunicorn(tmp_path, sandbox, env=env) as server:
        refused = requests.get(server.url + "/metrics", allow_redirects=False, timeout=10)
        assert refused.status_code == 303 and "/signin" in refused.headers["Location"]
        wrong = requests.get(server.url + "/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401
        for _ in range(4):  # either gunicorn worker answers the same
            answer = requests.get(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
            assert answer.status_code == 200, answer.text
            found = samples(answer.text)
            assert found[("tweetbot_queue_depth", ())] == 0
            assert answer.headers["Cache-Control"] == "no-store"
        page = requests.get(server.url + "/", headers={"Authorization": f"Bearer {TOKEN}"}, allow_redirects=False,
                            timeout=10)
        assert page.status_code == 303  # the token opens /metrics only, not the dashboard
