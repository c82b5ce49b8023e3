"""`/healthz` and the store check every page passes (a gate: `web.gates` says where in the order).

`/healthz` is public, for the PaaS and uptime checkers: 200 while the store can be
used (its files whole, TOKEN_KEY opens its tokens) and the worker's heartbeat is
younger than two minutes; 503 with the reason otherwise, so an alert fires when
the worker stops, or cannot work, even though the web app still answers.

A store that cannot be used answers every page with 503 and the reason instead of
a traceback: the app stays up to say what is wrong and what to do.
"""
from __future__ import annotations

import logging

from flask import Blueprint, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from bot.store import UNUSABLE, heartbeats
from web.db import now, store

log = logging.getLogger("tweetbot.web")
bp = Blueprint("health", __name__)
UNCHECKED_ENDPOINTS = frozenset({"health.healthz", "static"})
_told: set[str] = set()  # problems already logged by this process


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def store_problem() -> str | None:
    """Why the store cannot be used now, or None. Cheap: the store remembers its verdict per file identity."""
    try:
        store().verify()
    except UNUSABLE as exc:
        return one_line(exc)
    except OSError as exc:
        return f"cannot read the store: {one_line(exc)}"
    return None


def unavailable(reason: str) -> ResponseReturnValue:
    """The 503 page that says why nothing works and what to do."""
    if reason not in _told:
        _told.add(reason)
        log.error("tweetbot: %s", reason)
    return render_template("unavailable.html", reason=reason), 503


def refuse_while_unusable() -> ResponseReturnValue | None:
    """A gate (`web.gates`), before sign-in: a store that cannot be used answers 503 with the reason."""
    if request.endpoint in UNCHECKED_ENDPOINTS:
        return None
    problem = store_problem()
    return None if problem is None else unavailable(problem)


def unusable_error(exc: Exception) -> ResponseReturnValue:
    """The same page when the store turns out unusable in the middle of a request."""
    return unavailable(one_line(exc))


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    problem = store_problem()
    age = None
    if problem is None:
        try:
            age = heartbeats.newest_age(store(), now())
        except UNUSABLE as exc:
            problem = one_line(exc)
    age = None if age is None else round(age, 1)
    healthy = problem is None and age is not None and age < heartbeats.ALIVE_WITHIN.total_seconds()
    body = {"status": "ok" if healthy else "unhealthy", "store": "ok" if problem is None else f"error: {problem}",
            "worker_heartbeat_age_seconds": age}
    return jsonify(body), 200 if healthy else 503
