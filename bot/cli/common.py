"""What every group of `tweetbot` commands shares: settings and a verified store, or one line and exit 2.

A leaf of the command line: `bot.cli` (the group and the account commands), `bot.cli.queue`
and `bot.cli.store` import it, and it imports none of them, so any of them can be
imported first.
"""
from __future__ import annotations

import sys
from typing import NoReturn

import click

from bot.settings import Settings, SettingsError, load_settings
from bot.store import UNUSABLE, Repository, open_store


def settings_or_exit() -> Settings:
    """The settings, or exit 2 with the one-line reason."""
    try:
        return load_settings()
    except SettingsError as exc:
        click.secho(f"tweetbot: configuration error: {exc}", fg="red", err=True)
        sys.exit(2)


def stop_unusable(exc: BaseException) -> NoReturn:
    """The store cannot be used: its one-line reason in red on stderr, exit 2 (never a traceback)."""
    click.secho(f"tweetbot: {' '.join(str(exc).split())}", fg="red", err=True)
    sys.exit(2)


def store_or_exit(settings: Settings) -> Repository:
    """The store, verified (files whole, TOKEN_KEY opens it), or exit 2 with the one-line reason."""
    store = open_store(settings)
    try:
        store.verify()
    except UNUSABLE as exc:
        stop_unusable(exc)
    return store


def fail(reason: str) -> NoReturn:
    """Refuse: the reason on stderr, exit 1."""
    click.secho(f"tweetbot: {reason}", fg="red", err=True)
    sys.exit(1)
