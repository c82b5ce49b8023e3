"""The API's pages for a person, behind sign-in: its keys (`/api-keys`: make one, shown this once;
revoke one) and its reference (`/api-docs`: the OpenAPI document of `web.api_spec`, rendered)."""
from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot.api_keys import SCOPES, KeyRefused, create_key, list_keys, revoke_key
from web.api_spec import SPEC
from web.db import now, store

log = logging.getLogger("tweetbot.web.api_pages")
bp = Blueprint("api_pages", __name__)


@bp.get("/api-keys")
def keys() -> ResponseReturnValue:
    return _keys_page()


@bp.post("/api-keys")
def create() -> ResponseReturnValue:
    """Make a key; the page shows it this once (never in a redirect, a flash or a log)."""
    try:
        key, whole = create_key(store(), request.form.get("name", ""), request.form.getlist("scope"), now())
    except KeyRefused as exc:
        return _keys_page(error=f"No key made: {exc}.", status=400)
    log.info("api key %s (%s) made: %s", key.id, key.name, ", ".join(key.scopes))
    return _keys_page(made=whole, made_name=key.name)


@bp.post("/api-keys/<key_id>/revoke")
def revoke(key_id: str) -> ResponseReturnValue:
    try:
        key = revoke_key(store(), key_id, now())
    except KeyRefused as exc:
        flash(f"Not revoked: {exc}.", "error")
    else:
        log.info("api key %s revoked", key.id)
        flash(f"Revoked key {key.id} ({key.name}): every process refuses it now.", "ok")
    return redirect(url_for("api_pages.keys"), 303)


def _keys_page(made: str | None = None, made_name: str | None = None, error: str | None = None,
               status: int = 200) -> ResponseReturnValue:
    return render_template("api_keys.html", keys=list_keys(store()), scopes=SCOPES, made=made,
                           made_name=made_name, error=error), status


@bp.get("/api-docs")
def docs() -> ResponseReturnValue:
    """The OpenAPI document as a page: each operation, its scope, parameters, body and answers."""
    operations = [(path, method.upper(), operation) for path, methods in SPEC["paths"].items()
                  for method, operation in methods.items()]
    return render_template("api_docs.html", spec=SPEC, operations=operations,
                           schemas=SPEC["components"]["schemas"])
