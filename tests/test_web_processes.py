"""The web app as gunicorn runs it, in real processes: nothing lives in one process's memory.

Two gunicorn servers share the secrets and the store, as two workers (or two dynos
behind one router) do: a consent flow started on one finishes on the other, and a
lockout earned on one holds on the other. The sandbox is the real process too.
"""
from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
import requests

from bot.models import ACTIVE

from sandbox_helpers import SandboxControl, drive_consent
from web_support import HttpBrowser, account, gunicorn, web_env
from worker_support import read_by_server, wait_until

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out


def test_a_flow_started_on_one_process_finishes_on_another(tmp_path: Path, sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox)
    with gunicorn(tmp_path, sandbox, workers=1, env=env, name="first") as first:
        # The second server answers at its own port but is the same site: same PUBLIC_URL, secrets, store.
        with gunicorn(tmp_path, sandbox, workers=1, env=env, name="second", public_url=first.url) as second:
            on_first, on_second = HttpBrowser(first.url), HttpBrowser(second.url)
            on_first.http = on_second.http  # one browser: cookies for 127.0.0.1 go to both ports
            assert on_first.sign_in().status_code == 302

            start = on_first.post("/connect")
            assert start.status_code == 302
            callback = drive_consent(start.headers["Location"], "sandbox_carol")
            assert callback.startswith(first.url + "/oauth/callback?")
            landed = on_second.get(callback[len(first.url):])

            assert landed.status_code == 302 and landed.headers["Location"] == "/"
            assert "Connected @sandbox_carol" in on_second.get("/").text
            assert account(first.settings, "sandbox_carol").status == ACTIVE
            assert "POST /connect" in first.log() and "GET /oauth/callback" not in first.log()
            assert "GET /oauth/callback" in second.log()


def test_a_lockout_on_one_process_holds_on_another(tmp_path: Path, sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox)
    with gunicorn(tmp_path, sandbox, workers=1, env=env, name="first") as first:
        with gunicorn(tmp_path, sandbox, workers=1, env=env, name="second") as second:
            statuses = [HttpBrowser(first.url).sign_in("wrong password").status_code for _ in range(5)]
            sixth = HttpBrowser(second.url).sign_in()

            assert statuses == [401, 401, 401, 401, 429]
            assert sixth.status_code == 429
            assert re.search(r"closed to it for 1[45] more min", sixth.text)


def test_four_slow_clients_do_not_stall_the_web_app(tmp_path: Path, sandbox: SandboxControl) -> None:
    """Four connections that send part of their headers and then nothing hold what they hold; /healthz
    (on either gunicorn worker) still answers, quickly."""
    with gunicorn(tmp_path, sandbox) as server:  # as the Procfile runs it: 2 workers
        port = int(server.url.rsplit(":", 1)[1])
        slow = []
        for _ in range(4):
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the rest
            slow.append(client)
        try:
            wait_until(lambda: read_by_server(server.url, slow), 10, "the workers to take them up")
            took = []
            for _ in range(6):  # fresh connections, so both workers answer some
                started = time.monotonic()
                answer = requests.get(server.url + "/healthz", timeout=5, headers={"Connection": "close"})
                took.append(time.monotonic() - started)
                assert answer.status_code in (200, 503), answer.text  # 503: no worker beats here; it answered
            # A stalled worker would not answer within the 5 s timeout (gunicorn restarts it only after 30 s).
            print(f"/healthz with 4 slow clients holding connections: slowest {max(took):.3f} s of {len(took)}")
        finally:
            for client in slow:
                client.close()


def test_gunicorn_opens_no_control_socket_in_the_home_folder(tmp_path: Path, sandbox: SandboxControl) -> None:
    """gunicorn ≥ 25.1 listens on ~/.gunicorn/gunicorn.ctl by default: one path for all of a user's gunicorns."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**web_env(tmp_path, sandbox), "HOME": str(home)}
    with gunicorn(tmp_path, sandbox, env=env) as server:
        assert requests.get(server.url + "/healthz", timeout=10).status_code in (200, 503)
        log = server.log()
    assert list(home.iterdir()) == [], list(home.rglob("*"))
    assert "Control socket" not in log, log
