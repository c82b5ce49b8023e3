"""The accounts' commands: `tweetbot accounts` (each one's token health, the workers' heartbeats; from the
store, or from a deployed bot's API) and `tweetbot refresh` (refresh tokens now, on the bot's host)."""
from __future__ import annotations

import sys
from datetime import timedelta

import click

from bot.cli.common import settings_or_exit, store_or_exit
from bot.cli.sources import open_source, remote_option
from bot.logs import configure_logging
from bot.models import NEEDS_RECONNECT, Account
from bot.settings import Settings
from bot.store import Repository
from bot.when import relative
from bot.xclient import XClient


def open_everything() -> tuple[Settings, Repository, XClient]:
    """Settings, verified store and X client for a command that works on accounts."""
    settings = settings_or_exit()
    return settings, store_or_exit(settings), XClient(settings)


@click.command("accounts")
@remote_option
def accounts_command(url: str | None) -> None:
    """List the connected accounts with their token health."""
    from bot.media_checks import RECONNECT_FOR_MEDIA, can_post_media

    source = open_source(url)
    rows = source.list_accounts()
    if not rows:
        click.echo("No accounts yet: sign in to the web app and press Connect.")
    sending = source.sending_workers()
    for account in rows:
        line = (f"{account.handle:20} {account.status:16} expires {relative(account.expires_at):14} "
                f"refreshed {relative(account.refreshed_at):14} failures {account.refresh_failures}")
        if sending.get(account.user_id):
            line += f"  posting: worker {sending[account.user_id]}"
        if account.last_error and account.status == NEEDS_RECONNECT:
            line += f"  ({account.last_error})"
        elif not can_post_media(account):
            line += f"  text only: {RECONNECT_FOR_MEDIA}"
        click.secho(line, fg="red" if needs_owner(account) else None)
    for name, beat in source.workers().items():
        click.echo(f"worker {name:30} heartbeat {relative(beat)}")


def needs_owner(account: Account) -> bool:
    from bot.alerts import attention

    return attention(account) != "ok"


@click.command("refresh")
@click.argument("handle", required=False)
def refresh_command(handle: str | None) -> None:
    """Refresh now the tokens of @HANDLE (default: every active account)."""
    from bot.tokens import TokenKeeper

    configure_logging(sys.stdout)
    settings, store, x = open_everything()
    keeper = TokenKeeper(store, x, timedelta(seconds=settings.refresh_margin))
    targets = store.list_accounts()
    if handle:
        found = store.find_account(handle)
        if found is None:
            click.secho(f"tweetbot: no account {handle}", fg="red", err=True)
            sys.exit(1)
        targets = [found]
    failed = 0
    for account in targets:
        before = account.refresh_token
        after = keeper.refresh_if_due(account.user_id, force=True)
        if after is None or after.refresh_token == before:
            failed += 1
            reason = "the account is gone" if after is None else after.last_error or f"status {after.status}"
            click.secho(f"{account.handle}: not refreshed ({reason})", fg="red")
        else:
            click.echo(f"{account.handle}: refreshed, expires {relative(after.expires_at)}")
    sys.exit(1 if failed else 0)


COMMANDS: tuple[click.Command, ...] = (accounts_command, refresh_command)
