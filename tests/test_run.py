"""`tweetbot run` (what `make run` starts): web app, worker and sandbox, and /healthz says so."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TWEETBOT = str(Path(sys.executable).with_name("tweetbot"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as answer:
        return answer.code, json.load(answer)


def wait_for(url: str, process: subprocess.Popen, until, seconds: float = 60) -> tuple[int, dict]:
    """GET `url` until `until(status, body)` holds; fails if the process dies or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, process.communicate()
        try:
            status, body = get(url)
            if until(status, body):
                return status, body
        except (urllib.error.URLError, ConnectionError):
            pass
        assert time.monotonic() < deadline, f"{url} did not answer as expected within {seconds} s"
        time.sleep(0.2)


def test_run_starts_web_worker_and_sandbox_and_healthz_answers(tmp_path: Path) -> None:
    subprocess.run([TWEETBOT, "init"], cwd=tmp_path, check=True, capture_output=True)
    port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"X_CLIENT_ID", "SECRET_KEY", "TOKEN_KEY"}}
    env.update(PORT=str(port), SANDBOX_PORT=str(sandbox_port))
    process = subprocess.Popen([TWEETBOT, "run"], cwd=tmp_path, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        status, body = wait_for(f"http://127.0.0.1:{port}/healthz", process,
                                until=lambda status, body: status == 200)
        assert body["store"] == "ok" and body["status"] == "ok"
        assert 0 <= body["worker_heartbeat_age_seconds"] < 120
        sandbox_status, users = get(f"http://127.0.0.1:{sandbox_port}/_sandbox/users")
        assert sandbox_status == 200 and users["users"]
        # The demo sandbox's tokens expire a minute past the refresh margin: a refresh shows up soon.
        assert get(f"http://127.0.0.1:{sandbox_port}/_sandbox/config")[1]["access_token_lifetime"] == 600 + 60
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert "Booting worker" in output  # gunicorn
    assert "tweetbot.worker: started" in output
