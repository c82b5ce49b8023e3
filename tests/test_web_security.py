"""Security of the web app: no secret in any page or log line, headers, cookies, the proxy.

The real app (Flask's test client) with a real store, against the sandbox process.
"""
from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from flask import request

from bot.api_keys import SCOPES, create_key
from bot.models import POSTED, Post, utcnow
from web import auth

from sandbox_helpers import SandboxControl, drive_consent
from web_support import PASSWORD, Browser, account, make_app, open_store, path_of

HTML_PAGES = re.compile(r"<!doctype html>", re.I)


def test_no_token_or_secret_in_any_page_or_log_line(tmp_path: Path, sandbox: SandboxControl,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app(tmp_path, sandbox)
    settings = app.config["TWEETBOT_SETTINGS"]
    visited: set[str] = set()
    app.before_request(lambda: visited.add(str(request.endpoint)))
    browser = Browser(app)
    browser.get("/")
    browser.sign_in("a-wrong-password")
    browser.sign_in()
    browser.connect("sandbox_alice")
    alice = account(settings, "sandbox_alice")
    secrets = {"access token": alice.access_token, "refresh token": alice.refresh_token,
               "admin password": PASSWORD, "secret key": settings.secret_key,
               "token key": settings.token_keys[0], "client secret": settings.x_client_secret}

    # Every other page and answer, with the account connected.
    due = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    browser.post("/posts", {"account": alice.user_id, "part": ["a thread", "of two"], "due_at": due})
    browser.post("/posts", {"account": alice.user_id, "part": "x" * 300, "due_at": due})
    repo = open_store(settings)
    repo.add_posts([Post(id=0, account_id=alice.user_id, parts=("posted",), due_at=utcnow(), status=POSTED,
                         tweet_ids=("1860000000000000003",), posted_at=utcnow())])
    post_id = repo.queued_posts()[0].id
    browser.get("/")
    browser.get("/text-rules.json")
    browser.get("/calendar")
    for fragment in ("accounts", "queue", "history", "charts", "calendar", "clock"):
        browser.get(f"/fragments/{fragment}")
    browser.get("/healthz")
    browser.get("/static/counter.js")
    browser.client.get(f"/posts/{post_id}/media/{'0' * 64}")  # the post carries no such file: 404
    browser.get(browser.consent("sandbox_bob", decision="cancel"))  # denied
    browser.get(re.sub(r"state=[^&]+", "state=forged", browser.consent("sandbox_bob")))  # state mismatch
    authorize = browser.start_connect()
    old_cookie = browser.cookie()
    callback = path_of(drive_consent(authorize, "sandbox_bob"))
    browser.get(callback)  # bob connected
    browser.get(callback)  # no flow
    browser.set_cookie(old_cookie or "")
    browser.get(callback)  # spent code
    bob = account(settings, "sandbox_bob")
    secrets.update({"bob's access token": bob.access_token, "bob's refresh token": bob.refresh_token})
    browser.post("/connect", csrf=False)  # CSRF refused
    browser.post(f"/accounts/{alice.user_id}/slots", {"spec": "daily 09:00", "tz": ""})
    browser.post(f"/accounts/{alice.user_id}/slots", {"spec": "nonsense", "tz": ""})  # refused
    browser.post(f"/accounts/{alice.user_id}/slots/clear")
    browser.post("/webhooks", {"url": "https://example.test/hooks?token=t", "events": ["post.posted"]})
    [hook] = repo.list_webhooks()
    assert hook.secret in browser.pages.pop()  # the one answer a webhook's secret is on (see test_webhooks)
    secrets["webhook secret"] = hook.secret
    browser.get("/webhooks")
    browser.post(f"/webhooks/{hook.id}/test")
    browser.post(f"/webhooks/deliveries/{repo.deliveries()[0].id}/redeliver")
    browser.post(f"/webhooks/{hook.id}/resume")
    browser.get(f"/webhooks/{hook.id}/remove")
    browser.post(f"/webhooks/{hook.id}/remove")
    browser.get(f"/posts/{post_id}/edit")
    browser.post(f"/posts/{post_id}/edit", {"account": alice.user_id, "part": "edited", "due_at": due, "when": "at"})
    browser.get(f"/posts/{post_id}/cancel")  # the question, before the POST
    browser.get("/metrics")
    api_key = create_key(repo, "every page", SCOPES, utcnow())[1]
    secrets["API key"] = api_key
    for method, path, body in (
            ("GET", "/api/v1/openapi.json", None), ("GET", "/api/v1/accounts", None),
            ("POST", "/api/v1/posts", {"account": alice.user_id, "text": "by the API", "at": "now"}),
            ("GET", "/api/v1/posts", None), ("GET", f"/api/v1/posts/{post_id}", None),
            ("PATCH", f"/api/v1/posts/{post_id}", {"text": "changed by the API"}),
            ("GET", f"/api/v1/accounts/{alice.user_id}/slots", None),
            ("PUT", f"/api/v1/accounts/{alice.user_id}/slots", {"spec": "daily 09:00"}),
            ("DELETE", f"/api/v1/accounts/{alice.user_id}/slots", None),
            ("POST", "/api/v1/media", None),  # refused: no file
            ("GET", "/api/v1/webhooks", None), ("POST", "/api/v1/webhooks/999/test", None),
            ("DELETE", "/api/v1/webhooks/999", None),
            ("POST", "/api/v1/webhooks", {"url": "https://hooks.example.com/in", "events": ["nope"]}),
            ("POST", f"/api/v1/posts/{post_id}/post-now", None), ("POST", f"/api/v1/posts/{post_id}/retry", None),
            ("DELETE", f"/api/v1/posts/{post_id}", None)):
        answer = browser.client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {api_key}"})
        browser.pages.append(answer.get_data(as_text=True))
    browser.get("/api-docs")
    browser.get("/api-keys")
    browser.post("/api-keys", {"name": "shown once"})  # not a secret of this test: made to be shown
    browser.post(f"/api-keys/{api_key.split('_')[1]}/revoke")
    browser.post(f"/posts/{post_id}/now")
    browser.post(f"/posts/{post_id}/retry")  # refused: not failed
    browser.post(f"/posts/{post_id}/cancel")
    browser.get("/")
    browser.get(f"/accounts/{alice.user_id}/disconnect")
    browser.post(f"/accounts/{alice.user_id}/disconnect")
    browser.get("/")
    browser.post("/signout")
    browser.get("/signin")
    browser.sign_in()
    browser.post("/signout/everywhere")
    browser.get("/signin")

    assert visited >= {rule.endpoint for rule in app.url_map.iter_rules()}, "a page was not rendered"
    assert sum(bool(HTML_PAGES.search(page)) for page in browser.pages) >= 15
    everything = "\n".join(browser.pages)
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert "Connected @sandbox_alice" in everything and "tweetbot.web" in caplog.text
    for name, secret in secrets.items():
        assert secret and len(secret) >= 8, name
        assert secret not in everything, f"the {name} appears in a page"
        assert secret not in logged, f"the {name} appears in the log"


def test_security_headers_on_every_answer(tmp_path: Path, sandbox: SandboxControl) -> None:
    browser = Browser(make_app(tmp_path, sandbox))
    answers = [browser.client.get("/signin"), browser.client.get("/healthz"), browser.client.get("/"),
               browser.client.get("/static/counter.js")]
    browser.sign_in()
    answers += [browser.client.get("/"), browser.client.post("/connect")]

    for answer in answers:
        policy = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert f"form-action 'self' {sandbox.url}" in policy  # Connect's redirect goes to the consent page
        assert "frame-ancestors 'none'" in policy
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "same-origin"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answers[4].headers["Cache-Control"] == "no-store"


def test_pages_carry_no_inline_script_or_style(tmp_path: Path, sandbox: SandboxControl) -> None:
    browser = Browser(make_app(tmp_path, sandbox))
    browser.get("/signin")
    browser.sign_in()
    browser.connect("sandbox_alice")
    browser.get(browser.consent("sandbox_bob", decision="cancel"))

    for page in browser.pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline script"
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page), "inline style or handler"
    assert any('<script src="/static/counter.js"></script>' in page for page in browser.pages)


def test_the_session_cookie_is_httponly_lax_and_secure_under_https(tmp_path: Path, sandbox: SandboxControl) -> None:
    app = make_app(tmp_path, sandbox, TRUSTED_PROXIES="1")  # a TLS proxy in front
    plain = app.test_client().get("/signin").headers["Set-Cookie"]
    behind_tls = app.test_client().get("/signin", headers={"X-Forwarded-Proto": "https"}).headers["Set-Cookie"]

    assert plain.startswith("tweetbot_session=")
    for cookie in (plain, behind_tls):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in plain
    assert "; Secure" in behind_tls


def test_behind_a_tls_proxy_the_forwarded_host_proto_and_address_count(tmp_path: Path,
                                                                       sandbox: SandboxControl) -> None:
    app = make_app(tmp_path, sandbox, TRUSTED_PROXIES="1")
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.example.org", "X-Forwarded-For": "203.0.113.5"}
    client = app.test_client()
    page = client.get("/signin", headers=proxy).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    wrong_referrer = client.post("/signin", data={"password": PASSWORD, "csrf_token": token},
                                 headers={**proxy, "Referer": "https://elsewhere.example/signin"})
    right_referrer = client.post("/signin", data={"password": PASSWORD, "csrf_token": token},
                                 headers={**proxy, "Referer": "https://bot.example.org/signin"})

    assert wrong_referrer.status_code == 400  # Flask-WTF's https referrer check, on the forwarded host
    assert right_referrer.status_code == 302 and "; Secure" in right_referrer.headers["Set-Cookie"]
    guesser = app.test_client()
    page = guesser.get("/signin", headers=proxy).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    statuses = [guesser.post("/signin", data={"password": "wrong", "csrf_token": token},
                             headers={**proxy, "Referer": "https://bot.example.org/signin"}).status_code
                for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    failures = open_store(app.config["TWEETBOT_SETTINGS"]).get_meta(auth.FAILURES_KEY)
    assert set(failures) == {"203.0.113.5"} and failures["203.0.113.5"]["count"] == 5


def test_a_session_from_another_secret_key_is_not_signed_in(tmp_path: Path, sandbox: SandboxControl) -> None:
    signed = Browser(make_app(tmp_path, sandbox))
    signed.sign_in()
    other_app = make_app(tmp_path, sandbox)  # fresh SECRET_KEY
    other = Browser(other_app)
    other.set_cookie(signed.cookie() or "")

    assert other.client.get("/").status_code == 303


# --- Strict-Transport-Security -------------------------------------------------------------

def test_hsts_whenever_the_site_is_https(tmp_path: Path, sandbox: SandboxControl) -> None:
    public_https = make_app(tmp_path / "a", sandbox, PUBLIC_URL="https://bot.example.org").test_client()
    behind_tls = make_app(tmp_path / "b", sandbox, TRUSTED_PROXIES="1").test_client()
    plain = make_app(tmp_path / "c", sandbox).test_client()

    for answer in (public_https.get("/signin"), public_https.get("/healthz"),
                   behind_tls.get("/signin", headers={"X-Forwarded-Proto": "https"})):
        assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in plain.get("/signin").headers  # http://127.0.0.1: make run
    # A client that only claims https (no trusted proxy) gets none either.
    assert "Strict-Transport-Security" not in plain.get("/signin", headers={"X-Forwarded-Proto": "https"}).headers


# --- the sandbox's control hooks refuse other sites ----------------------------------------

def test_another_site_cannot_reset_the_sandbox(sandbox: SandboxControl) -> None:
    """A page elsewhere can make a browser POST a form (or a text/plain or body-less fetch) to the
    sandbox; every such request is refused before it changes anything."""
    sandbox.configure(access_token_lifetime=77)
    reset = sandbox.url + "/_sandbox/reset"
    evil = "https://evil.example"
    tries = {
        "form from another site": requests.post(reset, data={"a": "b"}, headers={"Origin": evil}, timeout=10),
        "form, Referer only": requests.post(reset, data={"a": "b"}, headers={"Referer": evil + "/page"}, timeout=10),
        "form, no Origin": requests.post(reset, data={"a": "b"}, timeout=10),
        "text/plain": requests.post(reset, data="{}", headers={"Content-Type": "text/plain"}, timeout=10),
        "multipart": requests.post(reset, files={"f": ("x", b"y")}, timeout=10),
        "body-less from another site": requests.post(reset, headers={"Origin": evil}, timeout=10),
        "JSON from another site": requests.post(reset, json={}, headers={"Origin": evil}, timeout=10),
        "JSON from a sandboxed frame": requests.post(reset, json={}, headers={"Origin": "null"}, timeout=10),
        "config as a form": requests.post(sandbox.url + "/_sandbox/config", data={"tier": "free"}, timeout=10),
        "faults cleared cross-site": requests.delete(sandbox.url + "/_sandbox/faults", headers={"Origin": evil},
                                                     timeout=10),
    }

    for name, answer in tries.items():
        assert answer.status_code in (403, 415), (name, answer.status_code, answer.text)
        assert "error" in answer.json(), name
    assert sandbox.configure()["access_token_lifetime"] == 77  # nothing was reset
    assert sandbox.configure()["tier"] != "free"
    # The sandbox's own origin, and a client that sends no Origin (the tests, curl), still work.
    same_site = requests.post(reset, json={}, headers={"Origin": sandbox.url}, timeout=10)
    assert same_site.status_code == 200
    sandbox.configure(access_token_lifetime=78)
    sandbox.reset()
    assert sandbox.configure()["access_token_lifetime"] != 78
    # Reading is not refused (the timeline page's images come from the hooks).
    assert requests.get(sandbox.url + "/_sandbox/clock", headers={"Origin": evil}, timeout=10).status_code == 200
