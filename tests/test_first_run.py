"""The whole first run, twice, as a new user does it in a real browser: `make run`, sign in with the
password its first screen shows, Connect, compose a post for now, stop; `make run` again, and the same
account is still active, refreshes its token chain at the sandbox (which kept it) and posts again.

Needs Debian's `chromium` (/usr/bin/chromium); Playwright drives it.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import Page, expect
from test_run import child_of, free_port, kill_all, wait_for
from test_web_browser import chromium

from bot.models import ACTIVE
from bot.settings import load_settings
from bot.store import open_store

from sandbox_helpers import SandboxControl
from worker_support import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent


def start_make_run(folder: Path, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """`make run` (the README's command) in `folder`; -o: the install stamp counts as done, so make never
    installs into this venv from a test."""
    return subprocess.Popen(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), f"VENV={VENV}",
                             "-o", str(VENV / ".installed"), "run"],
                            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_make_run(make: subprocess.Popen[bytes]) -> int:
    """SIGTERM to `tweetbot run` (as `kill` would); make ends as it does."""
    os.kill(child_of(make), signal.SIGTERM)
    return make.wait(timeout=60)


def sign_in(page: Page, base: str, password: str) -> None:
    page.goto(base + "/")
    page.fill("#password", password)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(base + "/")


def compose_now(page: Page, text: str) -> None:
    page.fill("#part-1", text)
    page.check("#when-now")
    page.click("#queue-post")
    expect(page.locator(".flash.ok")).to_have_text("Queued a post for now: the worker sends it on its next round.")


def test_the_first_run_twice_in_a_real_browser(tmp_path: Path) -> None:
    port, sandbox_port = free_port(), free_port()
    base, x = f"http://127.0.0.1:{port}", SandboxControl(f"http://127.0.0.1:{sandbox_port}")
    env = {k: v for k, v in os.environ.items()
           if k not in {"X_CLIENT_ID", "SECRET_KEY", "TOKEN_KEY", "ADMIN_PASSWORD", "DYNO", "TRUSTED_PROXIES"}}
    # Tokens that live 65 s (the refresh margin plus the demo's minute): the second run sees a refresh.
    env.update(PORT=str(port), SANDBOX_PORT=str(sandbox_port), REFRESH_MARGIN="5", REFRESH_EVERY="1")
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    started: list[int] = []
    with chromium() as browser:
        # The first run: the password is on its first screen, with the way to the command line.
        with logs[0].open("wb") as log:
            make = start_make_run(tmp_path, env, log)
            try:
                wait_for(f"{base}/healthz", make, until=lambda status, body: status == 200)
                started = [make.pid, child_of(make)]
                first_screen = logs[0].read_text().split("| ")[0]  # before any process's first line
                password = re.search(r"Admin password \(shown once\): (\S+)", first_screen)
                assert password, first_screen
                command = re.search(r"tweetbot: the command line: (\S+) --help", first_screen)
                assert command and (tmp_path / command[1]).resolve() == VENV / "bin" / "tweetbot", first_screen
                page = browser.new_page()
                sign_in(page, base, password[1])
                page.click("#connect")
                page.wait_for_url(x.url + "/i/oauth2/authorize?*")
                page.select_option("#user_id", x.user("sandbox_alice")["id"])
                page.click("#authorize")
                expect(page.locator(".flash.ok")).to_have_text("Connected @sandbox_alice")
                compose_now(page, "the first run's first post")
                wait_until(lambda: "the first run's first post" in [p["text"] for p in x.posts("sandbox_alice")],
                           30, "the first post at X")
                page.close()
                assert x.token_events("refreshed") == []  # the chain's first refresh comes in the second run
                assert stop_make_run(make) == 0, logs[0].read_text()[-3000:]
            finally:
                kill_all(started)
        state = tmp_path / "data" / "sandbox.state"
        assert state.stat().st_mode & 0o777 == 0o600

        # The second run: no new .env, the same account, a refresh X accepts, a new post.
        with logs[1].open("wb") as log:
            make = start_make_run(tmp_path, env, log)
            try:
                wait_for(f"{base}/healthz", make, until=lambda status, body: status == 200)
                started = [make.pid, child_of(make)]
                page = browser.new_page()
                sign_in(page, base, password[1])
                row = page.locator('tr[data-account="@sandbox_alice"]')
                expect(row.locator(".status")).to_contain_text("active")
                compose_now(page, "the second run's post")
                wait_until(lambda: "the second run's post" in [p["text"] for p in x.posts("sandbox_alice")],
                           30, "the second post at X")
                wait_until(lambda: x.token_events("refreshed"), 120, "a refresh of the kept chain")
                assert stop_make_run(make) == 0, logs[1].read_text()[-3000:]
            finally:
                kill_all(started)
    first, second = (log.read_text() for log in logs)
    assert "Admin password" not in second  # .env was kept
    for output in (first, second):  # the worker waited for the sandbox; the kept chain went on
        assert "needs reconnecting" not in output and "Traceback" not in output, output[-3000:]
        assert not re.search(r"worker .*(error|refused|failed)", output, re.I), output[-3000:]
    settings = load_settings(tmp_path / ".env", {"STORE_PATH": str(tmp_path / "data" / "tweetbot.json")})
    store = open_store(settings)
    [alice] = store.list_accounts()
    assert alice.status == ACTIVE and alice.refresh_failures == 0
    [chain] = kept(state, "chains")
    assert chain["status"] == "active" and chain["refreshes"] >= 1
    assert [p["text"] for p in kept(state, "posts")] == ["the first run's first post", "the second run's post"]


def kept(state: Path, section: str) -> list[dict]:
    """A section of the world kept in `state`, read from a sandbox started on it afresh (both runs are over)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(port), "--state", str(state)],
                               cwd=state.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _, body = wait_for(f"http://127.0.0.1:{port}/_sandbox/state?only={section}", process,
                           until=lambda status, body: status == 200, seconds=30)
        return body[section]
    finally:
        process.terminate()
        process.wait(timeout=10)
