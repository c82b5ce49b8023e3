"""Webhooks' commands: `tweetbot webhooks add|list|remove|test|resume` (signed POSTs of the bot's events)."""
from __future__ import annotations

import click

from bot import webhooks
from bot.cli.common import fail, settings_or_exit, store_or_exit
from bot.store import RecordMissing, Repository, Webhook


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhooks: signed POSTs of the bot's events to your URLs (add prints the secret once)."""


@webhooks_group.command("add")
@click.argument("url")
@click.option("--events", "events", multiple=True, required=True, type=click.Choice(webhooks.EVENTS),
              help="An event to send; repeat for several.")
def webhooks_add(url: str, events: tuple[str, ...]) -> None:
    """Send EVENTS to URL, signed with a new secret, printed this once."""
    store = store_or_exit(settings_or_exit())
    try:
        webhook = webhooks.subscribe(store, url, events)
    except webhooks.WebhookRefused as exc:
        fail(str(exc))
    click.echo(webhook.secret)
    click.echo(f"Webhook {webhook.id}: {', '.join(webhook.events)} to {webhooks.where(webhook.url)}. "
               "The secret above is shown this once: keep it now (your receiver verifies with it).", err=True)


@webhooks_group.command("list")
def webhooks_list() -> None:
    """Every webhook: id, URL, events, paused or not, the last delivery."""
    store = store_or_exit(settings_or_exit())
    hooks = store.list_webhooks()
    if not hooks:
        click.echo("No webhooks yet: `tweetbot webhooks add URL --events post.posted`.")
    for hook in hooks:
        click.echo(f"{hook.id:<4} {webhooks.where(hook.url):40} {','.join(hook.events):40} {_state(hook)}  "
                   f"{_last(hook)}")


def _state(hook: Webhook) -> str:
    made = f" (from {hook.managed_by})" if hook.managed_by else ""
    if hook.paused_at is None:
        return "active" + made
    return (f"PAUSED {hook.paused_at:%Y-%m-%d %H:%M} UTC ({hook.pause_reason}; `tweetbot webhooks resume {hook.id}`)"
            + made)


def _last(hook: Webhook) -> str:
    if hook.last_delivery_at is None:
        return "never delivered" if hook.last_status is None else f"last answer {hook.last_status}"
    return f"delivered {hook.last_delivery_at:%Y-%m-%d %H:%M} UTC, last answer {hook.last_status or 'none'}"


@webhooks_group.command("remove")
@click.argument("webhook_id", type=int)
def webhooks_remove(webhook_id: int) -> None:
    """Stop sending to webhook WEBHOOK_ID, and forget its deliveries."""
    store = store_or_exit(settings_or_exit())
    try:
        webhooks.unsubscribe(store, webhook_id)
    except RecordMissing:
        fail(f"no webhook {webhook_id}")
    except webhooks.WebhookRefused as exc:
        fail(str(exc))
    click.echo(f"Removed webhook {webhook_id}.")


@webhooks_group.command("test")
@click.argument("webhook_id", type=int)
def webhooks_test(webhook_id: int) -> None:
    """Queue a `webhook.test` event for webhook WEBHOOK_ID (the worker sends it)."""
    store = store_or_exit(settings_or_exit())
    hook = _existing(store, webhook_id)
    webhooks.send_test(store, webhook_id)
    paused = " (it is paused: resume it to send)" if hook.paused_at else ""
    click.echo(f"Queued a {webhooks.TEST_EVENT} event for webhook {webhook_id}{paused}.")


@webhooks_group.command("resume")
@click.argument("webhook_id", type=int)
def webhooks_resume(webhook_id: int) -> None:
    """Deliver to a paused webhook WEBHOOK_ID again, its waiting events first."""
    store = store_or_exit(settings_or_exit())
    _existing(store, webhook_id)
    webhooks.resume(store, webhook_id)
    click.echo(f"Resumed webhook {webhook_id}.")


def _existing(store: Repository, webhook_id: int) -> Webhook:
    hook = store.get_webhook(webhook_id)
    if hook is None:
        fail(f"no webhook {webhook_id}: `tweetbot webhooks list` shows them")
    return hook


COMMANDS = (webhooks_group,)
