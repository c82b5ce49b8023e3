"""Injected faults: the failures the bot must survive, on demand.

Every view that plays an X endpoint is tagged with its key ("POST /2/tweets",
"DELETE /2/tweets/:id", "POST /2/oauth2/token", …). Before the view runs, a matching
fault may add latency, answer an error without doing the work (`status`), or close the
connection without answering (`drop`). The `store_then_*` modes let the work happen and
then lose the answer: the post is stored (or the token rotated) but the client sees a
503, or a connection closed without any HTTP answer, which is the ambiguous case.

Dropping is done outside Flask, by `DropMiddleware`, so no HTTP bytes at all are sent:
it shuts the socket down and raises `ConnectionAbortedError`, which werkzeug's server
treats as a connection the client dropped (no 500 page, no traceback).
"""
from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, g, request

from sandbox.errors import generic_problem
from sandbox.state import current_world

DROP_FLAG = "sandbox.drop"


def x_endpoint(key: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Tag a view with the X endpoint it plays (faults, limits and counts use the key)."""
    def tag(view: Callable[..., Any]) -> Callable[..., Any]:
        view.x_endpoint = key  # type: ignore[attr-defined]
        return view
    return tag


def endpoint_key() -> str | None:
    """The X endpoint key of the current request's view, or None for pages and control."""
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "x_endpoint", None)


def before_request() -> Response | None:
    """Count the request and apply a fault that fires before the work."""
    key = endpoint_key()
    if key is None:
        return None
    world = current_world()
    world.traffic.count_request(key, request.args.to_dict())
    fault = world.traffic.take_fault(key)
    if fault is None:
        return None
    if fault.latency:
        time.sleep(fault.latency)  # real time: it is the client's timeout that is being tested
    if fault.mode == "status":
        return generic_problem(fault.status).response()
    if fault.mode == "drop":
        request.environ[DROP_FLAG] = True
        return Response(status=204)
    if fault.mode in ("store_then_status", "store_then_drop"):
        g.after_fault = fault
    return None


def after_request(response: Response) -> Response:
    """Lose the answer of work that was done, when a `store_then_*` fault fired."""
    fault = g.pop("after_fault", None)
    if fault is None:
        return response
    if fault.mode == "store_then_drop":
        request.environ[DROP_FLAG] = True
        return response
    return generic_problem(fault.status).response()


class DropMiddleware:
    """Closes the connection without an HTTP answer when a view asked for it."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        deferred: list[tuple[Any, ...]] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            deferred.append((status, headers, exc_info))
            return lambda data: None  # Flask never uses the legacy write callable

        body = self.app(environ, hold)
        if environ.get(DROP_FLAG):
            if hasattr(body, "close"):
                body.close()
            _shut(environ)
            raise ConnectionAbortedError("sandbox fault: connection dropped without an answer")
        start_response(*deferred[0])
        return body


def _shut(environ: dict[str, Any]) -> None:
    """Shut the client's socket both ways so it sees the connection end, not an answer."""
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def install(app: Flask) -> None:
    """Hook the fault checks into `app` and wrap it in the drop middleware."""
    app.before_request(before_request)
    app.after_request(after_request)
    app.wsgi_app = DropMiddleware(app.wsgi_app)  # type: ignore[method-assign]
