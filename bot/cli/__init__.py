"""The `tweetbot` command line: the group `main` (the `tweetbot` script), which holds the commands of
its modules: `config` (init, check), `accounts` (accounts, refresh), `run` (run, web, worker,
sandbox), `queue` (post, import, count, slots, queue, …), `store` (migrate, store copy,
backup, restore), `keys` (API keys) and `webhooks` (signed event POSTs). Each of those imports
`bot.cli.common` and no other module's commands; this package imports them and adds their
`COMMANDS`, so none needs another and any can be imported first.

Each command loads the settings itself (never at import time), so `init` and
`count` work before there is any `.env`, and a bad variable ends the command
with one line naming it instead of a traceback. So does a store that cannot be
used (damaged files, a TOKEN_KEY that does not open it): every command that
opens the store verifies it first, and the group turns the same errors raised
later into that one line, exit 2; so it does with a deployed bot that cannot be reached or refuses
the key (`bot.remote.RemoteError`), for the commands that talk to one (`bot.cli.sources`).
"""
from __future__ import annotations

from typing import Any

import click

from bot.cli import accounts, config, keys, queue, run, store, webhooks
from bot.cli.common import stop_unusable
from bot.remote import RemoteError
from bot.store import UNUSABLE


class TweetbotGroup(click.Group):
    """The command group; a store found unusable in the middle of any command ends it with one line, exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UNUSABLE as exc:
            stop_unusable(exc)
        except RemoteError as exc:
            stop_unusable(exc)


@click.group(cls=TweetbotGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """tweetbot: posts to X on your behalf, on a schedule."""


for module in (config, accounts, run, queue, store, keys, webhooks):
    for command in module.COMMANDS:
        main.add_command(command)
