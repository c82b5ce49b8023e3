"""The web app: admin sign-in, the consent flow, the dashboard, the health check.

`create_app()` is the factory gunicorn calls (`web:create_app()`); it reads the
settings then, never at import time. Each concern is one blueprint in its own module
(`web.auth`, `web.connect`, `web.dashboard`, `web.slots`, `web.media_bytes`, `web.health`,
`web.webhooks`, …), registered here; the blueprints import `web.db` (settings, the store opened lazily once per
process, the X client, the clock), never this package, so nothing imports in a circle. The
checks a request passes before its page (the metrics token, the store, sign-in, the body's
size) are `web.gates.GATES`, registered here in that list's order; `web.security` adds what
every response needs (CSRF, cookies, headers, proxy trust).
A request body may carry one video at X's limit (`web.gates.MAX_BODY`); a larger one gets
a 413 page that says so.
"""
from __future__ import annotations

import sys
from typing import Any

from flask import Flask
from werkzeug.exceptions import RequestEntityTooLarge

from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, load_settings
from bot.store import UNUSABLE, SchemaBehind, open_store
from web import (
    api,
    api_pages,
    auth,
    calendar,
    confirm,
    connect,
    dashboard,
    db,
    edit,
    fragments,
    gates,
    health,
    media_bytes,
    metrics,
    security,
    slots,
    webhooks,
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app; `test_config` may carry `SETTINGS` (a `Settings`), `CLOCK` (a callable
    returning the UTC time, for tests that move time) and Flask config."""
    app = Flask(__name__)
    config = dict(test_config or {})
    settings: Settings = config.pop("SETTINGS", None) or _settings_or_exit()
    _refuse_an_old_schema(settings)

    db.init_app(app, settings)
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=gates.MAX_BODY)
    app.config.update(config)
    configure_logging(sys.stderr)  # gunicorn's error log

    for gate in gates.GATES:  # the only before-request functions of ours, in the order web.gates explains
        app.before_request(gate)
    for error in UNUSABLE:
        app.register_error_handler(error, health.unusable_error)
    app.register_error_handler(RequestEntityTooLarge, gates.too_large)
    security.init_app(app, settings)  # its CSRF check reads the form: after the gates, so the size limit is set
    app.register_blueprint(api.bp)
    app.register_blueprint(api_pages.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(connect.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(fragments.bp)
    app.register_blueprint(edit.bp)
    app.register_blueprint(confirm.bp)
    app.register_blueprint(calendar.bp)
    app.register_blueprint(slots.bp)
    app.register_blueprint(media_bytes.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(webhooks.bp)
    return app


def _refuse_an_old_schema(settings: Settings) -> None:
    """A database whose schema is not this code's stops the app with one line (run `tweetbot migrate`);
    any other trouble with the store keeps it up, answering 503 with the reason."""
    if not settings.database_url:
        return
    opened = open_store(settings)
    try:
        opened.verify()
    except SchemaBehind as exc:
        print(f"tweetbot: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    except UNUSABLE:
        pass
    finally:
        opened.close()


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"tweetbot: configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None

