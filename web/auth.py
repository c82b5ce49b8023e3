"""Admin sign-in: one password (ADMIN_PASSWORD), limits against guessing, sessions that can be ended.

Every page needs a signed-in session except `/healthz`, the sign-in page itself and
the OAuth callback (which makes its own check: the `state` it gets back must be the
one this browser's session holds, and only a signed-in browser can start a flow).

Guessing. Everything is kept in the store's meta, not in process memory, so it holds
across gunicorn workers, dynos and restarts. The client address is the one
`web.security.TrustedProxies` believes (a client cannot name it):
- per address: after `MAX_FAILURES` failures in a row the address is refused for
  `LOCKOUT`; a refused try touches nothing (it is not even checked, so a right password
  does not help). The table keeps at most `MAX_TRACKED` addresses, the oldest dropped.
- for everyone: wrong passwords spend a shared bucket of `GLOBAL_BURST` tries that
  refills one try every `GLOBAL_REFILL`; while it is empty a try is answered 429 with
  the seconds until the next one, so many addresses together guess at most one
  password per `GLOBAL_REFILL`. It never locks the admin out for good: it always
  refills, and an address that gave the right password in the last `KNOWN_FOR` is not
  held by it at all (only by its own per-address count).

Sessions. A session is signed in only while (a) it was made for today's ADMIN_PASSWORD
(a keyed hash of it is in the session), (b) it is younger than `SESSION_LIFETIME`,
counted from sign-in (not renewed by use), (c) it belongs to the store's current
session generation, which "Sign out everywhere" moves on, and (d) Sign out has not
ended it (its id is kept, until its lifetime is over, among the ended ones). A copied
cookie therefore stops working with its session.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from bot.crypto import same_secret
from bot.store import Repository
from web import api
from web.db import now, settings, store
from web.security import SESSION_LIFETIME

log = logging.getLogger("tweetbot.web.auth")
bp = Blueprint("auth", __name__)

PUBLIC_ENDPOINTS = frozenset({"auth.sign_in", "health.healthz", "connect.callback", "static"})
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MAX_TRACKED = 256  # addresses in the failure table; beyond, the oldest are dropped
GLOBAL_BURST = 20  # wrong passwords, from anywhere, before tries are spaced out
GLOBAL_REFILL = timedelta(seconds=30)  # then one more try per this long
KNOWN_FOR = timedelta(days=30)  # an address that signed in is spared the global limit this long
MAX_KNOWN = 16
MAX_ENDED = 100  # sessions ended one by one kept; beyond, every session ends (the generation moves on)
FAILURES_KEY = "signin_failures"
GLOBAL_KEY = "signin_global"
KNOWN_KEY = "signin_known"
SESSIONS_KEY = "sessions"


# -- the gate -----------------------------------------------------------------------

def signed_in() -> bool:
    """Whether this request's session is signed in now (see the module's four conditions)."""
    mark = session.get("auth")
    if session.get("signed_in") is not True or not isinstance(mark, dict):
        return False
    started = mark.get("at")
    if not isinstance(started, (int, float)) or isinstance(started, bool):
        return False
    age = now() - datetime.fromtimestamp(started, timezone.utc)
    if not timedelta(0) <= age < SESSION_LIFETIME:
        return False
    if not hmac.compare_digest(str(mark.get("pw", "")), password_tag()):
        return False
    state = sessions_state(store())
    return mark.get("gen") == state["generation"] and mark.get("id") not in state["ended"]


def require_sign_in() -> ResponseReturnValue | None:
    """A gate (`web.gates`): forget a session that is no longer signed in; send a browser that is not
    to the sign-in page."""
    if "signed_in" in session and not signed_in():
        session.clear()  # the answer replaces the cookie
    # The API (`web.api`) is a program with a key, never a session: its key alone judges it (and a path
    # under it that is no endpoint is its 404, not a sign-in page).
    if request.endpoint in PUBLIC_ENDPOINTS or api.is_api(request.path) or session.get("signed_in") is True:
        return None
    target = request.full_path if request.method == "GET" and request.endpoint else None
    return redirect(url_for("auth.sign_in", next=target), 303)


# -- the pages ----------------------------------------------------------------------

@bp.route("/signin", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    target = safe_next(request.args.get("next"))
    if request.method == "GET":
        return redirect(target) if session.get("signed_in") is True else render_template("signin.html", next=target)
    repo, address, moment = store(), request.remote_addr or "unknown", now()
    until = locked_until(repo, address, moment)
    if until is not None:
        return _locked_out(until, moment)
    wait = take_global_try(repo, address, moment)
    if wait is not None:
        return _slowed(wait)
    if not same_secret(request.form.get("password", ""), settings().admin_password):
        until = record_failure(repo, address, moment)
        log.warning("failed sign-in from %s", address)
        if until is not None:
            return _locked_out(until, moment)
        return render_template("signin.html", next=target, error="That is not the password."), 401
    give_back_global_try(repo, address, moment)
    clear_failures(repo, address)
    remember_address(repo, address, moment)
    session.clear()
    session.permanent = True
    session["signed_in"] = True
    session["auth"] = {"at": moment.timestamp(), "pw": password_tag(), "id": secrets.token_urlsafe(16),
                       "gen": sessions_state(repo)["generation"]}
    log.info("signed in from %s", address)
    return redirect(target)


@bp.post("/signout")
def sign_out() -> ResponseReturnValue:
    mark = session.get("auth") or {}
    end_session(store(), str(mark.get("id", "")), now())
    session.clear()
    flash("Signed out.", "ok")
    return redirect(url_for("auth.sign_in"))


@bp.post("/signout/everywhere")
def sign_out_everywhere() -> ResponseReturnValue:
    end_every_session(store())
    session.clear()
    log.info("signed out everywhere from %s", request.remote_addr)
    flash("Signed out everywhere: every browser must sign in again.", "ok")
    return redirect(url_for("auth.sign_in"))


def _locked_out(until: datetime, moment: datetime) -> ResponseReturnValue:
    minutes = max(1, round((until - moment).total_seconds() / 60))
    message = (f"Too many wrong passwords from your address: sign-in is closed to it for "
               f"{minutes} more min.")
    headers = {"Retry-After": str(max(1, int((until - moment).total_seconds())))}
    return render_template("signin.html", next=None, error=message, locked=True), 429, headers


def _slowed(wait: timedelta) -> ResponseReturnValue:
    seconds = max(1, int(wait.total_seconds() + 0.999))
    message = (f"Too many wrong passwords lately, from anywhere: sign-in takes one try at a time now. "
               f"Try again in {seconds} s.")
    return render_template("signin.html", next=None, error=message, locked=True), 429, {"Retry-After": str(seconds)}


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path on this site, never another host.

    Refused (the dashboard instead): anything a browser could read as another host once it has
    removed tabs and newlines and turned backslashes into slashes (`/\\t/evil`, `/\\\\evil`,
    `//evil`), control characters (which would break the Location header), and anything with a
    scheme or a host.
    """
    fallback = url_for("dashboard.index")
    if not target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target) or "\\" in target:
        return fallback
    if not target.startswith("/") or target.startswith("//"):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


def password_tag() -> str:
    """What a session carries of ADMIN_PASSWORD: a hash keyed with SECRET_KEY (nothing to guess from)."""
    key = settings().secret_key.encode()
    return hmac.new(key, b"session-password:" + settings().admin_password.encode(), hashlib.sha256).hexdigest()[:32]


# -- sessions that can be ended ----------------------------------------------------------

def sessions_state(repo: Repository) -> dict[str, Any]:
    """`{"generation": int, "ended": {session id: when its lifetime ends}}`."""
    state = repo.get_meta(SESSIONS_KEY) or {}
    return {"generation": int(state.get("generation", 0)), "ended": dict(state.get("ended", {}))}


def end_session(repo: Repository, session_id: str, moment: datetime) -> None:
    """End one session (Sign out); too many ended at once end them all."""
    if not session_id:
        return
    with repo.transaction():
        state = sessions_state(repo)
        ended = {k: v for k, v in state["ended"].items() if datetime.fromisoformat(v) > moment}
        ended[session_id] = (moment + SESSION_LIFETIME).isoformat()
        if len(ended) > MAX_ENDED:
            state["generation"] += 1
            ended = {}
        repo.set_meta(SESSIONS_KEY, {"generation": state["generation"], "ended": ended})


def end_every_session(repo: Repository) -> None:
    """Sign out everywhere: every session made before is no longer signed in."""
    with repo.transaction():
        state = sessions_state(repo)
        repo.set_meta(SESSIONS_KEY, {"generation": state["generation"] + 1, "ended": {}})


# -- the global limit ---------------------------------------------------------------------

def _bucket(repo: Repository, moment: datetime) -> float:
    """The tries in the global bucket now (refilled since it was last written)."""
    stored = repo.get_meta(GLOBAL_KEY) or {}
    if "at" not in stored:
        return float(GLOBAL_BURST)
    elapsed = max(0.0, (moment - datetime.fromisoformat(stored["at"])).total_seconds())
    return min(float(GLOBAL_BURST), float(stored["tries"]) + elapsed / GLOBAL_REFILL.total_seconds())


def take_global_try(repo: Repository, address: str, moment: datetime) -> timedelta | None:
    """Spend one try of the global bucket; how long until there is one when it is empty.

    An address that signed in lately (`KNOWN_FOR`) spends nothing and never waits.
    """
    if _known(repo, address, moment):
        return None
    with repo.transaction():
        tries = _bucket(repo, moment)
        if tries < 1:
            return GLOBAL_REFILL * (1 - tries)
        repo.set_meta(GLOBAL_KEY, {"tries": tries - 1, "at": moment.isoformat()})
    return None


def give_back_global_try(repo: Repository, address: str, moment: datetime) -> None:
    """A right password costs nothing: its try goes back in the bucket."""
    if _known(repo, address, moment):
        return
    with repo.transaction():
        repo.set_meta(GLOBAL_KEY, {"tries": min(float(GLOBAL_BURST), _bucket(repo, moment) + 1),
                                   "at": moment.isoformat()})


def remember_address(repo: Repository, address: str, moment: datetime) -> None:
    """Keep `address` among the ones that signed in (the newest `MAX_KNOWN`)."""
    with repo.transaction():
        known = {a: t for a, t in (repo.get_meta(KNOWN_KEY) or {}).items()
                 if moment - datetime.fromisoformat(t) < KNOWN_FOR and a != address}
        known[address] = moment.isoformat()
        newest = sorted(known.items(), key=lambda item: item[1])[-MAX_KNOWN:]
        repo.set_meta(KNOWN_KEY, dict(newest))


def _known(repo: Repository, address: str, moment: datetime) -> bool:
    seen = (repo.get_meta(KNOWN_KEY) or {}).get(address)
    return seen is not None and moment - datetime.fromisoformat(seen) < KNOWN_FOR


# -- failure counts per address ---------------------------------------------------------

def locked_until(repo: Repository, address: str, moment: datetime) -> datetime | None:
    """When the lockout of `address` ends, if it is locked out now."""
    entry = (repo.get_meta(FAILURES_KEY) or {}).get(address)
    until = entry and entry.get("locked_until")
    if until and datetime.fromisoformat(until) > moment:
        return datetime.fromisoformat(until)
    return None


def record_failure(repo: Repository, address: str, moment: datetime) -> datetime | None:
    """Count one failure; returns the lockout's end when this failure locks the address.

    The table keeps the `MAX_TRACKED` addresses whose last failure is newest.
    """
    with repo.transaction():
        table = _current(repo.get_meta(FAILURES_KEY) or {}, moment)
        count = table.get(address, {}).get("count", 0) + 1
        entry: dict[str, Any] = {"count": count, "last": moment.isoformat()}
        if count >= MAX_FAILURES:
            entry["locked_until"] = (moment + LOCKOUT).isoformat()
        table.pop(address, None)
        table[address] = entry
        if len(table) > MAX_TRACKED:
            table = dict(sorted(table.items(), key=lambda item: item[1]["last"])[-MAX_TRACKED:])
        repo.set_meta(FAILURES_KEY, table)
    return moment + LOCKOUT if count >= MAX_FAILURES else None


def clear_failures(repo: Repository, address: str) -> None:
    """Forget an address's failures after a right password (no write when there are none)."""
    with repo.transaction():
        table = repo.get_meta(FAILURES_KEY) or {}
        if address in table:
            repo.set_meta(FAILURES_KEY, {k: v for k, v in table.items() if k != address})


def _current(table: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """The entries still in force: a failure counts for `LOCKOUT`, a lockout until it ends."""
    def live(entry: dict[str, Any]) -> bool:
        last = datetime.fromisoformat(entry["last"])
        until = entry.get("locked_until")
        return moment - last < LOCKOUT or (until is not None and datetime.fromisoformat(until) > moment)
    return {address: dict(entry) for address, entry in table.items() if live(entry)}
