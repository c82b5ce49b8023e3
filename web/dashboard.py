"""The dashboard (`/`): accounts and their token health, the queue, the history, the compose form.

Queuing goes through `bot.queue.queue_post`, the same door the CLI uses, and the time
is read by `bot.when.parse_when` as the CLI's `--at` is (the operator's zone; a time
the clocks skip is refused), so the web form refuses what the CLI refuses with the
same reason. The live counter on the page is a port of `bot.text` (`static/counter.js`)
fed by `/text-rules.json`; the server's check is the one that counts.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot import queue
from bot.models import DISCONNECTED, Account, utcnow
from bot.text import MAX_WEIGHTED_LENGTH, V3_JSON
from bot.tlds import ALL_TLDS
from bot.when import WhenError, parse_when
from web import settings, store
from web.display import account_view, default_due, history_view, local_time, queued_view

log = logging.getLogger("tweetbot.web.dashboard")
bp = Blueprint("dashboard", __name__)

QUEUE_SHOWN = 50
HISTORY_SHOWN = 50


@dataclass
class Compose:
    """What the compose form holds (kept when a post is refused, so nothing typed is lost)."""

    account: str = ""
    parts: list[str] = field(default_factory=lambda: [""])
    due_at: str = ""


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_dashboard(Compose())


def render_dashboard(compose: Compose, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    """The whole dashboard; `compose` and `error` refill the form after a refusal."""
    now, zone = utcnow(), settings().zone
    accounts = store().list_accounts()
    by_id: dict[str, Account] = {a.user_id: a for a in accounts}
    queued = store().queued_posts()
    history = store().history(HISTORY_SHOWN)
    postable = [a for a in accounts if a.status != DISCONNECTED]
    compose.due_at = compose.due_at or default_due(now, zone)
    compose.account = compose.account or (postable[0].user_id if postable else "")
    page = render_template(
        "dashboard.html",
        accounts=[account_view(a, now, zone) for a in accounts],
        queue=[queued_view(p, by_id.get(p.account_id), now, zone) for p in queued[:QUEUE_SHOWN]],
        queue_more=max(0, len(queued) - QUEUE_SHOWN),
        history=[history_view(p, by_id.get(p.account_id), settings(), zone) for p in history],
        postable=postable, compose=compose, error=error, zone=settings().timezone,
        max_length=MAX_WEIGHTED_LENGTH, sandbox=settings().sandbox,
        now=local_time(now, zone))
    return page, status


@bp.post("/posts")
def compose() -> ResponseReturnValue:
    """Queue one post or thread from the compose form, or show the form again with the reason."""
    form = Compose(account=request.form.get("account", ""),
                   parts=[p.replace("\r\n", "\n") for p in request.form.getlist("part")] or [""],
                   due_at=request.form.get("due_at", "").strip())
    parts = [p for p in form.parts if p.strip()]
    try:
        due_at = parse_when(form.due_at, settings().zone, utcnow())
        post = queue.queue_post(store(), form.account, parts, due_at, source="web")
    except (WhenError, queue.QueueError) as exc:
        return render_dashboard(form, error=f"Not queued: {exc}.", status=400)
    kind = f"a thread of {len(post.parts)} parts" if len(post.parts) > 1 else "a post"
    log.info("queued post %s for %s", post.id, post.due_at.isoformat())
    flash(f"Queued {kind} for {local_time(post.due_at, settings().zone)}.", "ok")
    return redirect(url_for("dashboard.index"), 303)


@bp.post("/posts/<int:post_id>/cancel")
def cancel(post_id: int) -> ResponseReturnValue:
    try:
        queue.cancel(store(), post_id)
    except queue.QueueError as exc:
        flash(f"Not canceled: {exc}.", "error")
    else:
        flash(f"Canceled post {post_id}.", "ok")
    return redirect(url_for("dashboard.index"), 303)


@bp.get("/text-rules.json")
def text_rules() -> ResponseReturnValue:
    """The weighting config and TLD list the page's counter needs: one source, `bot.text`."""
    return jsonify(config=V3_JSON, tlds=sorted(ALL_TLDS))
