"""The sandbox process (`tweetbot sandbox`, `python -m sandbox`): HTTP/1.1 keep-alive, the client it registers."""
from __future__ import annotations

import http.client
import io
import os
import pickle
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from bot.xclient import XClient

from conftest import free_port, start_sandbox, stop_process
from sandbox_helpers import SandboxControl
from web_support import web_settings


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


@pytest.mark.slow
def test_a_state_file_keeps_chains_posts_and_media_through_a_kill(tmp_path: Path) -> None:
    """Killed at once (nothing written on the way out) and started again on the same file, the sandbox still
    knows the token chain the bot holds, its posts, its media and what reads cost; the file is private;
    without --state, nothing."""
    state = tmp_path / "data" / "sandbox.state"
    state.parent.mkdir()
    first = start_sandbox(tmp_path / "first", args=("--state", str(state)))
    try:
        control = SandboxControl(first.url)
        granted = control.grant("sandbox_alice", scopes=["tweet.read", "tweet.write", "users.read",
                                                         "offline.access", "media.write"])
        pair = XClient(web_settings(tmp_path, control)).refresh(granted["refresh_token"])
        api = XClient(web_settings(tmp_path, control)).api(pair.access_token)
        post_id = api.create_post("kept across a restart")
        assert [found["id"] for found in api.recent_posts(granted["user"]["id"])] == [post_id]  # a billed read
        media_id = requests.post(first.url + "/2/media/upload", headers={"Authorization": f"Bearer {pair.access_token}"},
                                 files={"media": ("dot.png", png_bytes(), "image/png")},
                                 data={"media_category": "tweet_image"}, timeout=10).json()["data"]["id"]
    finally:
        first.process.kill()
        first.process.wait(timeout=10)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    second = start_sandbox(tmp_path / "second", args=("--state", str(state)))
    try:
        control = SandboxControl(second.url)
        again = XClient(web_settings(tmp_path, control)).refresh(pair.refresh_token)  # the chain goes on
        assert XClient(web_settings(tmp_path, control)).api(again.access_token).me()["username"] == "sandbox_alice"
        assert [p["id"] for p in control.posts("sandbox_alice")] == [post_id]
        assert media_id in [m["id"] for m in control.state("media")["media"]]
        assert control.state("chains")["chains"][0]["refreshes"] == 2 and control.reuse_count() == 0
        assert control.charges()["by_endpoint"] == {"GET /2/users/:id/tweets": 0.005}  # what reading cost
        assert f"state: {state} (the world as it was left)" in second.log()
    finally:
        stop_process(second.process)
    forgetful = start_sandbox(tmp_path / "third")
    try:
        assert SandboxControl(forgetful.url).state("chains")["chains"] == []
    finally:
        stop_process(forgetful.process)


def test_a_damaged_state_file_stops_the_sandbox_with_one_line_and_stays_as_it_was(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.state"
    state.write_bytes(b"\x80\x05not a world")
    done = subprocess.run([sys.executable, "-m", "sandbox", "--port", str(free_port()), "--state", str(state)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"sandbox: {state} is damaged or not a state file this sandbox wrote; move it away to start with a new world"]
    assert state.read_bytes() == b"\x80\x05not a world"


class Runs:
    """What an attacker's pickle holds: an object whose unpickling would run a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.command,)


def test_a_state_file_that_would_build_anything_but_sandbox_records_is_refused_unrun(tmp_path: Path) -> None:
    """The file is a pickle; reading it builds only the sandbox's own records: a pickle that would run a
    command stops the sandbox with the same one line, and the command never runs."""
    ran = tmp_path / "ran"
    state = tmp_path / "sandbox.state"
    state.write_bytes(pickle.dumps({"format": 1, "world": Runs(f"touch {ran}")}))
    before = state.read_bytes()
    done = subprocess.run([sys.executable, "-m", "sandbox", "--port", str(free_port()), "--state", str(state)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"sandbox: {state} is damaged or not a state file this sandbox wrote; move it away to start with a new world"]
    assert not ran.exists() and state.read_bytes() == before


def png_bytes() -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(image, format="PNG")
    return image.getvalue()
