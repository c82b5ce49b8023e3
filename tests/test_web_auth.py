"""Sign-in as an attacker tries it: where `next` may send the browser, whose address counts,
how fast anyone may guess, how big the lockout table can grow, and when a session ends.

The real app (Flask's test client) with a real store, against the sandbox process. Time is
moved with the app's `CLOCK`, never slept.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask

from bot.models import utcnow
from bot.settings import load_settings
from web import auth, create_app

from sandbox_helpers import SandboxControl
from web_support import PASSWORD, Browser, csrf_of, open_store, web_env, web_settings


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def app_with(tmp_path: Path, sandbox: SandboxControl, clock: Clock | None = None, **env: str) -> Flask:
    config: dict[str, Any] = {"SETTINGS": web_settings(tmp_path, sandbox, **env), "TESTING": True}
    if clock is not None:
        config["CLOCK"] = clock
    return create_app(config)


def failures(app: Flask) -> dict[str, Any]:
    return open_store(app.config["TWEETBOT_SETTINGS"]).get_meta(auth.FAILURES_KEY) or {}


class Guesser:
    """One client at `address` posting passwords, with `X-Forwarded-For` as it likes."""

    def __init__(self, app: Flask, address: str) -> None:
        self.client = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address
        self.token = csrf_of(self.client.get("/signin").get_data(as_text=True))

    def guess(self, password: str = "wrong-password", forwarded_for: str | None = None) -> Any:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        return self.client.post("/signin", data={"password": password, "csrf_token": self.token}, headers=headers)


# --- 1. the open redirect ------------------------------------------------------------------

def browser_target(location: str) -> tuple[str, str]:
    """(scheme, host) a browser goes to for `Location: location` on this site: it drops tabs and
    newlines, reads backslashes as slashes and strips leading spaces and controls (WHATWG URL)."""
    cleaned = location.lstrip("".join(map(chr, range(0x21)))).replace("\t", "").replace("\n", "")
    cleaned = cleaned.replace("\r", "").replace("\\", "/")
    parts = urlsplit(cleaned)
    return parts.scheme, parts.netloc


EVIL_TARGETS = ["/%09/evil.example", "/%0A/evil.example", "/%0D%0A/evil.example", "//evil.example",
                "/%5Cevil.example", "/%5C%5Cevil.example", "%5C%5Cevil.example", "https://evil.example/",
                "https:evil.example", "%09//evil.example", "%20//evil.example", "/%00/evil.example",
                "javascript:alert(1)", "/%7F/evil.example", "///evil.example", "/%09%09/evil.example"]


@pytest.mark.parametrize("target", EVIL_TARGETS)
def test_sign_in_never_sends_the_browser_to_another_site(tmp_path: Path, sandbox: SandboxControl,
                                                         target: str) -> None:
    app = app_with(tmp_path, sandbox)
    browser = Browser(app)

    signed = browser.post(f"/signin?next={target}", {"password": PASSWORD})
    again = browser.client.get(f"/signin?next={target}")  # signed in already: straight on

    for answer in (signed, again):
        assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
        location = answer.headers["Location"]
        assert browser_target(location) == ("", ""), location
        assert location == "/"


def test_a_path_on_this_site_is_where_sign_in_goes(tmp_path: Path, sandbox: SandboxControl) -> None:
    browser = Browser(app_with(tmp_path, sandbox))
    landing = browser.client.get("/?page=2")
    assert landing.status_code == 303
    assert landing.headers["Location"] == "/signin?next=" + quote("/?page=2", safe="/?")

    answer = browser.post(landing.headers["Location"], {"password": PASSWORD})

    assert answer.status_code == 302 and answer.headers["Location"] == "/?page=2"


# --- 2. whose address counts ------------------------------------------------------------------

def test_30_guesses_with_a_new_forwarded_for_each_count_against_the_real_client(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    app = app_with(tmp_path, sandbox)  # no proxy configured, no platform: nobody's X-Forwarded-For counts
    guesser = Guesser(app, "192.0.2.50")

    statuses = [guesser.guess(forwarded_for=f"198.51.100.{n}").status_code for n in range(30)]

    assert statuses == [401] * 4 + [429] * 26
    assert set(failures(app)) == {"192.0.2.50"}
    assert guesser.guess(PASSWORD).status_code == 429  # locked: the right password does not help


def test_five_wrong_tries_in_someone_elses_name_do_not_lock_them_out(tmp_path: Path,
                                                                    sandbox: SandboxControl) -> None:
    app = app_with(tmp_path, sandbox)
    attacker = Guesser(app, "192.0.2.66")
    for _ in range(5):
        attacker.guess(forwarded_for="203.0.113.9")

    owner = Guesser(app, "203.0.113.9")
    assert owner.guess(PASSWORD).status_code == 302
    assert "203.0.113.9" not in failures(app)


def test_a_configured_proxy_is_believed_and_only_it(tmp_path: Path, sandbox: SandboxControl) -> None:
    app = app_with(tmp_path, sandbox, TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1")
    through_proxy = Guesser(app, "10.1.2.3")  # the proxy, whose own proxy was 10.0.0.5
    through_proxy.guess(forwarded_for="192.0.2.200, 198.51.100.7, 10.0.0.5")
    direct = Guesser(app, "192.0.2.77")  # not a proxy: its header is ignored
    direct.guess(forwarded_for="198.51.100.8")

    assert set(failures(app)) == {"198.51.100.7", "192.0.2.77"}


def test_the_paas_router_is_trusted_by_default_only_where_the_platform_is_detected(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    assert load_settings(None, web_env(tmp_path, sandbox)).trusted_proxies == 0
    assert load_settings(None, web_env(tmp_path, sandbox, DYNO="web.1")).trusted_proxies == 1
    assert load_settings(None, web_env(tmp_path, sandbox, RENDER="true", TRUSTED_PROXIES="2")).trusted_proxies == 2
    assert load_settings(None, web_env(tmp_path, sandbox, DYNO="web.1", TRUSTED_PROXIES="0")).trusted_proxies == 0
    with pytest.raises(Exception, match="TRUSTED_PROXIES='nginx' is not a number of proxies"):
        load_settings(None, web_env(tmp_path, sandbox, TRUSTED_PROXIES="nginx"))

    app = app_with(tmp_path, sandbox, DYNO="web.1")
    Guesser(app, "10.9.8.7").guess(forwarded_for="198.51.100.1, 203.0.113.50")  # the router appended the client
    assert set(failures(app)) == {"203.0.113.50"}


@pytest.mark.slow
def test_4000_spoofed_addresses_leave_the_lockout_table_bounded(tmp_path: Path, sandbox: SandboxControl) -> None:
    """4,000 addresses guess once each, in a few seconds: directly (each names itself in X-Forwarded-For)
    and behind a trusted proxy (so each really is a different client). The store keeps a bounded table
    and the admin's sign-in stays quick."""
    app = app_with(tmp_path, sandbox, TRUSTED_PROXIES="10.0.0.0/8")
    settings = app.config["TWEETBOT_SETTINGS"]
    assert Guesser(app, "10.0.0.1").guess(PASSWORD, forwarded_for="192.0.2.1").status_code == 302  # the admin
    direct, proxy = Guesser(app, "192.0.2.66"), Guesser(app, "10.0.0.1")
    started = time.monotonic()
    for n in range(4000):
        answer = (direct if n % 2 else proxy).guess(forwarded_for=f"198.51.{n // 250}.{n % 250}")
        assert answer.status_code in (401, 429), answer.status_code
        if n % 250 == 249:
            assert len(failures(app)) <= auth.MAX_TRACKED, f"{len(failures(app))} addresses after {n + 1} guesses"
    print(f"4000 guesses from 4000 addresses took {time.monotonic() - started:.1f} s")

    table = failures(app)
    assert len(table) <= auth.GLOBAL_BURST + 1 and "192.0.2.66" in table
    assert settings.store_path.stat().st_size < 20_000
    before = time.monotonic()
    assert Guesser(app, "10.0.0.1").guess(PASSWORD, forwarded_for="192.0.2.1").status_code == 302
    assert time.monotonic() - before < 1.0


def test_the_lockout_table_drops_its_oldest_addresses(tmp_path: Path, sandbox: SandboxControl) -> None:
    repo = open_store(web_settings(tmp_path, sandbox))
    now = utcnow()
    for n in range(auth.MAX_TRACKED + 40):
        auth.record_failure(repo, f"192.0.2.{n % 250}-{n}", now + timedelta(milliseconds=n))
    table = repo.get_meta(auth.FAILURES_KEY)
    assert len(table) == auth.MAX_TRACKED
    assert f"192.0.2.{(auth.MAX_TRACKED + 39) % 250}-{auth.MAX_TRACKED + 39}" in table
    assert "192.0.2.0-0" not in table


# --- 2b. the global limit ----------------------------------------------------------------------

def test_many_addresses_together_are_slowed_but_the_admin_is_never_locked_out(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    clock = Clock()
    app = app_with(tmp_path, sandbox, clock, TRUSTED_PROXIES="1")
    def admin_from(address: str) -> int:  # a browser of the admin's behind the proxy
        return int(Guesser(app, "10.0.0.1").guess(PASSWORD, forwarded_for=address).status_code)

    assert admin_from("192.0.2.1") == 302  # once, from home
    proxy = Guesser(app, "10.0.0.1")

    statuses = [proxy.guess(forwarded_for=f"198.51.100.{n}").status_code for n in range(auth.GLOBAL_BURST + 5)]

    assert statuses == [401] * auth.GLOBAL_BURST + [429] * 5  # one wrong password each, 20 addresses
    slowed = proxy.guess(forwarded_for="198.51.100.99")
    assert slowed.status_code == 429 and "Try again in" in slowed.get_data(as_text=True)
    assert 1 <= int(slowed.headers["Retry-After"]) <= auth.GLOBAL_REFILL.total_seconds()
    assert len(failures(app)) == auth.GLOBAL_BURST  # refused tries touch nothing
    # The admin's address is not held by it; a right password from a new address waits its turn.
    assert admin_from("192.0.2.1") == 302
    assert admin_from("192.0.2.2") == 429
    clock.move(seconds=auth.GLOBAL_REFILL.total_seconds())
    assert admin_from("192.0.2.2") == 302
    # A right password's try goes back; then one more try per GLOBAL_REFILL, for ever: never closed for good.
    assert [proxy.guess(forwarded_for=f"203.0.113.{n}").status_code for n in range(2)] == [401, 429]
    clock.move(seconds=auth.GLOBAL_REFILL.total_seconds())
    assert [proxy.guess(forwarded_for=f"203.0.113.{n}").status_code for n in range(2, 4)] == [401, 429]
    clock.move(hours=1)
    assert proxy.guess(forwarded_for="203.0.113.77").status_code == 401


# --- 3. sessions that end -------------------------------------------------------------------------

def signed_in_with(app: Flask, cookie: str) -> bool:
    """Whether a second browser holding a copy of `cookie` sees the dashboard."""
    thief = Browser(app)
    thief.set_cookie(cookie)
    return thief.client.get("/").status_code == 200


def signed_in_browser(app: Flask) -> tuple[Browser, str]:
    browser = Browser(app)
    assert browser.sign_in().status_code == 302
    cookie = browser.cookie()
    assert cookie and signed_in_with(app, cookie)
    return browser, cookie


def test_a_copied_cookie_fails_after_sign_out(tmp_path: Path, sandbox: SandboxControl) -> None:
    app = app_with(tmp_path, sandbox)
    browser, cookie = signed_in_browser(app)
    _other, other_cookie = signed_in_browser(app)

    assert browser.post("/signout").status_code == 302

    assert not signed_in_with(app, cookie)
    assert signed_in_with(app, other_cookie)  # sign-out ends this session only
    assert browser.sign_in().status_code == 302 and browser.client.get("/").status_code == 200


def test_a_copied_cookie_fails_after_admin_password_changes(tmp_path: Path, sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox)
    before = create_app({"SETTINGS": load_settings(None, env), "TESTING": True})
    _browser, cookie = signed_in_browser(before)
    restarted = create_app({"SETTINGS": load_settings(None, env), "TESTING": True})
    assert signed_in_with(restarted, cookie)  # a restart alone keeps sessions

    changed = create_app({"SETTINGS": load_settings(None, {**env, "ADMIN_PASSWORD": "a-new-admin-password"}),
                          "TESTING": True})

    assert not signed_in_with(changed, cookie)


def test_sign_out_everywhere_ends_every_session(tmp_path: Path, sandbox: SandboxControl) -> None:
    app = app_with(tmp_path, sandbox)
    laptop, laptop_cookie = signed_in_browser(app)
    _phone, phone_cookie = signed_in_browser(app)
    assert "Sign out everywhere" in laptop.get("/").get_data(as_text=True)

    answer = laptop.post("/signout/everywhere")

    assert answer.status_code == 302 and answer.headers["Location"] == "/signin"
    assert not signed_in_with(app, laptop_cookie) and not signed_in_with(app, phone_cookie)
    assert "Signed out everywhere" in laptop.get("/signin").get_data(as_text=True)
    _again, new_cookie = signed_in_browser(app)  # signing in again works
    assert signed_in_with(app, new_cookie)


def test_a_session_ends_12_hours_after_sign_in_however_much_it_is_used(tmp_path: Path,
                                                                        sandbox: SandboxControl) -> None:
    clock = Clock()
    app = app_with(tmp_path, sandbox, clock)
    browser, cookie = signed_in_browser(app)
    for _ in range(11):
        clock.move(hours=1)
        assert browser.client.get("/").status_code == 200  # used every hour
    clock.move(minutes=59)
    assert browser.client.get("/").status_code == 200

    clock.move(minutes=2)  # 12 h 01 min after sign-in

    assert browser.client.get("/").status_code == 303
    assert not signed_in_with(app, cookie)
    assert browser.sign_in().status_code == 302 and browser.client.get("/").status_code == 200
