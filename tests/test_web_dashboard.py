"""The dashboard: connecting, token health, Reconnect and Disconnect, compose, queue and history.

The real app (Flask's test client) with a real store in tmp_path, against the sandbox
process over HTTP.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask

from bot.models import ACTIVE, DISCONNECTED, NEEDS_RECONNECT, POSTED, SCHEDULED, Account, Post, utcnow
from bot.settings import DEFAULT_SCOPES
from web import create_app
from xtext import weighted_length

from sandbox_helpers import SandboxControl
from web_support import Browser, account, app, browser, make_app, open_store, store_files, text, web_settings  # noqa: F401 (shared fixtures, used by name)


def berlin_operator_with_alice(tmp_path: Path, sandbox: SandboxControl) -> tuple[Flask, Browser, Account]:
    """An operator in Europe/Berlin, signed in, with @sandbox_alice connected."""
    app = make_app(tmp_path, sandbox, TIMEZONE="Europe/Berlin")
    browser = Browser(app)
    browser.sign_in()
    browser.connect("sandbox_alice")
    return app, browser, account(app.config["TWEETBOT_SETTINGS"], "sandbox_alice")


def row(page: str, handle: str) -> str:
    """The accounts table's row of `handle`."""
    found = re.search(rf'<tr class="account [^"]*" data-account="{handle}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {handle}"
    return found.group(1)


def tomorrow(hour: int = 9) -> str:
    return (utcnow() + timedelta(days=1)).strftime(f"%Y-%m-%dT{hour:02d}:00")


def test_connect_lands_on_the_dashboard_with_the_account_active(sandbox: SandboxControl, app: Flask,
                                                                browser: Browser) -> None:
    page = text(browser.connect("sandbox_bob"))

    assert "Connected @sandbox_bob" in page
    cells = row(page, "@sandbox_bob")
    assert "active" in cells and "Bob Sandbox" in cells
    assert re.search(r"expires in (1 h 5\d min|2 h) ", cells), cells
    assert "just now" in cells and "Disconnect" in cells and "Reconnect" not in cells
    settings = app.config["TWEETBOT_SETTINGS"]
    bob = account(settings, "sandbox_bob")
    assert bob.user_id == sandbox.user("sandbox_bob")["id"]
    assert bob.status == ACTIVE and bob.refresh_token and bob.access_token
    assert bob.scopes == DEFAULT_SCOPES
    assert [e.kind for e in open_store(settings).events(account_id=bob.user_id)] == ["connected"]
    with browser.client.session_transaction() as session:
        assert "oauth_flow" not in session


def test_reconnect_replaces_the_tokens_and_clears_the_failures(app: Flask, browser: Browser) -> None:
    settings = app.config["TWEETBOT_SETTINGS"]
    browser.connect("sandbox_alice")
    first = account(settings, "sandbox_alice")
    open_store(settings).update_account(first.user_id, status=NEEDS_RECONNECT, refresh_failures=4,
                                        last_error="X refused the token: Value passed for the token was invalid.")
    page = text(browser.get("/"))
    cells = row(page, "@sandbox_alice")
    assert "needs reconnecting" in cells and "Reconnect" in cells and "Value passed for the token" in cells
    assert '<tr class="account needs_reconnect"' in page

    page = text(browser.connect("sandbox_alice"))

    again = account(settings, "sandbox_alice")
    assert (again.status, again.refresh_failures, again.last_error) == (ACTIVE, 0, None)
    assert again.refresh_token != first.refresh_token and again.access_token != first.access_token
    assert "Reconnect" not in row(page, "@sandbox_alice")
    kinds = [e.kind for e in open_store(settings).events(account_id=again.user_id)]
    assert kinds == ["reconnected", "connected"]


def test_disconnect_revokes_at_x_and_keeps_the_queue_held(sandbox: SandboxControl, app: Flask,
                                                          browser: Browser) -> None:
    settings = app.config["TWEETBOT_SETTINGS"]
    browser.connect("sandbox_alice")
    alice = account(settings, "sandbox_alice")
    browser.post("/posts", {"account": alice.user_id, "part": "held after disconnect", "due_at": tomorrow()})

    answer = browser.post(f"/accounts/{alice.user_id}/disconnect")
    assert answer.status_code == 302
    page = text(browser.get("/"))

    assert "Disconnected @sandbox_alice: its tokens are revoked at X and deleted here." in page
    gone = account(settings, "sandbox_alice")
    assert (gone.status, gone.access_token, gone.refresh_token) == (DISCONNECTED, None, None)
    chains = sandbox.state("chains")["chains"]
    assert [(c["username"], c["status"], c["revoked_reason"]) for c in chains] == [
        ("sandbox_alice", "revoked", "revoke_endpoint")]
    cells = row(page, "@sandbox_alice")
    assert "disconnected" in cells and "Reconnect" in cells and "Disconnect</button>" not in cells
    assert "held after disconnect" in page and "is disconnected: its posts are held" in page
    assert '<option value="' + alice.user_id not in page  # no composing for a disconnected account


def test_compose_queues_a_post_in_the_operators_time_zone(tmp_path: Path, sandbox: SandboxControl) -> None:
    app, browser, alice = berlin_operator_with_alice(tmp_path, sandbox)

    answer = browser.post("/posts", {"account": alice.user_id, "part": "Guten Morgen", "due_at": "2031-01-15T09:00"})
    assert answer.status_code == 303
    page = text(browser.get("/"))

    [post] = open_store(app.config["TWEETBOT_SETTINGS"]).queued_posts()
    assert post.due_at == datetime(2031, 1, 15, 8, 0, tzinfo=timezone.utc)
    assert (post.parts, post.status, post.source, post.account_id) == (("Guten Morgen",), SCHEDULED, "web", alice.user_id)
    assert "Queued a post for 2031-01-15 09:00 CET." in page
    assert "Time (Europe/Berlin)" in page
    queue = page.split('id="queue"')[1].split('id="history"')[0]
    assert "Guten Morgen" in queue and "2031-01-15 09:00 CET" in queue and "@sandbox_alice" in queue


def test_the_pages_tell_the_time_by_the_apps_one_clock(tmp_path: Path, sandbox: SandboxControl) -> None:
    """Every page reads the time from the app's clock (`CLOCK`), never the wall clock: the clock line and its
    fragment, the compose form's suggested time, the calendar's today, and a post queued for now."""
    moment = datetime(2021, 3, 2, 10, 0, tzinfo=timezone.utc)  # long past: the wall clock would be years off
    app = create_app({"SETTINGS": web_settings(tmp_path, sandbox, TIMEZONE="Europe/Berlin"), "TESTING": True,
                      "CLOCK": lambda: moment})
    browser = Browser(app)
    browser.sign_in()
    browser.connect("sandbox_alice")
    alice = account(app.config["TWEETBOT_SETTINGS"], "sandbox_alice")

    page = text(browser.get("/"))
    assert "it is now 2021-03-02 11:00 CET" in page and 'data-suggested-due="2021-03-02T12:00"' in page
    assert "it is now 2021-03-02 11:00 CET" in text(browser.get("/fragments/clock"))
    assert "today, Tue 02 Mar" in text(browser.get("/calendar"))

    answer = browser.post("/posts", {"account": alice.user_id, "part": "on the app's clock", "when": "now"})
    assert answer.status_code == 303, text(answer)
    [post] = open_store(app.config["TWEETBOT_SETTINGS"]).queued_posts()
    assert post.due_at == moment


def test_a_token_s_expiry_is_told_by_the_apps_clock_too(tmp_path: Path, sandbox: SandboxControl) -> None:
    """The accounts panel's "expires in …" counts from the app's clock, as its clock line does."""
    moments = [datetime.now(timezone.utc)]
    app = create_app({"SETTINGS": web_settings(tmp_path, sandbox), "TESTING": True, "CLOCK": lambda: moments[-1]})
    browser = Browser(app)
    browser.sign_in()
    browser.connect("sandbox_alice")
    alice = account(app.config["TWEETBOT_SETTINGS"], "sandbox_alice")
    assert alice.expires_at is not None
    moments.append(alice.expires_at - timedelta(minutes=30))
    assert "expires in 30 min" in text(browser.get("/"))
    moments.append(alice.expires_at + timedelta(minutes=5))
    assert "expired 5 min ago" in text(browser.get("/"))


def test_compose_queues_a_thread_and_ignores_empty_parts(app: Flask, browser: Browser) -> None:
    browser.connect("sandbox_alice")
    alice = account(app.config["TWEETBOT_SETTINGS"], "sandbox_alice")

    answer = browser.post("/posts", {"account": alice.user_id, "part": ["one\r\nline two", "", "three"],
                                     "due_at": tomorrow()})

    assert answer.status_code == 303
    [post] = open_store(app.config["TWEETBOT_SETTINGS"]).queued_posts()
    assert post.parts == ("one\nline two", "three")
    assert "thread of 2" in text(browser.get("/"))


@pytest.mark.parametrize(("parts", "due", "reason"), [
    (["x" * 281], None, "the post is too long or invalid: 281 of 280 weighted characters (1 too many)"),
    (["fine", "語" * 141], None, "part 2 of the thread is too long or invalid: 282 of 280 weighted characters"),
    (["   ", ""], None, "the post is empty"),
    (["fine"], "2001-01-01T09:00", "is in the past"),
    (["fine"], "2031-13-01T09:00", "not a valid date and time"),
    (["fine"], "", "no time given"),
])
def test_compose_refuses_with_the_reason_and_keeps_the_text(tmp_path: Path, app: Flask, browser: Browser,
                                                             parts: list[str], due: str | None, reason: str) -> None:
    browser.connect("sandbox_alice")
    alice = account(app.config["TWEETBOT_SETTINGS"], "sandbox_alice")
    before = store_files(tmp_path)

    answer = browser.post("/posts", {"account": alice.user_id, "part": parts,
                                     "due_at": tomorrow() if due is None else due})

    assert answer.status_code == 400
    page = text(answer)
    assert reason in page
    for part in parts:
        if part.strip():
            assert f">{part}</textarea>" in page  # nothing typed is lost
    assert store_files(tmp_path) == before


def test_a_time_the_clocks_skip_is_refused(tmp_path: Path, sandbox: SandboxControl) -> None:
    app, browser, alice = berlin_operator_with_alice(tmp_path, sandbox)

    answer = browser.post("/posts", {"account": alice.user_id, "part": "spring", "due_at": "2031-03-30T02:30"})

    assert answer.status_code == 400
    assert "2031-03-30 02:30 does not exist in Europe/Berlin" in text(answer)


def test_cancel_takes_a_post_out_of_the_queue(app: Flask, browser: Browser) -> None:
    browser.connect("sandbox_alice")
    alice = account(app.config["TWEETBOT_SETTINGS"], "sandbox_alice")
    browser.post("/posts", {"account": alice.user_id, "part": "changed my mind", "due_at": tomorrow()})
    [post] = open_store(app.config["TWEETBOT_SETTINGS"]).queued_posts()

    assert browser.post(f"/posts/{post.id}/cancel").status_code == 303
    page = text(browser.get("/"))
    again = browser.post(f"/posts/{post.id}/cancel")
    page_again = text(browser.get("/"))

    assert open_store(app.config["TWEETBOT_SETTINGS"]).queued_posts() == []
    assert f"Canceled post {post.id}." in page
    history = page.split('id="history"')[1]
    assert "changed my mind" in history and "canceled" in history
    canceled = history.split(f'data-post="{post.id}"')[1].split("</tr>")[0]
    assert "was due " in canceled and ", in " not in canceled  # it never went out: no "in 2 days"
    assert again.status_code == 303 and f"Not canceled: post {post.id} is already canceled." in page_again


def test_the_queue_shows_50_a_page(app: Flask, browser: Browser) -> None:
    browser.connect("sandbox_alice")
    alice = account(app.config["TWEETBOT_SETTINGS"], "sandbox_alice")
    start = utcnow() + timedelta(days=1)
    open_store(app.config["TWEETBOT_SETTINGS"]).add_posts([
        Post(id=0, account_id=alice.user_id, parts=(f"post number {n:02d}",), due_at=start + timedelta(minutes=n))
        for n in range(60)])

    page = text(browser.get("/"))

    queue = page.split('id="queue"')[1].split('id="history"')[0]
    assert queue.count('<tr class="post ') == 50
    assert "post number 00" in queue and "post number 49" in queue and "post number 50" not in queue
    assert "page 1 of 2 (60 queued)" in queue and 'href="/?queue_page=2#queue"' in queue
    second = text(browser.get("/?queue_page=2")).split('id="queue"')[1].split('id="history"')[0]
    assert second.count('<tr class="post ') == 10
    assert "post number 50" in second and "post number 59" in second and "post number 49" not in second
    assert text(browser.get("/fragments/queue?page=2")).count('<tr class="post ') == 10


def test_history_links_to_the_sandbox_timeline(app: Flask, browser: Browser) -> None:
    browser.connect("sandbox_alice")
    settings = app.config["TWEETBOT_SETTINGS"]
    alice = account(settings, "sandbox_alice")
    open_store(settings).add_posts([Post(id=0, account_id=alice.user_id, parts=("went out",), due_at=utcnow(),
                                         status=POSTED, tweet_ids=("1860000000000000001",), posted_at=utcnow())])

    page = text(browser.get("/"))

    assert f'href="{settings.api_base}/sandbox_alice#post-1860000000000000001"' in page


def test_history_links_to_x_outside_the_sandbox(tmp_path: Path, sandbox: SandboxControl) -> None:
    app = make_app(tmp_path, sandbox, X_CLIENT_ID="a-real-client-id", X_CLIENT_SECRET="a-real-secret")
    settings = app.config["TWEETBOT_SETTINGS"]
    assert not settings.sandbox
    repo = open_store(settings)
    repo.save_account(Account(user_id="1720000000000000009", username="someone", status=ACTIVE))
    repo.add_posts([Post(id=0, account_id="1720000000000000009", parts=("on x",), due_at=utcnow(),
                         status=POSTED, tweet_ids=("1860000000000000002",), posted_at=utcnow())])
    browser = Browser(app)
    browser.sign_in()

    page = text(browser.get("/"))

    assert 'href="https://x.com/someone/status/1860000000000000002"' in page
    assert "Sandbox mode" not in page


def test_the_counter_rules_come_from_bot_text(browser: Browser) -> None:
    rules = browser.client.get("/text-rules.json").get_json()

    assert rules["config"]["maxWeightedTweetLength"] == 280 and rules["config"]["transformedURLLength"] == 23
    assert {"com", "co", "jp", "рф", "みんな"} <= set(rules["tlds"])
    assert weighted_length("see example.com") == 4 + 23  # the rule the list feeds


def test_disconnect_asks_first_and_revokes_only_when_confirmed(sandbox: SandboxControl, app: Flask,
                                                               browser: Browser) -> None:
    page = text(browser.connect("sandbox_bob"))
    bob = account(app.config["TWEETBOT_SETTINGS"], "sandbox_bob")
    cells = row(page, "@sandbox_bob")
    assert f'href="/accounts/{bob.user_id}/disconnect"' in cells  # a link to the question, not a POST
    assert f'action="/accounts/{bob.user_id}/disconnect"' not in cells

    question = text(browser.get(f"/accounts/{bob.user_id}/disconnect"))

    assert "Disconnect @sandbox_bob?" in question and "This revokes @sandbox_bob's tokens at X" in question
    assert f'<form method="post" action="/accounts/{bob.user_id}/disconnect">' in question
    assert account(app.config["TWEETBOT_SETTINGS"], "sandbox_bob").status == ACTIVE  # asking changed nothing
    assert [c["status"] for c in sandbox.state("chains")["chains"] if c["username"] == "sandbox_bob"] == ["active"]

    assert browser.post(f"/accounts/{bob.user_id}/disconnect").status_code == 302
    assert account(app.config["TWEETBOT_SETTINGS"], "sandbox_bob").status == DISCONNECTED
    assert [c["status"] for c in sandbox.state("chains")["chains"] if c["username"] == "sandbox_bob"] == ["revoked"]
    after = row(text(browser.get("/")), "@sandbox_bob")
    assert "none: disconnected, so nothing is refreshed" in after and "just now" not in after
    assert "Disconnect" not in after


def test_cancel_asks_first_and_cancels_only_when_confirmed(app: Flask, browser: Browser) -> None:
    browser.connect("sandbox_alice")
    settings = app.config["TWEETBOT_SETTINGS"]
    alice = account(settings, "sandbox_alice")
    [post] = open_store(settings).add_posts([Post(id=0, account_id=alice.user_id, parts=("maybe not", "two"),
                                                  due_at=utcnow() + timedelta(hours=3))])
    assert f'href="/posts/{post.id}/cancel"' in text(browser.get("/"))

    question = text(browser.get(f"/posts/{post.id}/cancel"))

    assert f"Cancel post {post.id}?" in question and "“maybe not”" in question and "a thread of 2 parts" in question
    assert re.search(r"due today \d\d:\d\d UTC, in (2 h 5\d min|3 h)|due tomorrow \d\d:\d\d UTC, in", question)
    assert open_store(settings).get_post(post.id).status == SCHEDULED
    assert browser.post(f"/posts/{post.id}/cancel").status_code == 303
    assert open_store(settings).history(1)[0].status == "canceled"
    gone = browser.get(f"/posts/{post.id}/cancel")
    assert gone.status_code == 303 and f"post {post.id} is already canceled" in text(browser.get("/"))


def test_the_sandbox_empty_state_names_the_sandbox_consent_page(browser: Browser) -> None:
    page = text(browser.get("/"))
    assert "the local sandbox's consent page opens" in page and "sign in at X" not in page
