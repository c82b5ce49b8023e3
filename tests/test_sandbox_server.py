"""The `tweetbot sandbox` process: HTTP/1.1 keep-alive, and the client registered from the settings."""
from __future__ import annotations

import http.client
from pathlib import Path

import requests

from conftest import start_sandbox, stop_process
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
