"""Telling the owner when an account needs them, once per change, not every minute."""
from __future__ import annotations

import logging

import requests

from bot.models import NEEDS_RECONNECT, Account
from bot.store import Repository

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
    return sent


def _post(url: str, account: Account, state: str, timeout: float) -> bool:
    message = {"account": account.handle, "user_id": account.user_id, "state": state,
               "reason": account.last_error, "text": f"tweetbot: {account.handle} {state.replace('_', ' ')}"}
    try:
        response = requests.post(url, json=message, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        log.warning("alert webhook failed for %s: %s", account.handle, type(exc).__name__)
        return False
    log.info("alerted the owner of %s: %s", account.handle, state)
    return True
