"""The running app's settings, store, X client and clock: the one module every blueprint imports.

A leaf, as in Flask's tutorial (`flaskr/db.py`): it imports nothing of `web`, so the
blueprints need not import the package that imports them. `init_app` (called by
`create_app`) puts the settings on the app and registers the teardown; nothing here
reads the environment or opens anything at import time.

- `settings()`: the `Settings` `create_app` was given or read.
- `store()`: the app's store, opened on the first request that needs it and shared by
  that process's threads (a store is thread-safe: the file store holds a mutex, PostgreSQL
  a connection per thread from its pool); closed by `close_store` or when the process exits.
- `x_client()`: the X (or sandbox) client, one per request (in `g`), dropped at its teardown.
- `now()`: the time (UTC), the one clock of the web app: no blueprint reads the wall clock
  itself, so a test that gives `create_app` a `CLOCK` (a callable) moves every page's time.
"""
from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable
from datetime import datetime

from flask import Flask, current_app, g

from bot.models import utcnow
from bot.settings import Settings
from bot.store import Repository, open_store
from bot.xclient import XClient

SETTINGS_KEY = "TWEETBOT_SETTINGS"
CLOCK_KEY = "CLOCK"
_STORE = "tweetbot.store"
_opening = threading.Lock()


def init_app(app: Flask, settings: Settings) -> None:
    """Give `app` its settings and the teardown that drops each request's handles."""
    app.config[SETTINGS_KEY] = settings
    holder: dict[str, Repository] = {}
    app.extensions[_STORE] = holder
    app.teardown_appcontext(_teardown_request)
    atexit.register(_close_at_exit, weakref.ref(app))  # a weak reference: tests make many apps


def settings() -> Settings:
    """The running app's settings."""
    found: Settings = current_app.config[SETTINGS_KEY]
    return found


def store() -> Repository:
    """The running app's store, opened on first use (once, whatever the threads) and shared after."""
    holder: dict[str, Repository] = current_app.extensions[_STORE]
    opened = holder.get("store")
    if opened is None:
        with _opening:
            opened = holder.get("store")
            if opened is None:
                opened = holder["store"] = open_store(settings())
    return opened


def x_client() -> XClient:
    """The X (or sandbox) client for this request (made on first use)."""
    if "x_client" not in g:
        g.x_client = XClient(settings())
    client: XClient = g.x_client
    return client


def now() -> datetime:
    """The time now (UTC), or the test's clock."""
    clock: Callable[[], datetime] | None = current_app.config.get(CLOCK_KEY)
    return clock() if clock is not None else utcnow()


def close_store(app: Flask) -> None:
    """Close `app`'s store, if it was opened (the next request opens it again)."""
    _close(app.extensions[_STORE])


def _close_at_exit(app: weakref.ref[Flask]) -> None:
    alive = app()
    if alive is not None:
        close_store(alive)


def _close(holder: dict[str, Repository]) -> None:
    with _opening:
        opened = holder.pop("store", None)
    if opened is not None:
        opened.close()


def _teardown_request(_error: BaseException | None) -> None:
    g.pop("x_client", None)
