"""Telling the owner when an account needs them, or a webhook was paused, once per change, not every minute."""
from __future__ import annotations

import logging
from collections.abc import Mapping

import requests

from bot.models import NEEDS_RECONNECT, Account
from bot.store import Repository, Webhook
from bot.webhooks import where

log = logging.getLogger("tweetbot.alerts")
FAILURES_WORTH_AN_ALERT = 3


def attention(account: Account) -> str:
    """`needs_reconnect`, `failing` (3+ refresh failures in a row) or `ok`."""
    if account.status == NEEDS_RECONNECT:
        return NEEDS_RECONNECT
    if account.refresh_failures >= FAILURES_WORTH_AN_ALERT:
        return "failing"
    return "ok"


def notify_changes(store: Repository, webhook_url: str | None, timeout: float = 10.0) -> int:
    """POST one message per account whose attention state changed since the last alert; how many."""
    sent = 0
    for account in store.list_accounts():
        state = attention(account)
        if state == (account.alerted_status or "ok"):
            continue
        if state != "ok" and webhook_url:
            if not _post(webhook_url, account, state, timeout):
                continue  # try again on the next round
            sent += 1
        store.update_account(account.user_id, alerted_status=state)
    return sent + notify_paused_webhooks(store, webhook_url, timeout)


def notify_paused_webhooks(store: Repository, webhook_url: str | None, timeout: float = 10.0) -> int:
    """POST one message per webhook subscription paused since the last alert (`bot.webhooks`); how many."""
    sent = 0
    for webhook in store.list_webhooks():
        if webhook.paused_at is None or webhook.alerted:
            continue
        if webhook_url:
            if not _send(webhook_url, _paused_message(webhook), f"webhook {webhook.id}", timeout):
                continue
            sent += 1
        store.update_webhook(webhook.id, alerted=True)
    return sent


def _paused_message(webhook: Webhook) -> dict[str, object]:
    shown = where(webhook.url)
    return {"webhook": webhook.id, "url": shown, "state": "paused", "reason": webhook.pause_reason,
            "text": f"tweetbot: webhook {webhook.id} ({shown}) paused: {webhook.pause_reason}"}


def _post(url: str, account: Account, state: str, timeout: float) -> bool:
    message = {"account": account.handle, "user_id": account.user_id, "state": state,
               "reason": account.last_error, "text": f"tweetbot: {account.handle} {state.replace('_', ' ')}"}
    if not _send(url, message, account.handle, timeout):
        return False
    log.info("alerted the owner of %s: %s", account.handle, state)
    return True


def _send(url: str, message: Mapping[str, object], about: str, timeout: float) -> bool:
    try:
        response = requests.post(url, json=message, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        log.warning("alert webhook failed for %s: %s", about, type(exc).__name__)
        return False
    return True
