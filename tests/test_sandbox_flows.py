"""The whole OAuth 2.0 + posting flow through the sandbox, as the bot and X's tutorial do it.

tweepy 4.17 and requests-oauthlib talk to `https://api.twitter.com`; the transport
adapter from `bot.transport` sends that to the sandbox (the bot's own seam), and the
consent form is posted like a person would. Every API answer is checked against X's
OpenAPI spec by the `xcheck` fixture.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re

import pytest
import tweepy
from oauthlib.oauth2.rfc6749.errors import InvalidClientIdError, UnauthorizedClientError
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from bot.transport import mount_api_base

from sandbox_helpers import DEFAULT_SCOPES, SandboxControl, SpecRecorder, drive_consent, query_of, to_sandbox

TOKEN_URL = "https://api.twitter.com/2/oauth2/token"
PUBLIC_CALLBACK = "http://127.0.0.1:5001/callback"


@pytest.fixture(autouse=True)
def insecure_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's callback is plain http on loopback; oauthlib refuses that otherwise."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def tweepy_consent(sandbox: SandboxControl, handler: tweepy.OAuth2UserHandler, username: str) -> dict:
    """tweepy's authorization URL → the consent page → the callback → `fetch_token`."""
    mount_api_base(handler, sandbox.url)
    callback = drive_consent(to_sandbox(handler.get_authorization_url(), sandbox.url), username)
    return handler.fetch_token(callback)


def post_read_delete(sandbox: SandboxControl, xcheck: SpecRecorder, access_token: str, username: str) -> None:
    """create_tweet → get_me → delete_tweet with tweepy, bearer = the user's token."""
    client = tweepy.Client(bearer_token=access_token)
    mount_api_base(client.session, sandbox.url)
    xcheck.attach(client.session)

    created = client.create_tweet(text=f"hello from {username}", user_auth=False)
    me = client.get_me(user_auth=False)
    assert me.data.username == username
    assert [p["text"] for p in sandbox.posts(username)] == [f"hello from {username}"]
    assert created.data["text"] == f"hello from {username}"

    assert client.delete_tweet(created.data["id"], user_auth=False).data == {"deleted": True}
    assert sandbox.posts(username) == []


def test_tweepy_flow_with_the_settings_client(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    server = sandbox.server
    handler = tweepy.OAuth2UserHandler(client_id=server.client_id, redirect_uri=server.redirect_uri,
                                       scope=DEFAULT_SCOPES, client_secret=server.client_secret)
    token = tweepy_consent(sandbox, handler, "sandbox_bob")
    assert token["token_type"] == "bearer" and token["expires_in"] == 7200
    assert sorted(token["scope"]) == sorted(DEFAULT_SCOPES)  # oauthlib makes it a list

    # tweepy has no refresh; the inherited OAuth2Session.refresh_token sends Basic auth (handler.auth).
    refreshed = handler.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert refreshed["access_token"] != token["access_token"]

    post_read_delete(sandbox, xcheck, refreshed["access_token"], "sandbox_bob")
    assert [e["kind"] for e in sandbox.token_events()] == ["issued", "refreshed"]
    assert xcheck.recorded, "the API answers were recorded for validation"


def test_tweepy_flow_with_a_public_client(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    sandbox.register_client("native-app", [PUBLIC_CALLBACK], client_secret=None)
    handler = tweepy.OAuth2UserHandler(client_id="native-app", redirect_uri=PUBLIC_CALLBACK, scope=DEFAULT_SCOPES)
    token = tweepy_consent(sandbox, handler, "sandbox_carol")

    # A public client has no Basic auth: it must name itself in the body.
    refreshed = handler.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"], client_id="native-app")
    post_read_delete(sandbox, xcheck, refreshed["access_token"], "sandbox_carol")


def tutorial_verifier() -> tuple[str, str]:
    """The code verifier and challenge exactly as X's Python tutorial makes them."""
    code_verifier = base64.urlsafe_b64encode(os.urandom(30)).decode("utf-8")
    code_verifier = re.sub("[^a-zA-Z0-9]+", "", code_verifier)
    code_challenge = hashlib.sha256(code_verifier.encode("utf-8")).digest()
    code_challenge = base64.urlsafe_b64encode(code_challenge).decode("utf-8").replace("=", "")
    return code_verifier, code_challenge


def tutorial_tokens(sandbox: SandboxControl, client_id: str, client_secret: str | None, redirect_uri: str,
                    username: str) -> tuple[OAuth2Session, dict]:
    """X's tutorial up to `fetch_token`, pointed at the sandbox by the bot's adapter."""
    oauth = OAuth2Session(client_id, redirect_uri=redirect_uri, scope=DEFAULT_SCOPES)
    mount_api_base(oauth, sandbox.url)
    code_verifier, code_challenge = tutorial_verifier()
    authorization_url, state = oauth.authorization_url(sandbox.url + "/i/oauth2/authorize",
                                                       code_challenge=code_challenge, code_challenge_method="S256")
    callback = drive_consent(authorization_url, username)
    assert query_of(callback)["state"] == state
    token = oauth.fetch_token(token_url=TOKEN_URL, client_secret=client_secret, code_verifier=code_verifier,
                              code=query_of(callback)["code"])
    return oauth, token


def test_tutorial_flow_confidential_client(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    server = sandbox.server
    oauth, token = tutorial_tokens(sandbox, server.client_id, server.client_secret, server.redirect_uri,
                                   "sandbox_alice")

    # The tutorial's refresh puts the secret in the form, not in Basic auth: X wants Basic.
    with pytest.raises(UnauthorizedClientError, match="Missing valid authorization header"):
        oauth.refresh_token(client_id=server.client_id, client_secret=server.client_secret, token_url=TOKEN_URL,
                            refresh_token=token["refresh_token"])
    refreshed = oauth.refresh_token(client_id=server.client_id, client_secret=server.client_secret,
                                    token_url=TOKEN_URL, refresh_token=token["refresh_token"],
                                    auth=HTTPBasicAuth(server.client_id, server.client_secret))
    assert refreshed["refresh_token"] != token["refresh_token"]

    # The switch for the unconfirmed case: X taking the form secret (then the tutorial's call works).
    sandbox.configure(accept_body_secret=True)
    again = oauth.refresh_token(client_id=server.client_id, client_secret=server.client_secret, token_url=TOKEN_URL,
                                refresh_token=refreshed["refresh_token"])
    post_read_delete(sandbox, xcheck, again["access_token"], "sandbox_alice")


def test_tutorial_flow_public_client(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    sandbox.register_client("spa-client", [PUBLIC_CALLBACK], client_secret=None)
    oauth, token = tutorial_tokens(sandbox, "spa-client", None, PUBLIC_CALLBACK, "sandbox_bob")
    refreshed = oauth.refresh_token(client_id="spa-client", client_secret=None, token_url=TOKEN_URL,
                                    refresh_token=token["refresh_token"])
    post_read_delete(sandbox, xcheck, refreshed["access_token"], "sandbox_bob")

    # The old refresh token is spent: oauthlib maps X's invalid_request to InvalidClientIdError.
    with pytest.raises(InvalidClientIdError, match="Value passed for the token was invalid"):
        oauth.refresh_token(client_id="spa-client", token_url=TOKEN_URL, refresh_token=token["refresh_token"])
    assert sandbox.reuse_count() == 1
