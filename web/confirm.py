"""Asking before what cannot be undone: Disconnect and Cancel.

The dashboard's Disconnect and Cancel are links to a page that says what will happen
and carries the one button that does it (a POST to the same routes as before,
`connect.disconnect` and `dashboard.cancel`), so the question is asked with or
without JavaScript, and within the CSP (no inline script, no `confirm()`).
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot.models import DISCONNECTED, SCHEDULED
from web.db import now, settings, store
from web.display import when_text
from web.panels import back_target

bp = Blueprint("confirm", __name__)


@bp.get("/accounts/<int:user_id>/disconnect")
def disconnect(user_id: int) -> ResponseReturnValue:
    account = store().get_account(str(user_id))
    if account is None or account.status == DISCONNECTED:
        flash("No such account." if account is None else f"{account.handle} is already disconnected.", "error")
        return redirect(url_for("dashboard.index"), 303)
    queued = len(store().queued_posts(account.user_id))
    held = (f" Its {queued} queued post{'s' if queued != 1 else ''} stay{'s' if queued == 1 else ''}, held, until it "
            "is connected again." if queued else "")
    return render_template(
        "confirm.html", title=f"Disconnect {account.handle}?",
        message=f"This revokes {account.handle}'s tokens at X and deletes them here: the bot can no longer post "
                f"as {account.handle}, and connecting it again takes X's consent page once more.{held}",
        action=url_for("connect.disconnect", user_id=user_id), button=f"Disconnect {account.handle}",
        danger=True, back=url_for("dashboard.index"), back_text="Keep it connected")


@bp.get("/posts/<int:post_id>/cancel")
def cancel(post_id: int) -> ResponseReturnValue:
    back = back_target(request.args.get("back"))
    post = store().get_post(post_id)
    if post is None or post.status != SCHEDULED:
        why = f"no post {post_id}" if post is None else f"post {post_id} is already {post.status}"
        flash(f"Not canceled: {why}.", "error")
        return redirect(back or url_for("dashboard.index"), 303)
    account = store().get_account(post.account_id)
    who = account.handle if account else f"account {post.account_id}"
    first = post.parts[0] if len(post.parts[0]) <= 80 else post.parts[0][:79] + "…"
    thread = f" (a thread of {len(post.parts)} parts)" if len(post.parts) > 1 else ""
    return render_template(
        "confirm.html", title=f"Cancel post {post_id}?",
        message=f"{who}, due {when_text(post.due_at, now(), settings().zone)}{thread}: “{first}”. A canceled "
                "post does not go out and cannot be brought back; to post it later, compose it again.",
        action=url_for("dashboard.cancel", post_id=post_id), button=f"Cancel post {post_id}", danger=True,
        back=back or url_for("dashboard.index"), back_text="Keep it queued", back_field=back)
