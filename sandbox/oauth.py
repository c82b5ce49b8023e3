"""X's OAuth 2.0 server: the consent page, the token endpoint, revoke (x-api-facts §1).

`GET /i/oauth2/authorize` checks the seven parameters tweepy sends (as X does) and shows
a consent page: a real HTML form POSTed back to the same URL, so a browser and a
`requests`-driven test submit it alike. Authorize → 302 to the callback with `state` and
`code`; Cancel → 302 with `error=access_denied` and `state`.

`POST /2/oauth2/token` serves the code grant (PKCE S256/plain) and the refresh grant
(rotation; reuse detection lives in `Consent.refresh`, sandbox/consent.py). Confidential clients must send
Basic auth; public clients send `client_id` in the body (or Basic with an empty secret,
which is what requests-oauthlib sends for a client without a secret).
"""
from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, redirect, render_template, request
from flask.typing import ResponseReturnValue

from sandbox.consent import KNOWN_SCOPES
from sandbox.errors import OAuthError, SandboxError, callback_not_approved, oauth_missing, unauthorized_client
from sandbox.faults import x_endpoint
from sandbox.records import Client
from sandbox.state import current_world

bp = Blueprint("oauth", __name__)

AUTHORIZE_FIELDS = ("response_type", "client_id", "redirect_uri", "scope", "state",
                    "code_challenge", "code_challenge_method")
MAX_STATE = 500
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_PLAIN_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{1,128}$")  # see consent._VERIFIER


class AuthorizeRefused(SandboxError):
    """A refused authorize request: an HTML error page (X shows "Something went wrong")."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(400, {"error": error, "error_description": description})
        self.error, self.description = error, description

    def response(self) -> Response:
        """The HTML error page, status 400."""
        page = render_template("error.html", error=self.error, description=self.description)
        return Response(page, status=400, content_type="text/html; charset=utf-8")


def check_authorize(params: dict[str, str]) -> tuple[Client, tuple[str, ...]]:
    """Validate an authorize request as X does; the client and the requested scopes."""
    world = current_world()
    client = world.consent.client(params.get("client_id", ""))
    if client is None:
        raise AuthorizeRefused("invalid_client", "This app is not registered (unknown client_id).")
    if params.get("redirect_uri", "") not in client.redirect_uris:
        raise callback_not_approved()
    if params.get("response_type") != "code":
        raise AuthorizeRefused("unsupported_response_type", "response_type must be \"code\".")
    scopes = tuple(params.get("scope", "").split())
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if not scopes or unknown:
        raise AuthorizeRefused("invalid_scope", f"Unknown or missing scope: {' '.join(unknown) or '(none)'}.")
    state = params.get("state", "")
    if not state or len(state) > MAX_STATE:
        raise AuthorizeRefused("invalid_request", f"state is required and at most {MAX_STATE} characters.")
    method = params.get("code_challenge_method", "")
    challenge = params.get("code_challenge", "")
    if method not in ("S256", "plain"):
        raise AuthorizeRefused("invalid_request", "code_challenge_method must be S256 or plain.")
    pattern = _S256_CHALLENGE if method == "S256" else _PLAIN_CHALLENGE
    if not pattern.match(challenge):
        raise AuthorizeRefused("invalid_request", "code_challenge is missing or malformed.")
    return client, scopes


@bp.get("/i/oauth2/authorize")
@x_endpoint("GET /i/oauth2/authorize")
def authorize_page() -> ResponseReturnValue:
    """The consent page: pick a sandbox user, Authorize or Cancel."""
    params = {name: request.args.get(name, "") for name in AUTHORIZE_FIELDS}
    client, scopes = check_authorize(params)
    users = current_world().people.all()
    return render_template("consent.html", params=params, client=client, scopes=scopes, users=users)


@bp.post("/i/oauth2/authorize")
@x_endpoint("POST /i/oauth2/authorize")
def authorize_decision() -> ResponseReturnValue:
    """The consent form's answer: redirect to the callback with a code, or access_denied."""
    params = {name: request.form.get(name, "") for name in AUTHORIZE_FIELDS}
    client, scopes = check_authorize(params)
    if request.form.get("decision") != "authorize":
        return redirect(_callback(params["redirect_uri"], {"error": "access_denied", "state": params["state"]}))
    world = current_world()
    user = world.find_user(request.form.get("user_id", ""))
    if user is None:
        raise AuthorizeRefused("invalid_request", "Pick a sandbox user.")
    code = world.consent.issue_code(client.client_id, user.id, params["redirect_uri"], scopes,
                                    params["code_challenge"], params["code_challenge_method"])
    return redirect(_callback(params["redirect_uri"], {"state": params["state"], "code": code}))


def _callback(redirect_uri: str, query: dict[str, str]) -> str:
    """The callback URL with `query` appended (it may have a query already)."""
    return redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(query)


def authenticate_client() -> Client:
    """The calling client: Basic auth (required for confidential clients) or body `client_id`."""
    world = current_world()
    header = request.headers.get("Authorization", "")
    body_id = request.form.get("client_id")
    if header[:6].lower() == "basic ":
        try:
            client_id, _, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized_client() from None
        client = world.consent.client(client_id)
        if client is None or (body_id is not None and body_id != client_id):
            raise unauthorized_client()
        if (client.client_secret or "") != secret:
            raise unauthorized_client()
        return client
    if body_id is None:
        raise oauth_missing("client_id")
    client = world.consent.client(body_id)
    if client is None:
        raise unauthorized_client()
    if client.confidential:
        # X wants Basic auth from confidential clients (x-api-facts §1); whether it also takes
        # the secret in the form (RFC 6749 client_secret_post) is unconfirmed: a switch.
        if not world.options.accept_body_secret or request.form.get("client_secret") != client.client_secret:
            raise unauthorized_client()
    return client


def _token_answer(payload: dict[str, object]) -> Response:
    """The token endpoint's JSON with the no-store headers RFC 6749 asks for."""
    answer = jsonify(payload)
    answer.headers["Cache-Control"] = "no-store"
    answer.headers["Pragma"] = "no-cache"
    return answer


@bp.post("/2/oauth2/token")
@x_endpoint("POST /2/oauth2/token")
def token() -> ResponseReturnValue:
    """The code grant and the refresh grant."""
    client = authenticate_client()
    form = request.form
    grant_type = form.get("grant_type")
    if not grant_type:
        raise oauth_missing("grant_type")
    world = current_world()
    if grant_type == "authorization_code":
        for name in ("code", "redirect_uri", "code_verifier"):
            if not form.get(name):
                raise oauth_missing(name)
        answer = world.consent.redeem_code(client, form["code"], form["redirect_uri"], form["code_verifier"])
        return _token_answer(answer)
    if grant_type == "refresh_token":
        if not form.get("refresh_token"):
            raise oauth_missing("refresh_token")
        scopes = tuple(form.get("scope", "").split()) or None
        return _token_answer(world.consent.refresh(client, form["refresh_token"], scopes))
    raise OAuthError(400, "unsupported_grant_type", "Value passed for the grant type was invalid.")


@bp.post("/2/oauth2/revoke")
@x_endpoint("POST /2/oauth2/revoke")
def revoke() -> ResponseReturnValue:
    """Revoke an access or refresh token; X answers `{"revoked": true}` even for unknown ones."""
    client = authenticate_client()
    value = request.form.get("token")
    if not value:
        raise oauth_missing("token")
    current_world().consent.revoke(client, value)
    return jsonify({"revoked": True})
