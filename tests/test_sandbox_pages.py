"""The sandbox's pages for people and its control API."""
from __future__ import annotations

import pytest
import requests

from sandbox_helpers import ControlError, SandboxControl, SpecRecorder


@pytest.fixture
def api(xcheck: SpecRecorder) -> requests.Session:
    """A session whose X answers are checked against the spec."""
    return xcheck.attach(requests.Session())


def tweet(api: requests.Session, sandbox: SandboxControl, token: str, text: str) -> str:
    answer = api.post(sandbox.url + "/2/tweets", json={"text": text}, headers={"Authorization": f"Bearer {token}"},
                      timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]["id"]


def test_index_lists_the_sandbox_users(sandbox: SandboxControl) -> None:
    page = requests.get(sandbox.url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    for username in ("sandbox_alice", "sandbox_bob", "sandbox_carol"):
        assert f'href="/{username}"' in page.text


def test_timeline_is_newest_first_and_escaped(sandbox: SandboxControl, api: requests.Session) -> None:
    token = sandbox.grant("sandbox_alice")["access_token"]
    older = tweet(api, sandbox, token, "first <script>alert('x')</script> & more")
    newer = tweet(api, sandbox, token, "second post")
    page = requests.get(sandbox.url + "/sandbox_alice", timeout=10).text
    assert page.index(f'id="post-{newer}"') < page.index(f'id="post-{older}"')
    assert "<script>alert" not in page
    assert "first &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in page
    assert 'id="empty"' in requests.get(sandbox.url + "/sandbox_bob", timeout=10).text


def test_deleted_posts_leave_the_timeline(sandbox: SandboxControl, api: requests.Session) -> None:
    token = sandbox.grant("sandbox_bob")["access_token"]
    post_id = tweet(api, sandbox, token, "soon gone")
    api.delete(f"{sandbox.url}/2/tweets/{post_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert "soon gone" not in requests.get(sandbox.url + "/sandbox_bob", timeout=10).text


def test_unknown_pages_and_api_paths_are_404(sandbox: SandboxControl) -> None:
    page = requests.get(sandbox.url + "/nobody_here", timeout=10)
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")
    api = requests.get(sandbox.url + "/2/spaces/1", timeout=10)
    assert api.status_code == 404 and api.headers["Content-Type"] == "application/problem+json"
    assert requests.put(sandbox.url + "/2/tweets", timeout=10).status_code == 405


def test_many_accounts_with_direct_grants(sandbox: SandboxControl, api: requests.Session) -> None:
    users = sandbox.create_users(500, prefix="bulk")
    assert len(users) == 500 and len({u["id"] for u in users}) == 500
    assert all(u["id"].isdigit() for u in users)
    tokens = [sandbox.grant(u["username"]) for u in users]
    assert len({t["refresh_token"] for t in tokens}) == 500
    me = api.get(sandbox.url + "/2/users/me", headers={"Authorization": "Bearer " + tokens[499]["access_token"]},
                      timeout=10)
    assert me.json()["data"]["username"] == users[499]["username"]
    issued = sandbox.token_events("issued")
    assert len(issued) == 500 and {e["via"] for e in issued} == {"grant"}
    assert len(sandbox.state("users")["users"]) == 503


def test_user_creation_is_checked(sandbox: SandboxControl) -> None:
    created = sandbox.create_user("demo_dave", "Dave D")
    assert created["name"] == "Dave D"
    for bad in ("demo_dave", "has space", "x" * 16):
        with pytest.raises(ControlError, match="400"):
            sandbox.create_user(bad)


def test_clients_can_be_added_and_callbacks_are_capped_at_ten(sandbox: SandboxControl) -> None:
    client = sandbox.register_client("sandbox-client", ["http://127.0.0.1:6000/oauth/callback"])
    assert client["confidential"] is True
    assert client["redirect_uris"] == [sandbox.server.redirect_uri, "http://127.0.0.1:6000/oauth/callback"]
    with pytest.raises(ControlError, match="at most 10"):
        sandbox.register_client("sandbox-client", [f"http://127.0.0.1:{7000 + n}/cb" for n in range(9)])
    public = sandbox.register_client("mobile", ["http://127.0.0.1:7001/cb"], client_secret=None)
    assert public["confidential"] is False


def test_reset_and_clock(sandbox: SandboxControl) -> None:
    sandbox.create_user("temp_user")
    sandbox.configure(tier="free")
    sandbox.fault("POST /2/tweets", "status")
    before = sandbox.now()
    after = sandbox.advance(3600)
    assert after - before >= 3600
    with pytest.raises(ControlError, match="forward"):
        sandbox.advance(-5)
    sandbox.reset()
    state = sandbox.state()
    assert [u["username"] for u in state["users"]] == ["sandbox_alice", "sandbox_bob", "sandbox_carol"]
    assert state["config"]["tier"] == "payg" and state["faults"] == [] and state["clock_offset"] == 0
    assert [u["id"] for u in state["users"]] == ["1720000000000000001", "1720000000000000002", "1720000000000000003"]
