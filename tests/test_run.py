"""`tweetbot run` (what `make run` starts) serves the health page."""
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


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> tuple[int, dict]:
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, process.communicate()
        try:
            return get(url)
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_run_starts_the_web_app_and_healthz_answers(tmp_path: Path) -> None:
    subprocess.run([TWEETBOT, "init"], cwd=tmp_path, check=True, capture_output=True)
    port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"X_CLIENT_ID", "SECRET_KEY", "TOKEN_KEY"}}
    env.update(PORT=str(port), SANDBOX_PORT=str(sandbox_port))
    process = subprocess.Popen([TWEETBOT, "run"], cwd=tmp_path, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        status, body = wait_for(f"http://127.0.0.1:{port}/healthz", process)
        assert body["store"] == "ok"
        # No worker has written a heartbeat yet, so the check must say unhealthy.
        assert (status, body["status"], body["worker_heartbeat_age_seconds"]) == (503, "unhealthy", None)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert "Booting worker" in output
