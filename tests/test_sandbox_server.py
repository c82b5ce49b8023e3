"""The sandbox process (`tweetbot sandbox`, `python -m sandbox`): HTTP/1.1 keep-alive, the client it registers."""
from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from conftest import free_port, start_sandbox, stop_process
from sandbox_helpers import SandboxControl


def test_connections_are_kept_alive(sandbox: SandboxControl) -> None:
    host, port = sandbox.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("GET", "/_sandbox/clock")
    first = connection.getresponse()
    first.read()
    socket_used = connection.sock
    assert first.getheader("Connection") is None and first.version == 11
    # A refused request whose body the sandbox never reads: the body must not leak into the next request.
    connection.request("POST", "/2/tweets", body=b'{"text": "' + b"x" * 50000 + b'"}',
                       headers={"Content-Type": "application/json", "Authorization": "Bearer nope"})
    refused = connection.getresponse()
    assert refused.status == 401
    refused.read()
    connection.request("GET", "/_sandbox/clock")
    third = connection.getresponse()
    assert third.status == 200 and b'"now"' in third.read()
    assert connection.sock is socket_used
    connection.close()


def test_the_settings_client_and_tier_are_registered(tmp_path: Path) -> None:
    server = start_sandbox(tmp_path, X_CLIENT_ID="my-x-app", X_TIER="basic", PUBLIC_URL="https://bot.example.org")
    try:
        state = requests.get(server.url + "/_sandbox/state", params={"only": "clients,config"}, timeout=10).json()
        assert state["clients"] == [{"client_id": "my-x-app", "confidential": False,
                                     "redirect_uris": ["https://bot.example.org/oauth/callback"]}]
        assert state["config"]["tier"] == "basic"
        assert "X sandbox on " + server.url in server.log()
    finally:
        stop_process(server.process)
    assert server.process.returncode is not None


def test_python_m_sandbox_runs_on_its_own(tmp_path: Path) -> None:
    """`python -m sandbox` needs no tweetbot settings: its client, tier and lifetimes come from its arguments."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "X_"))}
    env.update(PYTHONUNBUFFERED="1", SANDBOX_CLIENT_SECRET="their-secret")
    log_path = tmp_path / "sandbox.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", str(port), "--client-id", "their-app",
             "--redirect-uri", "http://localhost:8000/cb", "--redirect-uri", "http://localhost:8000/cb2",
             "--tier", "free", "--token-lifetime", "30", "--media-processing-seconds", "2.5"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if requests.get(url + "/_sandbox/clock", timeout=1).ok:
                    break
            except requests.RequestException:  # not listening yet, or busy booting
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
        state = requests.get(url + "/_sandbox/state", params={"only": "clients,config"}, timeout=10).json()
        assert state["clients"] == [{"client_id": "their-app", "confidential": True,
                                     "redirect_uris": ["http://localhost:8000/cb", "http://localhost:8000/cb2"]}]
        config = state["config"]
        assert (config["tier"], config["access_token_lifetime"], config["media_processing_seconds"]) == ("free", 30, 2.5)
        # The secret from SANDBOX_CLIENT_SECRET is the one the token endpoint takes (past the client check
        # to the grant type, which the sandbox does not serve); another is refused.
        def token_call(secret: str) -> requests.Response:
            return requests.post(url + "/2/oauth2/token", auth=("their-app", secret),
                                 data={"grant_type": "client_credentials"}, timeout=10)
        assert token_call("their-secret").json()["error"] == "unsupported_grant_type"
        assert token_call("sandbox-secret").status_code == 401
        assert f"X sandbox on {url}" in log_path.read_text()
    finally:
        stop_process(process)


def test_tweetbot_sandbox_runs_python_m_sandbox_with_the_secret_off_the_command_line(tmp_path: Path) -> None:
    """`tweetbot sandbox` becomes `python -m sandbox` (same process) with the bot's confidential client;
    the secret is in its environment, not its argv, and a `sandbox` module in the directory does not shadow it."""
    (tmp_path / "sandbox.py").write_text("raise SystemExit('the wrong sandbox')\n")
    server = start_sandbox(tmp_path, X_CLIENT_ID="my-x-app", X_CLIENT_SECRET="my-x-secret-value")
    try:
        state = requests.get(server.url + "/_sandbox/state", params={"only": "clients"}, timeout=10).json()
        assert state["clients"][0]["client_id"] == "my-x-app" and state["clients"][0]["confidential"] is True
        cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")
        assert [b"-m", b"sandbox"] == cmdline[2:4] and b"my-x-app" in cmdline
        assert not any(b"my-x-secret-value" in arg for arg in cmdline)
    finally:
        stop_process(server.process)
