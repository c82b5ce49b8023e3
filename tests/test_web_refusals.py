"""Every refusal of the web app leaves the store exactly as it was.

Each test brings the store to some state, takes its files' bytes, makes the request
that must be refused, checks the answer says why, and compares the files again. The
app is the real one (Flask's test client, real store in tmp_path); X is the sandbox
process, over HTTP.
"""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask, url_for

from bot.models import ACTIVE, utcnow
from web import auth

from sandbox_helpers import SandboxControl, drive_consent, query_of
from web_support import PASSWORD, Browser, account, app, browser, make_app, open_store, path_of, store_files, text  # noqa: F401 (shared fixtures, used by name)


def code_events(sandbox: SandboxControl, username: str) -> list[dict]:
    """Token chains the sandbox issued to `username` through a redeemed code."""
    return [e for e in sandbox.token_events("issued") if e["username"] == username and e["via"] == "code"]


@pytest.mark.parametrize("tamper", ["forged", "absent"])
def test_a_forged_or_absent_state_is_refused(tmp_path: Path, sandbox: SandboxControl, browser: Browser,
                                             tamper: str) -> None:
    browser.connect("sandbox_alice")
    callback = browser.consent("sandbox_bob")
    if tamper == "forged":
        callback = re.sub(r"state=[^&]+", "state=" + "f" * 30, callback)
    else:
        callback = re.sub(r"[?&]state=[^&]+", "", callback).replace("/oauth/callback&", "/oauth/callback?")
    assert "code=" in callback
    before = store_files(tmp_path)

    answer = browser.get(callback)

    assert answer.status_code == 400
    assert "does not match the one this browser started with" in text(answer)
    assert store_files(tmp_path) == before
    assert code_events(sandbox, "sandbox_bob") == []  # the code was never even tried


def test_a_callback_in_a_browser_that_started_no_flow_is_refused(tmp_path: Path, sandbox: SandboxControl,
                                                                  app: Flask, browser: Browser) -> None:
    browser.connect("sandbox_alice")
    callback = browser.consent("sandbox_bob")  # bob's consent was started by `browser`
    other = Browser(app)
    other.sign_in()
    stranger = Browser(app)  # not even signed in
    before = store_files(tmp_path)

    for client in (other, stranger):
        answer = client.get(callback)
        assert answer.status_code == 400
        assert "This browser has no consent flow in progress" in text(answer)

    assert store_files(tmp_path) == before
    assert code_events(sandbox, "sandbox_bob") == []


def test_a_replayed_callback_is_refused(tmp_path: Path, sandbox: SandboxControl, browser: Browser) -> None:
    authorize = browser.start_connect()
    cookie_with_the_flow = browser.cookie()
    callback = path_of(drive_consent(authorize, "sandbox_alice"))
    assert browser.get(callback).status_code == 302
    assert account(browser.app.config["TWEETBOT_SETTINGS"], "sandbox_alice").status == ACTIVE
    before = store_files(tmp_path)

    replay_same_session = browser.get(callback)  # the flow ended with the first answer
    assert replay_same_session.status_code == 400
    assert "no consent flow in progress" in text(replay_same_session)

    assert cookie_with_the_flow is not None
    browser.set_cookie(cookie_with_the_flow)  # a copy of the cookie from before: state matches, code is spent
    replay_old_cookie = browser.get(callback)
    assert replay_old_cookie.status_code == 400
    assert "already used, or it expired" in text(replay_old_cookie)

    assert store_files(tmp_path) == before
    assert len(code_events(sandbox, "sandbox_alice")) == 1


def test_denied_consent_gets_a_friendly_page_and_stores_nothing(tmp_path: Path, sandbox: SandboxControl,
                                                                 browser: Browser) -> None:
    browser.connect("sandbox_alice")
    callback = browser.consent("sandbox_bob", decision="cancel")
    assert query_of(callback)["error"] == "access_denied"
    before = store_files(tmp_path)

    answer = browser.get(callback)

    assert answer.status_code == 200
    assert "Nothing was connected" in text(answer)
    assert store_files(tmp_path) == before
    assert browser.get(callback).status_code == 400  # the flow is over


def test_a_confidential_client_with_a_wrong_secret_is_refused(tmp_path: Path, sandbox: SandboxControl) -> None:
    browser = Browser(make_app(tmp_path, sandbox, X_CLIENT_SECRET="not-the-sandbox-secret"))
    browser.sign_in()
    callback = browser.consent("sandbox_alice")
    before = store_files(tmp_path)

    answer = browser.get(callback)

    assert answer.status_code == 502
    assert "X refused this app's credentials" in text(answer)
    assert "not-the-sandbox-secret" not in text(answer)
    assert store_files(tmp_path) == before
    assert sandbox.token_events("issued") == []


def test_a_form_without_a_csrf_token_is_refused(tmp_path: Path, sandbox: SandboxControl, browser: Browser) -> None:
    browser.connect("sandbox_alice")
    alice = account(browser.app.config["TWEETBOT_SETTINGS"], "sandbox_alice")
    due = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert browser.post("/posts", {"account": alice.user_id, "part": "queued", "due_at": due}).status_code == 303
    post_id = open_store(browser.app.config["TWEETBOT_SETTINGS"]).queued_posts()[0].id
    before = store_files(tmp_path)
    forms = {
        "/connect": {},
        "/posts": {"account": alice.user_id, "part": "sneaky", "due_at": due},
        f"/posts/{post_id}/cancel": {},
        f"/accounts/{alice.user_id}/disconnect": {},
        "/signout": {},
        "/signin": {"password": PASSWORD},
    }

    for path, form in forms.items():
        for token in (None, "forged-token"):
            data = form if token is None else {**form, "csrf_token": token}
            answer = browser.post(path, data, csrf=False)
            assert answer.status_code == 400, path
            assert "This form cannot be accepted" in text(answer), path

    assert store_files(tmp_path) == before
    assert browser.signed_in()  # sign-out was refused too
    assert sandbox.token_events("revoked") == []


def test_no_page_opens_without_sign_in(tmp_path: Path, sandbox: SandboxControl, app: Flask,
                                       browser: Browser) -> None:
    browser.connect("sandbox_alice")
    alice = account(app.config["TWEETBOT_SETTINGS"], "sandbox_alice")
    due = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    browser.post("/posts", {"account": alice.user_id, "part": "queued", "due_at": due})
    post_id = open_store(app.config["TWEETBOT_SETTINGS"]).queued_posts()[0].id
    stranger = Browser(app)
    token = stranger.token()  # a valid CSRF token of the stranger's own session does not help
    before = store_files(tmp_path)
    values = {"user_id": alice.user_id, "post_id": post_id, "filename": "style.css", "digest": "0" * 64,
              "account": alice.user_id, "key_id": "0" * 12, "webhook_id": 1, "delivery_id": 1}

    tried = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in auth.PUBLIC_ENDPOINTS:
            continue
        with app.test_request_context():
            path = url_for(rule.endpoint, **{k: values[k] for k in rule.arguments})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            answer = stranger.client.open(path, method=method, data={"csrf_token": token})
            if rule.endpoint.startswith("api."):  # a program's door: its key decides, and a session opens nothing
                assert answer.status_code == (200 if rule.endpoint == "api.openapi" else 401), (method, path)
                assert "@sandbox_alice" not in text(answer)
                tried += 1
                continue
            assert answer.status_code == 303, (method, path)
            assert answer.headers["Location"].startswith("/signin"), (method, path)
            assert "@sandbox_alice" not in text(answer)
            tried += 1
    assert stranger.client.get("/no/such/page").status_code == 303

    assert tried >= 7
    assert store_files(tmp_path) == before
    assert sandbox.token_events("revoked") == []


def test_the_sixth_wrong_password_is_refused_even_when_right(tmp_path: Path, sandbox: SandboxControl,
                                                              app: Flask) -> None:
    guesser = Browser(app)
    guesser.client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    statuses = [guesser.sign_in(f"wrong-password-{n}").status_code for n in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    before = store_files(tmp_path)

    sixth = guesser.sign_in(PASSWORD)

    assert sixth.status_code == 429
    assert "Too many wrong passwords" in text(sixth)
    assert 14 * 60 < int(sixth.headers["Retry-After"]) <= 15 * 60
    assert not guesser.signed_in()
    assert store_files(tmp_path) == before
    owner = Browser(app)  # another address is not locked out
    assert owner.sign_in().status_code == 302 and owner.signed_in()


def test_the_lockout_ends_after_15_minutes_and_a_right_password_clears_the_count(
        tmp_path: Path, sandbox: SandboxControl, app: Flask) -> None:
    repo = open_store(app.config["TWEETBOT_SETTINGS"])
    now = utcnow()
    for n in range(4):
        assert auth.record_failure(repo, "192.0.2.8", now + timedelta(seconds=n)) is None
    until = auth.record_failure(repo, "192.0.2.8", now + timedelta(seconds=4))
    assert until == now + timedelta(seconds=4) + auth.LOCKOUT
    assert auth.locked_until(repo, "192.0.2.8", now + timedelta(minutes=15)) == until
    assert auth.locked_until(repo, "192.0.2.8", until + timedelta(seconds=1)) is None
    assert auth.record_failure(repo, "192.0.2.8", until + timedelta(seconds=1)) is None  # counting starts over

    client = Browser(app)
    client.client.environ_base["REMOTE_ADDR"] = "192.0.2.9"
    for _ in range(4):
        assert client.sign_in("wrong-password").status_code == 401
    assert client.sign_in().status_code == 302
    assert "192.0.2.9" not in repo.get_meta(auth.FAILURES_KEY)


def test_a_callback_without_a_code_is_refused(tmp_path: Path, sandbox: SandboxControl, browser: Browser) -> None:
    browser.connect("sandbox_alice")
    callback = browser.consent("sandbox_bob")
    without_code = re.sub(r"&?code=[^&]+", "", callback)
    assert "state=" in without_code and "code=" not in without_code
    before = store_files(tmp_path)

    answer = browser.get(without_code)

    assert answer.status_code == 400
    assert "X sent no authorization code" in text(answer)
    assert store_files(tmp_path) == before
    assert browser.get(callback).status_code == 400  # the flow is over: start again
