"""Editing a queued post: its text, its parts, its time (or the account's next free slot), its account.

`GET /posts/<id>/edit` shows the post in a form; `POST` changes it through
`bot.queue.edit_post`, which checks it as a new post is checked (`draft`: the
account can post, every part fits X's rules, the time is ahead), so the edit form
refuses what compose refuses, with the same reason. A post being sent, or already
finished, cannot be edited. The post's media stay on their parts and are shown here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot import queue
from bot.models import DISCONNECTED, Post
from bot.schedules import NoSlots, load_slots
from bot.when import WhenError, parse_when
from web.db import now as clock_now
from web.db import settings, store
from web.display import clock_text, media_fields, refusal_words
from web.panels import back_target
from xtext import MAX_WEIGHTED_LENGTH

log = logging.getLogger("tweetbot.web.edit")
bp = Blueprint("edit", __name__)

AT, SLOT = "at", "slot"


@dataclass
class EditForm:
    account: str
    parts: list[str]
    due_at: str
    when: str = AT
    back: str = ""
    media: tuple[Any, ...] = field(default=())


def form_of(post: Post, back: str) -> EditForm:
    local = post.due_at.astimezone(settings().zone)
    return EditForm(account=post.account_id, parts=list(post.parts), due_at=local.strftime("%Y-%m-%dT%H:%M"),
                    back=back, media=media_fields(post).get("media", ()))


def render_edit(post: Post, form: EditForm, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    now, zone = clock_now(), settings().zone
    accounts = [a for a in store().list_accounts() if a.status != DISCONNECTED]
    with_slots = [a.handle for a in accounts if load_slots(store(), a.user_id) is not None]
    return render_template("edit.html", post=post, form=form, error=error, accounts=accounts,
                           with_slots=with_slots, zone=settings().timezone, max_length=MAX_WEIGHTED_LENGTH,
                           due=clock_text(post.due_at, now, zone)), status


def refused(post_id: int, reason: str, back: str) -> ResponseReturnValue:
    flash(f"Not edited: {reason}.", "error")
    return redirect(back or url_for("dashboard.index"), 303)


@bp.get("/posts/<int:post_id>/edit")
def edit(post_id: int) -> ResponseReturnValue:
    back = back_target(request.args.get("back"))
    post = store().get_post(post_id)
    if post is None:
        return refused(post_id, f"no post {post_id}", back)
    refusal = queue.why_not_editable(post)
    if refusal:
        return refused(post_id, refusal, back)
    return render_edit(post, form_of(post, back))


@bp.post("/posts/<int:post_id>/edit")
def save(post_id: int) -> ResponseReturnValue:
    back = back_target(request.form.get("back"))
    post = store().get_post(post_id)
    if post is None:
        return refused(post_id, f"no post {post_id}", back)
    texts = [p.replace("\r\n", "\n") for p in request.form.getlist("part")]
    form = EditForm(account=request.form.get("account", ""), parts=texts or [""],
                    due_at=request.form.get("due_at", "").strip(),
                    when=SLOT if request.form.get("when") == SLOT else AT, back=back,
                    media=media_fields(post).get("media", ()))
    now = clock_now()
    try:
        when = queue.NEXT_SLOT if form.when == SLOT else parse_when(form.due_at, settings().zone, now)
        edited = queue.edit_post(store(), post_id, form.account, texts, when, now, zone=settings().zone)
    except NoSlots:
        found = store().find_account(form.account)
        handle = found.handle if found else "this account"
        return render_edit(post, form, f"Not saved: {handle} has no slots: set them under Slots, or give a time.",
                           400)
    except WhenError as exc:
        return render_edit(post, form, f"Not saved: {exc}.", 400)
    except queue.QueueError as exc:
        return render_edit(post, form, f"Not saved: {refusal_words(exc, now, settings().zone)}.", 400)
    log.info("post %s edited", post_id)
    account = store().get_account(edited.account_id)
    who = f"{account.handle}, " if account else ""
    flash(f"Saved post {post_id}: {who}{clock_text(edited.due_at, now, settings().zone)}.", "ok")
    return redirect(back or url_for("dashboard.index"), 303)
