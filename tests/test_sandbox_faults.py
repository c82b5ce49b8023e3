"""Injected faults: errors, latency, dropped connections, and "stored, but the answer was lost"."""
from __future__ import annotations

import socket
import time

import pytest
import requests
import tweepy

from bot.transport import mount_api_base

from sandbox_helpers import SandboxControl, SpecRecorder

SERVICE_UNAVAILABLE = {"title": "Service Unavailable", "type": "about:blank", "status": 503,
                       "detail": "Service Unavailable"}


@pytest.fixture
def http(sandbox: SandboxControl, xcheck: SpecRecorder) -> requests.Session:
    session = xcheck.attach(requests.Session())
    session.headers["Authorization"] = "Bearer " + sandbox.grant("sandbox_alice")["access_token"]
    return session


def post(sandbox: SandboxControl, http: requests.Session, text: str, timeout: float = 10) -> requests.Response:
    return http.post(sandbox.url + "/2/tweets", json={"text": text}, timeout=timeout)


def test_status_fault_answers_without_doing_the_work(sandbox: SandboxControl, http: requests.Session) -> None:
    sandbox.fault("POST /2/tweets", "status", status=503, times=1)
    failed = post(sandbox, http, "not stored")
    assert failed.status_code == 503 and failed.json() == SERVICE_UNAVAILABLE
    assert sandbox.posts() == []
    assert post(sandbox, http, "stored").status_code == 201  # `times` used up: the fault is gone
    assert sandbox.state("faults")["faults"] == []
    assert sandbox.state("request_counts")["request_counts"]["POST /2/tweets"] == 2


def test_after_skips_requests_and_other_endpoints_are_untouched(sandbox: SandboxControl, http: requests.Session) -> None:
    sandbox.fault("POST /2/tweets", "status", status=500, after=1, times=1)
    assert post(sandbox, http, "first").status_code == 201
    assert http.get(sandbox.url + "/2/users/me", timeout=10).status_code == 200
    assert post(sandbox, http, "second").status_code == 500
    assert post(sandbox, http, "third").status_code == 201


def test_probability_fires_some_of_the_time(sandbox: SandboxControl, http: requests.Session) -> None:
    sandbox.configure(rate_limits=False)
    sandbox.fault("GET /2/users/me", "status", status=502, probability=0.5)
    codes = [http.get(sandbox.url + "/2/users/me", timeout=10).status_code for _ in range(40)]
    assert 502 in codes and 200 in codes and set(codes) == {200, 502}
    sandbox.clear_faults()
    sandbox.fault("GET /2/users/me", "status", status=502, probability=0.0)
    assert all(http.get(sandbox.url + "/2/users/me", timeout=10).status_code == 200 for _ in range(5))


def test_drop_closes_the_connection_without_an_answer(sandbox: SandboxControl, http: requests.Session) -> None:
    sandbox.fault("POST /2/tweets", "drop", times=1)
    with pytest.raises(requests.ConnectionError):
        post(sandbox, http, "lost before storing")
    assert sandbox.posts() == []
    assert post(sandbox, http, "the next connection works").status_code == 201


def test_drop_sends_no_bytes_at_all(sandbox: SandboxControl) -> None:
    sandbox.fault("GET /2/users/me", "drop", times=1)
    host, port = sandbox.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GET /2/users/me HTTP/1.1\r\nHost: sandbox\r\n\r\n")
        assert raw.recv(1024) == b""


def test_store_then_503_keeps_the_post(sandbox: SandboxControl, http: requests.Session) -> None:
    sandbox.fault("POST /2/tweets", "store_then_status", status=503, times=1)
    answer = post(sandbox, http, "stored but unacknowledged")
    assert answer.status_code == 503 and answer.json() == SERVICE_UNAVAILABLE
    assert [p["text"] for p in sandbox.posts()] == ["stored but unacknowledged"]
    # Retrying blindly is the duplicate the bot must avoid; reading the timeline settles it.
    assert post(sandbox, http, "stored but unacknowledged").status_code == 403
    user_id = sandbox.user("sandbox_alice")["id"]
    timeline = http.get(f"{sandbox.url}/2/users/{user_id}/tweets", timeout=10).json()
    assert [p["text"] for p in timeline["data"]] == ["stored but unacknowledged"]


def test_store_then_drop_keeps_the_post_and_tweepy_sees_a_connection_error(
        sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    client = tweepy.Client(bearer_token=sandbox.grant("sandbox_bob")["access_token"])
    mount_api_base(client.session, sandbox.url)
    xcheck.attach(client.session)
    sandbox.fault("POST /2/tweets", "store_then_drop", times=1)
    with pytest.raises(requests.ConnectionError):
        client.create_tweet(text="did it go out?", user_auth=False)
    assert [p["text"] for p in sandbox.posts("sandbox_bob")] == ["did it go out?"]
    found = client.get_users_tweets(sandbox.user("sandbox_bob")["id"], user_auth=False)
    assert [t.text for t in found.data] == ["did it go out?"]


def test_latency_makes_a_client_time_out_while_x_still_stores(sandbox: SandboxControl, http: requests.Session) -> None:
    sandbox.fault("POST /2/tweets", "latency", latency=1.5, times=1)
    with pytest.raises(requests.Timeout):
        post(sandbox, http, "slow", timeout=0.3)
    deadline = time.monotonic() + 10
    while not sandbox.posts() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p["text"] for p in sandbox.posts()] == ["slow"]


def test_a_lost_refresh_answer_then_a_retry_is_a_reuse(sandbox: SandboxControl) -> None:
    """The crash-between-answer-and-write case: X rotated, the client never heard; retrying reuses."""
    pair = sandbox.grant("sandbox_carol")
    server = sandbox.server
    sandbox.fault("POST /2/oauth2/token", "store_then_drop", times=1)
    form = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
    with pytest.raises(requests.ConnectionError):
        requests.post(sandbox.url + "/2/oauth2/token", data=form, auth=(server.client_id, server.client_secret),
                      timeout=10)
    retry = requests.post(sandbox.url + "/2/oauth2/token", data=form, auth=(server.client_id, server.client_secret),
                          timeout=10)
    assert retry.status_code == 400
    assert [e["kind"] for e in sandbox.token_events()] == ["issued", "refreshed", "reuse_refused", "revoked"]
    assert sandbox.reuse_count() == 1


def test_wildcard_faults_and_fault_control(sandbox: SandboxControl, http: requests.Session) -> None:
    fault = sandbox.fault("*", "status", status=500)
    assert fault["id"] and fault["endpoint"] == "*"
    assert http.get(sandbox.url + "/2/users/me", timeout=10).status_code == 500
    assert post(sandbox, http, "x").status_code == 500
    assert requests.get(sandbox.url + "/_sandbox/state", timeout=10).status_code == 200  # control is never faulted
    removed = requests.delete(f"{sandbox.url}/_sandbox/faults/{fault['id']}", timeout=10).json()
    assert removed == {"removed": 1}
    assert http.get(sandbox.url + "/2/users/me", timeout=10).status_code == 200
    bad = requests.post(sandbox.url + "/_sandbox/faults", json={"endpoint": "POST /2/tweets", "mode": "explode"},
                        timeout=10)
    assert bad.status_code == 400 and "mode" in bad.json()["error"]
