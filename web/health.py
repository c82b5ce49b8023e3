"""`/healthz`: public, for the PaaS and uptime checkers.

200 while the worker's heartbeat is younger than two minutes, 503 otherwise, so
an alert fires when the worker stops even though the web app still answers.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from bot.models import utcnow
from bot.store import StoreError, TokenKeyError
from web import store

bp = Blueprint("health", __name__)
HEARTBEAT_MAX_AGE = 120.0


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    try:
        beat = store().get_meta("worker_heartbeat")
        store_status = "ok"
    except (StoreError, TokenKeyError, OSError) as exc:
        beat, store_status = None, f"error: {exc}"
    age = None
    if beat:
        age = round((utcnow() - datetime.fromisoformat(beat).astimezone(timezone.utc)).total_seconds(), 1)
    healthy = store_status == "ok" and age is not None and age < HEARTBEAT_MAX_AGE
    body = {"status": "ok" if healthy else "unhealthy", "store": store_status,
            "worker_heartbeat_age_seconds": age}
    return jsonify(body), 200 if healthy else 503
