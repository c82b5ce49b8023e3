"""Connecting an X account (the OAuth 2.0 consent flow) and disconnecting one.

`POST /connect` starts a flow: a fresh state and PKCE verifier (from `XClient`), kept in
this browser's signed session only (never in a module global: X's own tutorial keeps
one verifier for every visitor), then off to X's consent page. Because the flow lives
in the cookie, the callback may land on any gunicorn worker.

`GET /oauth/callback` is the one page a signed-out request may reach, and it trusts
nothing it did not start: the `state` X sends back must equal this session's, else 400
and nothing is stored. Then a denial, a missing code or a spent code each get a page
that says so; otherwise the code is exchanged (with the verifier), `/2/users/me` says
who consented, and `bot.accounts.connect` stores the account.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from oauthlib.oauth2 import OAuth2Error

from bot import accounts
from bot.xclient import ClientRejected, TokenRejected, TokenSet, XError, states_match
from web.db import settings, store, x_client

log = logging.getLogger("tweetbot.web.connect")
bp = Blueprint("connect", __name__)

FLOW_KEY = "oauth_flow"


def message(title: str, text: str, status: int) -> ResponseReturnValue:
    """A page with one message and a way back to the dashboard."""
    return render_template("message.html", title=title, message=text), status


@bp.post("/connect")
def start() -> ResponseReturnValue:
    """Start the consent flow for this browser and send it to X's consent page."""
    try:
        consent = x_client().start_consent()
    except OAuth2Error as exc:  # e.g. oauthlib refusing a plain-http consent URL outside the sandbox
        log.error("cannot start the consent flow: %s", exc.error)
        return message("Cannot start connecting", f"The consent URL {settings().authorize_url} was refused "
                       f"({exc.error}); X's consent page must be served over https.", 500)
    session[FLOW_KEY] = {"state": consent.state, "verifier": consent.code_verifier}
    log.info("consent flow started")
    return redirect(consent.url)


@bp.get("/oauth/callback")
def callback() -> ResponseReturnValue:
    """Finish the flow X (or the sandbox) sends the browser back with."""
    flow: dict[str, Any] | None = session.get(FLOW_KEY)
    if not flow:
        log.warning("callback refused: this browser started no consent flow")
        return message("No connection was started here",
                       "This browser has no consent flow in progress (it may have finished already, or the link "
                       "came from elsewhere). Nothing was stored. Press Connect on the dashboard to start one.",
                       400)
    if not states_match(flow.get("state"), request.args.get("state")):
        log.warning("callback refused: state does not match this browser's flow")
        return message("This answer from X does not belong to your connection",
                       "The state X sent back does not match the one this browser started with, so the answer "
                       "was refused and nothing was stored. Press Connect to start again.", 400)
    error = request.args.get("error")
    if error:
        session.pop(FLOW_KEY, None)
        if error == "access_denied":
            log.info("consent denied by the user")
            return message("Nothing was connected",
                           "Access was not granted at X (Cancel was pressed), so no account was connected. "
                           "Press Connect whenever you want to try again.", 200)
        log.warning("consent failed at X: %r", error)
        return message("X did not grant access", f"X answered with the error {error!r}. Nothing was stored.", 400)
    code = request.args.get("code")
    if not code:
        session.pop(FLOW_KEY, None)
        return message("X sent no authorization code",
                       "The answer from X carries no code, so there is nothing to connect. Press Connect to "
                       "start again.", 400)
    return _finish(code, flow["verifier"])


def _finish(code: str, verifier: str) -> ResponseReturnValue:
    """Exchange the code, look the user up, store the account; every failure gets its own page.

    The flow ends here whatever happens: the exchange spends the code, so a new flow is the way on.
    """
    session.pop(FLOW_KEY, None)
    x = x_client()
    try:
        tokens = x.exchange_code(code, verifier)
    except TokenRejected as exc:
        log.warning("callback refused: %s", exc)
        return message("This authorization code cannot be used",
                       "X refused the code: it was already used, or it expired (a code lives 30 seconds and "
                       "works once). Nothing was stored. Press Connect to start again.", 400)
    except ClientRejected as exc:
        log.error("X refused our client credentials: %s", exc)
        return message("X refused this app's credentials",
                       "X did not accept the app's client id and secret (X_CLIENT_ID, X_CLIENT_SECRET): check "
                       "them against the developer portal. Nothing was stored.", 502)
    except XError as exc:
        log.warning("code exchange failed: %s", exc)
        return message("X did not answer", "X could not be reached to finish connecting. Nothing was stored; "
                       "press Connect to try again.", 502)
    try:
        me = x.api(tokens.access_token).me()
    except XError as exc:
        log.warning("looking up the consenting user failed: %s", exc)
        _revoke_quietly(tokens)
        return message("X did not say who you are", "The tokens were granted but looking up the account "
                       "failed, so they were revoked and nothing was stored. Press Connect to try again.", 502)
    account = accounts.connect(store(), tokens, me)
    flash(f"Connected {account.handle}", "ok")
    return redirect(url_for("dashboard.index"))


def _revoke_quietly(tokens: TokenSet) -> None:
    """Give back tokens we will not keep (best effort: they expire anyway)."""
    for token in (tokens.refresh_token, tokens.access_token):
        if token:
            try:
                x_client().revoke(token)
            except XError as exc:
                log.warning("could not revoke unused tokens: %s", type(exc).__name__)


@bp.post("/accounts/<int:user_id>/disconnect")
def disconnect(user_id: int) -> ResponseReturnValue:
    """Revoke the account's tokens at X and forget them here; its queued posts stay, held."""
    if store().get_account(str(user_id)) is None:
        flash("No such account.", "error")
        return redirect(url_for("dashboard.index"))
    account = accounts.disconnect(store(), x_client(), str(user_id))
    if account.last_error:
        flash(f"Disconnected {account.handle}, but {account.last_error}", "error")
    else:
        flash(f"Disconnected {account.handle}: its tokens are revoked at X and deleted here.", "ok")
    return redirect(url_for("dashboard.index"))

