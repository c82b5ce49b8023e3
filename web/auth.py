"""Admin sign-in: one password (ADMIN_PASSWORD), a lockout against guessing, sign-out.

Every page needs a signed-in session except `/healthz`, the sign-in page itself and
the OAuth callback (which makes its own check: the `state` it gets back must be the
one this browser's session holds, and only a signed-in browser can start a flow).

Failed tries are counted per client address in the store's meta, not in process
memory, so the count holds across gunicorn workers and restarts: after
`MAX_FAILURES` failures in a row the address is refused for `LOCKOUT`, and a refused
try touches nothing (it is not even checked, so a right password does not help).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from bot.models import utcnow
from bot.store import Repository
from web import settings, store

log = logging.getLogger("tweetbot.web.auth")
bp = Blueprint("auth", __name__)

PUBLIC_ENDPOINTS = frozenset({"auth.sign_in", "health.healthz", "connect.callback", "static"})
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
FAILURES_KEY = "signin_failures"


def signed_in() -> bool:
    return session.get("signed_in") is True


@bp.before_app_request
def require_sign_in() -> ResponseReturnValue | None:
    """Send a browser that has not signed in to the sign-in page (any method, any path)."""
    if request.endpoint in PUBLIC_ENDPOINTS or signed_in():
        return None
    target = request.full_path if request.method == "GET" and request.endpoint else None
    return redirect(url_for("auth.sign_in", next=target), 303)


@bp.route("/signin", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    target = safe_next(request.args.get("next"))
    if request.method == "GET":
        return redirect(target) if signed_in() else render_template("signin.html", next=target)
    address = request.remote_addr or "unknown"
    now = utcnow()
    until = locked_until(store(), address, now)
    if until is not None:
        return _locked_out(until, now)
    if not password_matches(request.form.get("password", ""), settings().admin_password):
        until = record_failure(store(), address, now)
        log.warning("failed sign-in from %s", address)
        if until is not None:
            return _locked_out(until, now)
        return render_template("signin.html", next=target, error="That is not the password."), 401
    clear_failures(store(), address)
    session.clear()
    session.permanent = True
    session["signed_in"] = True
    log.info("signed in from %s", address)
    return redirect(target)


@bp.post("/signout")
def sign_out() -> ResponseReturnValue:
    session.clear()
    flash("Signed out.", "ok")
    return redirect(url_for("auth.sign_in"))


def _locked_out(until: datetime, now: datetime) -> ResponseReturnValue:
    minutes = max(1, round((until - now).total_seconds() / 60))
    message = (f"Too many wrong passwords from your address: sign-in is closed to it for "
               f"{minutes} more min.")
    headers = {"Retry-After": str(max(1, int((until - now).total_seconds())))}
    return render_template("signin.html", next=None, error=message, locked=True), 429, headers


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path on this site, never another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("dashboard.index")


def password_matches(given: str, expected: str) -> bool:
    """Constant time, whatever the lengths (both sides are hashed to the same size first)."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                               hashlib.sha256(expected.encode()).digest())


# -- failure counts, shared by every process through the store ---------------------

def locked_until(repo: Repository, address: str, now: datetime) -> datetime | None:
    """When the lockout of `address` ends, if it is locked out now."""
    entry = (repo.get_meta(FAILURES_KEY) or {}).get(address)
    until = entry and entry.get("locked_until")
    if until and datetime.fromisoformat(until) > now:
        return datetime.fromisoformat(until)
    return None


def record_failure(repo: Repository, address: str, now: datetime) -> datetime | None:
    """Count one failure; returns the lockout's end when this failure locks the address."""
    with repo.transaction():
        table = _current(repo.get_meta(FAILURES_KEY) or {}, now)
        count = table.get(address, {}).get("count", 0) + 1
        entry: dict[str, Any] = {"count": count, "last": now.isoformat()}
        if count >= MAX_FAILURES:
            entry["locked_until"] = (now + LOCKOUT).isoformat()
        table[address] = entry
        repo.set_meta(FAILURES_KEY, table)
    return now + LOCKOUT if count >= MAX_FAILURES else None


def clear_failures(repo: Repository, address: str) -> None:
    """Forget an address's failures after a right password (no write when there are none)."""
    with repo.transaction():
        table = repo.get_meta(FAILURES_KEY) or {}
        if address in table:
            repo.set_meta(FAILURES_KEY, {k: v for k, v in table.items() if k != address})


def _current(table: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The entries still in force: a failure counts for `LOCKOUT`, a lockout until it ends."""
    def live(entry: dict[str, Any]) -> bool:
        last = datetime.fromisoformat(entry["last"])
        until = entry.get("locked_until")
        return now - last < LOCKOUT or (until is not None and datetime.fromisoformat(until) > now)
    return {address: dict(entry) for address, entry in table.items() if live(entry)}
