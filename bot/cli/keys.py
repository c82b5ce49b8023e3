"""API keys' commands: `tweetbot keys create|list|revoke` (the keys other programs drive `/api/v1` with)."""
from __future__ import annotations

import click

from bot.api_keys import SCOPES, KeyRefused, create_key, list_keys, revoke_key
from bot.cli.common import fail, settings_or_exit, store_or_exit
from bot.models import utcnow


@click.group("keys")
def keys_group() -> None:
    """API keys for /api/v1: create (printed once), list, revoke."""


@keys_group.command("create")
@click.option("--name", required=True, help="What the key is for (a CI job, a cron on another host…).")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="What it may do; repeat for several.")
def keys_create(name: str, scopes: tuple[str, ...]) -> None:
    """Make a key and print it, this once: the store keeps only its hash."""
    store = store_or_exit(settings_or_exit())
    try:
        key, whole = create_key(store, name, scopes, utcnow())
    except KeyRefused as exc:
        fail(str(exc))
    click.echo(whole)
    click.echo(f"Key {key.id} ({key.name}): {', '.join(key.scopes)}. Shown this once: keep it now.", err=True)


@keys_group.command("list")
def keys_list() -> None:
    """Every key: id, name, scopes, made, revoked."""
    keys = list_keys(store_or_exit(settings_or_exit()))
    if not keys:
        click.echo("No API keys yet: `tweetbot keys create --name NAME --scope posts:write`.")
    for key in keys:
        revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M} UTC" if key.revoked_at else "live"
        click.echo(f"{key.prefix:20} {key.name:20} {','.join(key.scopes):40} "
                   f"made {key.created_at:%Y-%m-%d %H:%M} UTC  {revoked}")


@keys_group.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Refuse the key KEY_ID (its id, or the key itself) from now on, in every process."""
    try:
        key = revoke_key(store_or_exit(settings_or_exit()), key_id, utcnow())
    except KeyRefused as exc:
        fail(str(exc))
    click.echo(f"Revoked key {key.id} ({key.name}).")


COMMANDS = (keys_group,)
