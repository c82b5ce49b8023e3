"""The Heroku shape: the Procfile's `release`, `web` and `worker` lines as separate real processes,
each in an empty working directory of its own (no shared disk), sharing nothing but one DATABASE_URL
and the secrets, driven through the whole flow against the real sandbox.

The commands are read from the Procfile at test time and run as Heroku runs them (a shell, with
`$PORT` set for the web line); the database starts with no schema at all, as a new add-on hands it
out, so the release line is what migrates it.
"""
from __future__ import annotations

import html
import os
import shlex
import socket
import subprocess
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from bot.models import ACTIVE, POSTED
from bot.store import Repository
from bot.store.postgres.migrate import latest_version

from conftest import free_port, tweetbot_env
from dyno_support import BIN, dyno, health, procfile, shell
from sandbox_helpers import SandboxControl, drive_consent
from web_support import HttpBrowser
from worker_support import open_test_store, stored_refreshes, wait_until

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out

USERNAME = "sandbox_alice"
TOKEN_LIFETIME = 8  # seconds, at the sandbox: short enough that the worker refreshes soon after Connect
REFRESH_MARGIN = 5  # so a fresh token is refreshed about three seconds after it was issued


def schema_versions(url: str) -> list[int] | None:
    """The migrations applied to the database, or None where there is no schema at all."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if row is None or row[0] is None:
            return None
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def posted(sandbox: SandboxControl, text: str) -> list[dict[str, object]]:
    return [p for p in sandbox.posts(USERNAME) if p["text"] == text]


def test_release_web_and_worker_on_separate_disks_share_one_database(
        tmp_path: Path, sandbox: SandboxControl, unmigrated_database_url: str) -> None:
    lines = procfile()
    assert {"release", "web", "worker"} <= set(lines), f"the Procfile's process types: {sorted(lines)}"
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    env = tweetbot_env(tmp_path, sandbox.url, DATABASE_URL=unmigrated_database_url, PUBLIC_URL=web_url,
                       REFRESH_MARGIN=str(REFRESH_MARGIN), REFRESH_EVERY="1", RETRY_BACKOFF="0.5")
    del env["STORE_PATH"]  # the default, data/tweetbot.json, relative to each process's own folder
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    web_env = {**env, "PORT": str(port)}
    sandbox.register_client("sandbox-client", [web_url + "/oauth/callback"])
    sandbox.configure(access_token_lifetime=TOKEN_LIFETIME)
    logs = tmp_path / "logs"
    logs.mkdir()
    folders = {name: tmp_path / name for name in ("release", "web", "worker", "cli")}
    store: Repository | None = None

    with ExitStack() as stack:
        # release: the database a new add-on hands out has no schema; the release line applies it.
        assert schema_versions(unmigrated_database_url) is None
        release = stack.enter_context(dyno("release", lines["release"], env, folders["release"], logs))
        assert release.process.wait(timeout=120) == 0, release.log()
        assert schema_versions(unmigrated_database_url) == list(range(1, latest_version() + 1)), release.log()

        # web: up, and unhealthy until a worker beats (its heartbeat can only reach it through the database).
        web = stack.enter_context(dyno("web", lines["web"], web_env, folders["web"], logs))
        first = wait_until(lambda: web.running() and health(web_url), 60, "the web line to answer")
        assert first[0] == 503 and first[1]["store"] == "ok" and first[1]["worker_heartbeat_age_seconds"] is None
        wait_until(lambda: web.running() and web.log().count("Booting worker") >= 2, 60, "both gunicorn workers")

        worker = stack.enter_context(dyno("worker", lines["worker"], env, folders["worker"], logs))
        wait_until(lambda: worker.running() and "tweetbot.worker: started" in worker.log(), 60, "the worker to start")
        wait_until(lambda: (health(web_url) or (0, {}))[0] == 200, 30, "/healthz to answer 200")

        # sign in, Connect through the sandbox's consent page, back on the dashboard.
        browser = HttpBrowser(web_url)
        assert browser.sign_in().status_code == 302
        start = browser.post("/connect")
        assert start.status_code == 302 and start.headers["Location"].startswith(sandbox.url), start.text
        callback = drive_consent(start.headers["Location"], USERNAME)
        assert callback.startswith(web_url + "/oauth/callback?"), callback
        landed = browser.get(callback[len(web_url):])
        assert landed.status_code == 302 and landed.headers["Location"] == "/", landed.text
        page = html.unescape(browser.get("/").text)
        assert f"Connected @{USERNAME}" in page
        accounts = page.split('id="accounts"')[1].split('id="compose"')[0]
        assert f'data-account="@{USERNAME}"' in accounts and "active" in accounts

        # the worker, on a disk of its own, refreshes the token the web process stored.
        store = open_test_store(env)
        stack.callback(store.close)
        found = store.find_account(USERNAME)
        assert found is not None
        user_id = found.user_id
        wait_until(lambda: stored_refreshes(store, user_id) >= 1, 60, "a 'refreshed' event from the worker")
        refreshed_at_x = [e for e in sandbox.token_events("refreshed") if e.get("user_id") == user_id]
        assert refreshed_at_x, sandbox.token_events()
        assert f"refreshed @{USERNAME}" in worker.log()

        # a post queued on the dashboard and one with `tweetbot post` from yet another empty folder.
        from_web, from_cli = "Hello from the web dyno", "Hello from a one-off dyno"
        queued = browser.post("/posts", {"account": user_id, "part": from_web, "due_at": "now", "when": "at"})
        assert queued.status_code == 303, html.unescape(queued.text)
        folders["cli"].mkdir()
        cli = subprocess.run(shell(f"tweetbot post {shlex.quote(from_cli)} --at now --account @{USERNAME}"),
                             cwd=folders["cli"], env=env, capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        wait_until(lambda: posted(sandbox, from_web) and posted(sandbox, from_cli), 60, "both posts at the sandbox")
        wait_until(lambda: not store.queued_posts(), 30, "the queue to empty")
        assert len(posted(sandbox, from_web)) == 1 and len(posted(sandbox, from_cli)) == 1
        finished = {p.parts[0]: p for p in store.history(limit=100)}
        worker_name = f"{socket.gethostname()}:{worker.process.pid}"
        for text in (from_web, from_cli):
            assert finished[text].status == POSTED and finished[text].claimed_by == worker_name, finished[text]
        after = store.find_account(USERNAME)
        assert after is not None and after.status == ACTIVE, after
        assert sandbox.reuse_count() == 0  # every refresh spent the newest refresh token: the chain held
        history = html.unescape(browser.get("/").text).split('id="history"')[1]
        assert from_web in history and from_cli in history

        health_now = health(web_url)
        assert health_now is not None and health_now[0] == 200, health_now

        # stopped as the platform stops dynos: SIGTERM, and both exit cleanly.
        assert worker.terminate() == 0, worker.log()
        assert web.terminate() == 0, web.log()

    # no disk was shared, and none was needed: no process left a file store (or anything) in its folder.
    left = {name: files_in(folder) for name, folder in folders.items()}
    assert left == {name: [] for name in folders}, left
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".json", ".jsonl", ".lock")]
