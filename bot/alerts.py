"""Telling the owner when an account needs them: ALERT_WEBHOOK_URL, kept as a webhook subscription to
`bot.webhooks.ALERT_EVENTS`, so its messages are durable, retried and signed like every event."""
from __future__ import annotations

import logging
from datetime import datetime

from bot import webhooks
from bot.models import NEEDS_RECONNECT, Account
from bot.store import Repository, Webhook

log = logging.getLogger("tweetbot.alerts")
FAILURES_WORTH_AN_ALERT = 3
ALERT_SETTING = "ALERT_WEBHOOK_URL"


def attention(account: Account) -> str:
    """`needs_reconnect`, `failing` (3+ refresh failures in a row) or `ok`."""
    if account.status == NEEDS_RECONNECT:
        return NEEDS_RECONNECT
    if account.refresh_failures >= FAILURES_WORTH_AN_ALERT:
        return "failing"
    return "ok"


def keep_alert_subscription(store: Repository, url: str | None, now: datetime) -> Webhook | None:
    """Make the store's subscription from ALERT_WEBHOOK_URL match the setting: made when it is set,
    moved (a new subscription) when it changed, removed when it is unset; it, if any. Idempotent, so
    every worker may call it at every round (under the alerts lease: one at a time)."""
    with store.transaction():
        made = [hook for hook in store.list_webhooks() if hook.managed_by == ALERT_SETTING]
        if url and len(made) == 1 and made[0].url == url and made[0].events == webhooks.ALERT_EVENTS:
            return made[0]
        for hook in made:
            store.remove_webhook(hook.id)
            log.info("removed webhook %s (%s), made from %s, which changed", hook.id, webhooks.where(hook.url),
                     ALERT_SETTING)
        if not url:
            return None
        hook = store.add_webhook(url, webhooks.ALERT_EVENTS, webhooks.new_secret(), now)
        hook = store.update_webhook(hook.id, managed_by=ALERT_SETTING)
    log.info("webhook %s (%s) takes %s, from %s", hook.id, webhooks.where(url), ", ".join(hook.events),
             ALERT_SETTING)
    return hook
