"""The sandbox's Flask app: X's OAuth server, API, control hooks and pages in one.

`create_app(config)` builds a fresh world from `config` (clients, users, tier) and
registers one blueprint per concern. Every `SandboxError` a view raises becomes X's
answer through one handler, so error shapes are decided in `sandbox/errors.py` only.
"""
from __future__ import annotations

from flask import Flask, Response, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from sandbox import api, control, faults, media_api, oauth, pages
from sandbox.errors import SandboxError, generic_problem
from sandbox.options import SandboxConfig
from sandbox.state import World

# Big enough for X's largest simple upload (a 512 MB video) plus multipart overhead.
MAX_UPLOAD = 513 * 1024 * 1024


def create_app(config: SandboxConfig | None = None) -> Flask:
    """A sandbox app with its own in-memory world."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD
    # X's JSON is compact and keeps its key order; Flask would sort keys.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]
    app.json.mimetype = "application/json; charset=utf-8"  # type: ignore[attr-defined]  # as X labels it
    app.extensions["sandbox.world"] = World(config)

    for blueprint in (oauth.bp, api.bp, media_api.bp, control.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(pages.bp)  # last: `/<username>` must not shadow anything
    faults.install(app)
    app.register_error_handler(SandboxError, _sandbox_error)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _method_not_allowed)
    return app


def _sandbox_error(error: SandboxError) -> Response:
    """Every refusal a view raises becomes X's answer here."""
    return error.response()


def _not_found(error: HTTPException) -> ResponseReturnValue:
    """Unknown API paths answer X's problem JSON; unknown pages keep Flask's HTML 404."""
    if request.path.startswith("/2/"):
        return generic_problem(404).response()
    return error.get_response()


def _method_not_allowed(error: Exception) -> Response:
    """A known path with the wrong method, answered as a problem (X's API style)."""
    return generic_problem(405).response()
