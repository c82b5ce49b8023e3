"""The slot editor: set or clear an account's weekly posting times from the dashboard.

The text is read by `bot.schedules.parse_slots`, the parser `tweetbot slots set` uses,
and stored by `save_slots`, so the page and the command line accept and refuse the same
texts. A refused text comes back in its form with the parser's reason (nothing typed is
lost) and nothing is stored. The zone is the form's, or one the text ends with, or the
operator's TIMEZONE; clearing slots leaves queued posts at their times.
"""
from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from bot.schedules import SlotSpecError, clear_slots, load_slots, parse_slots, save_slots
from web.dashboard import Compose, SlotForm, render_dashboard
from web.db import settings, store

log = logging.getLogger("tweetbot.web.slots")
bp = Blueprint("slots", __name__)


def no_such_account() -> ResponseReturnValue:
    flash("No such account.", "error")
    return redirect(url_for("dashboard.index"), 303)


@bp.post("/accounts/<int:user_id>/slots")
def set_slots(user_id: int) -> ResponseReturnValue:
    """Replace the account's slots with the form's text, or show the form again with the parser's reason."""
    account = store().get_account(str(user_id))
    if account is None:
        return no_such_account()
    spec, tz = request.form.get("spec", "").strip(), request.form.get("tz", "").strip()
    try:
        schedule = parse_slots(spec, tz or None, default_tz=settings().timezone)
    except SlotSpecError as exc:
        refused = SlotForm(account.user_id, spec, tz, f"Slots not saved: {web_words(str(exc))}.")
        return render_dashboard(Compose(), slot_form=refused, status=400)
    save_slots(store(), account.user_id, schedule)
    log.info("slots of %s set to %r (%s)", account.handle, schedule.spec, schedule.zone)
    flash(f"{account.handle} posts at {schedule.spec} ({schedule.zone}).", "ok")
    return redirect(url_for("dashboard.index"), 303)


@bp.post("/accounts/<int:user_id>/slots/clear")
def clear(user_id: int) -> ResponseReturnValue:
    """Forget the account's slots (its queued posts keep their times); nothing is written when it has none."""
    account = store().get_account(str(user_id))
    if account is None:
        return no_such_account()
    if load_slots(store(), account.user_id) is None:
        flash(f"{account.handle} has no slots.", "ok")
        return redirect(url_for("dashboard.index"), 303)
    clear_slots(store(), account.user_id)
    log.info("slots of %s cleared", account.handle)
    flash(f"{account.handle} has no slots now; its queued posts keep their times.", "ok")
    return redirect(url_for("dashboard.index"), 303)


def web_words(reason: str) -> str:
    """The parser's reason in this page's words: its "--tz" (the CLI's option) is the form's zone field here."""
    return reason.replace("--tz says", "the time zone field says")
