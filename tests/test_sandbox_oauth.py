"""The sandbox's OAuth 2.0 server refuses what X refuses, with X's bodies (x-api-facts §1)."""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
import requests

from sandbox_helpers import SandboxControl, SpecRecorder, drive_consent, query_of, read_consent_page, x_spec

VERIFIER = "v3rifier-" + "x" * 60
SCOPES = "tweet.read tweet.write users.read offline.access"
INVALID_TOKEN = {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}
INVALID_CODE = {"error": "invalid_request", "error_description": "Value passed for the authorization code was invalid."}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize_url(sandbox: SandboxControl, **overrides: str | None) -> str:
    """An authorize URL for the settings client; an override of None leaves the parameter out."""
    server = sandbox.server
    params: dict[str, str | None] = {
        "response_type": "code", "client_id": server.client_id, "redirect_uri": server.redirect_uri,
        "scope": SCOPES, "state": "s" * 30, "code_challenge": s256(VERIFIER), "code_challenge_method": "S256",
    }
    params.update(overrides)
    return sandbox.url + "/i/oauth2/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def get_code(sandbox: SandboxControl, username: str = "sandbox_alice", **overrides: str | None) -> str:
    return query_of(drive_consent(authorize_url(sandbox, **overrides), username))["code"]


def token_call(sandbox: SandboxControl, data: dict[str, str], basic: bool = True,
               secret: str | None = None) -> requests.Response:
    """POST the token endpoint as a confidential client (Basic auth) or with the form only."""
    server = sandbox.server
    auth = (server.client_id, secret or server.client_secret) if basic else None
    return requests.post(sandbox.url + "/2/oauth2/token", data=data, auth=auth, timeout=10)


def exchange(sandbox: SandboxControl, code: str, verifier: str | None = VERIFIER, **extra: str) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": sandbox.server.redirect_uri,
            "client_id": sandbox.server.client_id, **extra}
    if verifier is not None:
        data["code_verifier"] = verifier
    return token_call(sandbox, data)


def refresh(sandbox: SandboxControl, refresh_token: str, **extra: str) -> requests.Response:
    return token_call(sandbox, {"grant_type": "refresh_token", "refresh_token": refresh_token,
                                "client_id": sandbox.server.client_id, **extra})


Me = Callable[[str], requests.Response]


@pytest.fixture
def me(sandbox: SandboxControl, xcheck: SpecRecorder) -> Me:
    """`GET /2/users/me` with a given access token (answers checked against X's spec)."""
    http = xcheck.attach(requests.Session())

    def call(access_token: str) -> requests.Response:
        return http.get(sandbox.url + "/2/users/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=10)
    return call


# --- authorize ------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "error"), [
    ({"client_id": "nobody"}, "invalid_client"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "tweet.read tweet.everything"}, "invalid_scope"),
    ({"scope": None}, "invalid_scope"),
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge": "too-short"}, "invalid_request"),
    ({"code_challenge_method": "S512"}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"state": None}, "invalid_request"),
    ({"state": "s" * 501}, "invalid_request"),
])
def test_authorize_refuses_bad_parameters(sandbox: SandboxControl, overrides: dict, error: str) -> None:
    page = requests.get(authorize_url(sandbox, **overrides), allow_redirects=False, timeout=10)
    assert page.status_code == 400
    assert f'data-error="{error}"' in page.text
    assert 'name="decision"' not in page.text


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:5000/oauth/callback/",  # a trailing slash is another URI
    "http://localhost:5000/oauth/callback",
    "https://evil.example/oauth/callback",
])
def test_authorize_refuses_an_unregistered_callback_with_xs_415_body(sandbox: SandboxControl, reference,
                                                                     redirect_uri: str) -> None:
    answer = requests.get(authorize_url(sandbox, redirect_uri=redirect_uri), allow_redirects=False, timeout=10)
    assert answer.status_code == 400
    assert answer.json() == {"errors": [{"code": 415, "message": "Callback URL not approved for this client application."}]}
    x_spec(reference).check_error(answer.json()["errors"][0])


def test_consent_page_lists_users_and_a_500_char_state_is_fine(sandbox: SandboxControl) -> None:
    sandbox.create_user("demo_dave", "Dave")
    form = read_consent_page(authorize_url(sandbox, state="s" * 500))
    assert {"sandbox_alice", "sandbox_bob", "sandbox_carol", "demo_dave"} <= set(form.users)
    assert form.decisions == ["authorize", "cancel"]
    assert form.fields["state"] == "s" * 500


def test_cancel_redirects_with_access_denied_and_the_state(sandbox: SandboxControl) -> None:
    callback = drive_consent(authorize_url(sandbox, state="my-state"), decision="cancel")
    assert callback.startswith(sandbox.server.redirect_uri + "?")
    assert query_of(callback) == {"error": "access_denied", "state": "my-state"}


def test_authorize_redirects_with_state_and_code(sandbox: SandboxControl) -> None:
    callback = drive_consent(authorize_url(sandbox, state="abc"), "sandbox_carol")
    assert callback.startswith(sandbox.server.redirect_uri + "?")
    assert set(query_of(callback)) == {"state", "code"} and query_of(callback)["state"] == "abc"


# --- the code grant -------------------------------------------------------------------


def test_code_exchange_answers_xs_token_shape(sandbox: SandboxControl, me: Me) -> None:
    answer = exchange(sandbox, get_code(sandbox, "sandbox_bob"))
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"token_type", "expires_in", "access_token", "scope", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 7200 and body["scope"] == SCOPES
    assert answer.headers["Cache-Control"] == "no-store"
    assert me(body["access_token"]).json()["data"]["username"] == "sandbox_bob"


def test_without_offline_access_there_is_no_refresh_token(sandbox: SandboxControl) -> None:
    body = exchange(sandbox, get_code(sandbox, scope="users.read tweet.read")).json()
    assert body["scope"] == "users.read tweet.read"
    assert "refresh_token" not in body


def test_plain_pkce_works(sandbox: SandboxControl) -> None:
    code = get_code(sandbox, code_challenge=VERIFIER, code_challenge_method="plain")
    assert exchange(sandbox, code).status_code == 200


def test_wrong_verifier_is_refused(sandbox: SandboxControl) -> None:
    answer = exchange(sandbox, get_code(sandbox), verifier="another-verifier-" + "y" * 40)
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_request",
                             "error_description": "Value passed for the code verifier did not match the code challenge."}


def test_missing_verifier_is_refused(sandbox: SandboxControl) -> None:
    answer = exchange(sandbox, get_code(sandbox), verifier=None)
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_request", "error_description": "Missing required parameter [code_verifier]."}


def test_a_code_works_once(sandbox: SandboxControl) -> None:
    code = get_code(sandbox)
    assert exchange(sandbox, code).status_code == 200
    again = exchange(sandbox, code)
    assert again.status_code == 400 and again.json() == INVALID_CODE


def test_a_code_expires_after_30_seconds_of_sandbox_time(sandbox: SandboxControl) -> None:
    fresh, stale = get_code(sandbox), get_code(sandbox)
    sandbox.advance(25)
    assert exchange(sandbox, fresh).status_code == 200
    sandbox.advance(6)
    answer = exchange(sandbox, stale)
    assert answer.status_code == 400 and answer.json() == INVALID_CODE


def test_the_redirect_uri_must_match_the_codes(sandbox: SandboxControl) -> None:
    sandbox.register_client(sandbox.server.client_id, ["http://127.0.0.1:5000/other"])
    answer = exchange(sandbox, get_code(sandbox), redirect_uri="http://127.0.0.1:5000/other")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_a_confidential_client_must_send_basic_auth(sandbox: SandboxControl) -> None:
    code = get_code(sandbox)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": sandbox.server.redirect_uri,
            "code_verifier": VERIFIER, "client_id": sandbox.server.client_id}
    bare = token_call(sandbox, data, basic=False)
    assert bare.status_code == 401
    assert bare.json() == {"error": "unauthorized_client", "error_description": "Missing valid authorization header"}
    wrong = token_call(sandbox, data, secret="not-the-secret")
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized_client"
    assert sandbox.token_events() == []


def test_a_public_client_names_itself_in_the_body(sandbox: SandboxControl) -> None:
    sandbox.register_client("public-app", ["http://127.0.0.1:5002/cb"], client_secret=None)
    code = get_code(sandbox, client_id="public-app", redirect_uri="http://127.0.0.1:5002/cb")
    answer = requests.post(sandbox.url + "/2/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:5002/cb",
        "code_verifier": VERIFIER, "client_id": "public-app"})
    assert answer.status_code == 200 and answer.json()["access_token"]


# --- the refresh grant ----------------------------------------------------------------


def test_every_refresh_rotates_and_spends_the_old_token(sandbox: SandboxControl, me: Me) -> None:
    first = sandbox.grant("sandbox_alice")
    second = refresh(sandbox, first["refresh_token"]).json()
    third = refresh(sandbox, second["refresh_token"]).json()
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    assert third["scope"] == SCOPES
    assert me(third["access_token"]).status_code == 200
    assert [e["kind"] for e in sandbox.token_events()] == ["issued", "refreshed", "refreshed"]


def test_reusing_a_spent_refresh_token_revokes_the_chain(sandbox: SandboxControl, me: Me) -> None:
    first = sandbox.grant("sandbox_alice")
    second = refresh(sandbox, first["refresh_token"]).json()

    reuse = refresh(sandbox, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json() == INVALID_TOKEN
    # The whole chain is gone: the newest refresh token and access token too.
    assert refresh(sandbox, second["refresh_token"]).json() == INVALID_TOKEN
    assert me(second["access_token"]).status_code == 401

    events = sandbox.token_events()
    assert [e["kind"] for e in events] == ["issued", "refreshed", "reuse_refused", "revoked", "refresh_refused"]
    assert events[3]["reason"] == "reuse" and events[2]["username"] == "sandbox_alice"
    assert sandbox.reuse_count() == 1
    assert sandbox.state("chains")["chains"][0]["status"] == "revoked"


def test_reuse_without_chain_revocation_when_switched_off(sandbox: SandboxControl) -> None:
    sandbox.configure(reuse_revokes_chain=False, refresh_error="invalid_grant")
    first = sandbox.grant("sandbox_bob")
    second = refresh(sandbox, first["refresh_token"]).json()
    reuse = refresh(sandbox, first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json() == {"error": "invalid_grant", "error_description": "Value passed for the token was invalid."}
    assert refresh(sandbox, second["refresh_token"]).status_code == 200
    assert sandbox.reuse_count() == 1


def test_unknown_refresh_token_and_scope_widening_are_refused(sandbox: SandboxControl) -> None:
    assert refresh(sandbox, "made-up-token").json() == INVALID_TOKEN
    first = sandbox.grant("sandbox_alice", scopes=["tweet.read", "users.read", "offline.access"])
    wider = refresh(sandbox, first["refresh_token"], scope="tweet.read users.read offline.access tweet.write")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    same = refresh(sandbox, first["refresh_token"], scope="tweet.read users.read offline.access")
    assert same.status_code == 200 and same.json()["scope"] == "tweet.read users.read offline.access"
    assert sandbox.reuse_count() == 0


def test_refresh_token_lifetime_switch(sandbox: SandboxControl) -> None:
    sandbox.configure(refresh_token_lifetime=100)
    pair = sandbox.grant("sandbox_alice")
    sandbox.advance(101)
    assert refresh(sandbox, pair["refresh_token"]).json() == INVALID_TOKEN
    assert sandbox.token_events("refresh_refused")[0]["reason"] == "expired"


def test_grant_type_is_checked(sandbox: SandboxControl) -> None:
    missing = token_call(sandbox, {"client_id": sandbox.server.client_id})
    assert missing.json() == {"error": "invalid_request", "error_description": "Missing required parameter [grant_type]."}
    odd = token_call(sandbox, {"grant_type": "password", "client_id": sandbox.server.client_id})
    assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"


# --- revoke ---------------------------------------------------------------------------


def test_revoking_an_access_token(sandbox: SandboxControl, me: Me) -> None:
    pair = sandbox.grant("sandbox_carol")
    server = sandbox.server
    answer = requests.post(sandbox.url + "/2/oauth2/revoke", data={"token": pair["access_token"],
                           "token_type_hint": "access_token"}, auth=(server.client_id, server.client_secret), timeout=10)
    assert answer.status_code == 200 and answer.json() == {"revoked": True}
    assert me(pair["access_token"]).status_code == 401
    assert refresh(sandbox, pair["refresh_token"]).status_code == 200  # the grant itself lives on


def test_revoking_a_refresh_token_ends_the_chain(sandbox: SandboxControl, me: Me) -> None:
    pair = sandbox.grant("sandbox_carol")
    server = sandbox.server
    bare = requests.post(sandbox.url + "/2/oauth2/revoke", data={"token": pair["refresh_token"],
                         "client_id": server.client_id}, timeout=10)
    assert bare.status_code == 401  # client auth as at the token endpoint
    answer = requests.post(sandbox.url + "/2/oauth2/revoke", data={"token": pair["refresh_token"]},
                           auth=(server.client_id, server.client_secret), timeout=10)
    assert answer.json() == {"revoked": True}
    assert me(pair["access_token"]).status_code == 401
    assert refresh(sandbox, pair["refresh_token"]).json() == INVALID_TOKEN
    assert [e["kind"] for e in sandbox.token_events()][:2] == ["issued", "revoked"]
    assert sandbox.reuse_count() == 0


def test_control_revoke_user_plays_a_user_disconnecting_the_app(sandbox: SandboxControl, me: Me) -> None:
    pair = sandbox.grant("sandbox_bob")
    assert sandbox.revoke_user("sandbox_bob") == 1
    assert me(pair["access_token"]).status_code == 401
    assert refresh(sandbox, pair["refresh_token"]).json() == INVALID_TOKEN
