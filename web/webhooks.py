"""The webhooks page: the subscriptions, adding one (its secret shown on that answer only), removing
one (asked first), a test event, resuming a paused one, and the delivery log with each attempt's
status code and a Redeliver button.

Everything goes through `bot.webhooks` and the store, as `tweetbot webhooks` does. The new secret is
rendered into the answer to the add form and nowhere else: not flashed (a flash rides in the session
cookie) and never logged; the page, like every page, is `no-store`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot import webhooks
from bot.store import Delivery, RecordMissing, Webhook
from web.db import now, settings, store
from web.display import when_text

log = logging.getLogger("tweetbot.web.webhooks")
bp = Blueprint("webhooks", __name__)
LOG_LENGTH = 50


@dataclass(frozen=True)
class HookRow:
    """A subscription as the page shows it."""

    id: int
    url: str
    events: str
    state: str
    paused: bool
    last: str
    managed_by: str | None  # the setting it is made from: only that removes it


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery as the log shows it."""

    id: int
    webhook_id: int
    event_id: str
    type: str
    made: str
    attempts: int
    status: str
    outcome: str


def _hook_row(hook: Webhook) -> HookRow:
    zone, moment = settings().zone, now()
    if hook.paused_at is not None:
        state = f"paused {when_text(hook.paused_at, moment, zone)}: {hook.pause_reason}"
    else:
        state = "active"
    last = (f"delivered {when_text(hook.last_delivery_at, moment, zone)}" if hook.last_delivery_at
            else "never delivered")
    return HookRow(hook.id, webhooks.where(hook.url), ", ".join(hook.events), state, hook.paused_at is not None,
                   last + (f", last answer {hook.last_status}" if hook.last_status else ""), hook.managed_by)


def _delivery_row(delivery: Delivery) -> DeliveryRow:
    zone, moment = settings().zone, now()
    if delivery.delivered_at is not None:
        outcome = f"delivered {when_text(delivery.delivered_at, moment, zone)}"
    elif delivery.given_up_at is not None:
        outcome = f"given up {when_text(delivery.given_up_at, moment, zone)}"
    else:
        outcome = f"next attempt {when_text(delivery.next_attempt_at, moment, zone)}"
    status = str(delivery.last_status) if delivery.last_status else (delivery.last_error or "-")
    return DeliveryRow(delivery.id, delivery.webhook_id, delivery.event_id, delivery.type,
                       when_text(delivery.created_at, moment, zone), delivery.attempts, status, outcome)


def _page(secret: str | None = None, made: Webhook | None = None, status: int = 200) -> ResponseReturnValue:
    repo = store()
    return render_template("webhooks.html", hooks=[_hook_row(h) for h in repo.list_webhooks()],
                           deliveries=[_delivery_row(d) for d in repo.deliveries(limit=LOG_LENGTH)],
                           events=webhooks.EVENTS, secret=secret, made=made), status


def _back() -> ResponseReturnValue:
    return redirect(url_for("webhooks.index"), 303)


@bp.get("/webhooks")
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/webhooks")
def add() -> ResponseReturnValue:
    """Make a subscription; its secret is in this answer only."""
    try:
        made = webhooks.subscribe(store(), request.form.get("url", "").strip(), request.form.getlist("events"))
    except webhooks.WebhookRefused as exc:
        flash(f"Not added: {exc}.", "error")
        return _page(status=400)
    log.info("webhook %s added: %s to %s", made.id, ", ".join(made.events), webhooks.where(made.url))
    return _page(secret=made.secret, made=made)


@bp.get("/webhooks/<int:webhook_id>/remove")
def confirm_remove(webhook_id: int) -> ResponseReturnValue:
    hook = store().get_webhook(webhook_id)
    if hook is None:
        flash(f"No webhook {webhook_id}.", "error")
        return _back()
    return render_template(
        "confirm.html", title=f"Remove webhook {webhook_id}?",
        message=f"{webhooks.where(hook.url)} gets no more events, and its waiting deliveries and its log are "
                "forgotten. Adding it again makes a new secret.",
        action=url_for("webhooks.remove", webhook_id=webhook_id), button=f"Remove webhook {webhook_id}",
        danger=True, back=url_for("webhooks.index"), back_text="Keep it")


@bp.post("/webhooks/<int:webhook_id>/remove")
def remove(webhook_id: int) -> ResponseReturnValue:
    try:
        webhooks.unsubscribe(store(), webhook_id)
    except RecordMissing:
        flash(f"No webhook {webhook_id}.", "error")
        return _back()
    except webhooks.WebhookRefused as exc:
        flash(f"Not removed: {exc}.", "error")
        return _back()
    log.info("webhook %s removed", webhook_id)
    flash(f"Removed webhook {webhook_id}.", "ok")
    return _back()


@bp.post("/webhooks/<int:webhook_id>/test")
def test(webhook_id: int) -> ResponseReturnValue:
    if webhooks.send_test(store(), webhook_id):
        flash(f"Queued a {webhooks.TEST_EVENT} event for webhook {webhook_id}: the worker sends it.", "ok")
    else:
        flash(f"No webhook {webhook_id}.", "error")
    return _back()


@bp.post("/webhooks/<int:webhook_id>/resume")
def resume(webhook_id: int) -> ResponseReturnValue:
    try:
        webhooks.resume(store(), webhook_id)
    except RecordMissing:
        flash(f"No webhook {webhook_id}.", "error")
        return _back()
    flash(f"Webhook {webhook_id} is delivering again, what waited first.", "ok")
    return _back()


@bp.post("/webhooks/deliveries/<int:delivery_id>/redeliver")
def redeliver(delivery_id: int) -> ResponseReturnValue:
    try:
        delivery = webhooks.redeliver(store(), delivery_id, now())
    except RecordMissing:
        flash(f"No delivery {delivery_id} (its webhook was removed, or it left the log).", "error")
        return _back()
    flash(f"Delivery {delivery_id} ({delivery.type}, {delivery.event_id}) goes out again, with the same id.", "ok")
    return _back()
