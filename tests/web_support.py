"""Helpers for the web app's tests: settings against the sandbox, a signed-in client, the consent
flow driven like a browser, store snapshots, and gunicorn as a real process.

The sandbox (a real `tweetbot sandbox` process, from conftest.py) is the only stand-in;
the app, the store and the X client are the real ones.
"""
from __future__ import annotations

import html
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from bot.cli.processes import gunicorn_command
from bot.crypto import TokenCipher
from bot.models import Account
from bot.settings import Settings, load_settings
from bot.store.file import TinyStore
from web import create_app

from conftest import ROOT, free_port, stop_process, tweetbot_env
from sandbox_helpers import SandboxControl, drive_consent

PASSWORD = "sandbox-admin-password"  # what conftest's tweetbot_env sets
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_env(tmp_path: Path, sandbox: SandboxControl, **overrides: str) -> dict[str, str]:
    """The environment of a web process on `tmp_path`'s store against the sandbox."""
    return tweetbot_env(tmp_path, sandbox.url, **overrides)


def web_settings(tmp_path: Path, sandbox: SandboxControl, **overrides: str) -> Settings:
    return load_settings(None, web_env(tmp_path, sandbox, **overrides))


def make_app(tmp_path: Path, sandbox: SandboxControl, **overrides: str) -> Flask:
    """The real app (real store in `tmp_path`) against the sandbox, for Flask's test client."""
    return create_app({"SETTINGS": web_settings(tmp_path, sandbox, **overrides), "TESTING": True})


def open_store(settings: Settings) -> TinyStore:
    """A second handle on the app's store, as another process would open it."""
    return TinyStore(settings.store_path, TokenCipher(settings.token_keys))


def store_files(folder: Path) -> dict[str, bytes]:
    """Every store file in `folder` (main file and its logs) with its bytes; lock files aside."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock") and p.suffix in (".json", ".jsonl")}


def text(answer: Any) -> str:
    """A test client response's page as a person reads it (entities decoded)."""
    return html.unescape(answer.get_data(as_text=True))


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def path_of(url: str) -> str:
    """`http://host/path?query` → `/path?query` (what Flask's test client requests)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Browser:
    """Flask's test client with what a browser does: keep cookies, send the page's CSRF token."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.pages: list[str] = []

    def get(self, path: str, **kwargs: Any) -> Any:
        answer = self.client.get(path, **kwargs)
        self.pages.append(answer.get_data(as_text=True))
        return answer

    def token(self) -> str:
        return csrf_of(self.get("/signin" if not self.signed_in() else "/").get_data(as_text=True))

    def signed_in(self) -> bool:
        with self.client.session_transaction() as session:
            return session.get("signed_in") is True

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: bool = True, **kwargs: Any) -> Any:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.token()
        answer = self.client.post(path, data=form, **kwargs)
        self.pages.append(answer.get_data(as_text=True))
        return answer

    def sign_in(self, password: str = PASSWORD, **kwargs: Any) -> Any:
        return self.post("/signin", {"password": password}, **kwargs)

    def start_connect(self) -> str:
        """Press Connect; the consent page's URL the app redirects to."""
        answer = self.post("/connect")
        assert answer.status_code == 302, answer.get_data(as_text=True)
        return answer.headers["Location"]

    def consent(self, username: str = "sandbox_alice", decision: str = "authorize") -> str:
        """Connect → the sandbox's consent page → pick `username` → Authorize/Cancel; the callback path."""
        return path_of(drive_consent(self.start_connect(), username, decision))

    def connect(self, username: str = "sandbox_alice") -> Any:
        answer = self.get(self.consent(username))
        assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.get_data(as_text=True)
        return self.get("/")

    def cookie(self) -> str | None:
        found = self.client.get_cookie(self.app.config["SESSION_COOKIE_NAME"])
        return None if found is None else found.value

    def set_cookie(self, value: str) -> None:
        self.client.set_cookie(self.app.config["SESSION_COOKIE_NAME"], value)


def account(settings: Settings, username: str) -> Account:
    found = open_store(settings).find_account(username)
    assert found is not None, f"no account {username}"
    return found


# --- gunicorn, as the Procfile runs it --------------------------------------------------

@dataclass
class WebServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    settings: Settings

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def gunicorn(tmp_path: Path, sandbox: SandboxControl, workers: int = 2, store_dir: Path | None = None,
             env: dict[str, str] | None = None, name: str = "web",
             public_url: str | None = None) -> Iterator[WebServer]:
    """`web:create_app()` under gunicorn (the Procfile's command) on a free port, against the sandbox.

    The app's callback URL is registered with the sandbox's client. `env` (from a first
    server) lets a second server share the secrets and the store; `public_url` makes it
    the same site as the first (one callback URL), as two workers behind one router are.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = dict(env or web_env(store_dir or tmp_path, sandbox))
    environment.update(PUBLIC_URL=public_url or url, PORT=str(port))
    sandbox.register_client(environment.get("X_CLIENT_ID") or "sandbox-client",
                            [environment["PUBLIC_URL"] + "/oauth/callback"])
    command = gunicorn_command("127.0.0.1", port, workers)
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    server = WebServer(url, process, log_path, load_settings(None, environment))
    try:
        _wait_until_up(server, workers)
        yield server
    finally:
        stop_process(process)


def _wait_until_up(server: WebServer, workers: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"gunicorn exited:\n{server.log()}"
        try:
            requests.get(server.url + "/healthz", timeout=5)
        except requests.RequestException:  # not listening yet, or busy booting
            time.sleep(0.1)
            continue
        if server.log().count("Booting worker") >= workers:
            return
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not come up within {timeout} s:\n{server.log()}")


class HttpBrowser:
    """A `requests` session used like a browser against a real server: cookies, CSRF tokens."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.pages: list[str] = []

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        answer = self.http.get(self.base + path, allow_redirects=False, timeout=10, **kwargs)
        self.pages.append(answer.text)
        return answer

    def post(self, path: str, data: dict[str, Any] | None = None, token_from: str = "/",
             **kwargs: Any) -> requests.Response:
        form = {**(data or {}), "csrf_token": csrf_of(self.get(token_from).text)}
        answer = self.http.post(self.base + path, data=form, allow_redirects=False, timeout=10, **kwargs)
        self.pages.append(answer.text)
        return answer

    def sign_in(self, password: str = PASSWORD) -> requests.Response:
        return self.post("/signin", {"password": password}, token_from="/signin")


# -- fixtures the web test modules share (import them by name to use them) ---------------------


@pytest.fixture
def app(tmp_path: Path, sandbox: SandboxControl) -> Flask:
    """The real app on a store in `tmp_path`, against the session's sandbox."""
    return make_app(tmp_path, sandbox)


@pytest.fixture
def browser(app: Flask) -> Browser:
    """A browser signed in to `app`."""
    browser = Browser(app)
    assert browser.sign_in().status_code == 302
    return browser
