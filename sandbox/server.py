"""`python -m sandbox` (and `tweetbot sandbox`): serve the sandbox on a threaded HTTP/1.1 server until stopped.

werkzeug's threaded server gives a thread per connection, which is what the bot, a
browser and the tests need at once. Its request handler, though, closes every
connection after one answer (werkzeug 3 sends `Connection: close` unconditionally), so
each request pays a TCP handshake and a new thread. `KeepAliveHandler` answers the same
WSGI app but keeps the connection open as HTTP/1.1 allows: the request body is bounded
by its Content-Length and drained after the answer, the answer is buffered and sent with
a Content-Length. That roughly doubles throughput on loopback (see bench/sandbox.py).

Request logging is off: at bench rates a log line costs as much as the request. The
banner on start says where everything is.
"""
from __future__ import annotations

import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

from sandbox.app import create_app
from sandbox.keeping import StateFile, StateFileError, load
from sandbox.options import SandboxConfig
from sandbox.state import current_world

IDLE_TIMEOUT = 75.0  # seconds a kept-alive connection may sit idle (as nginx's default)


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler with HTTP/1.1 keep-alive and without per-request log lines."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True  # small answers must not wait for the client's delayed ACK

    def run_wsgi(self) -> None:
        """Run the app for one request; keep the connection unless either side wants it closed."""
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        body_in = self._bounded_input(environ)
        captured: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers]
            return lambda data: None  # the legacy write callable; Flask never uses it

        try:
            result = self.server.app(environ, start_response)
            try:
                payload = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except ConnectionError:
            # The app dropped the connection on purpose (a sandbox fault): send nothing.
            self.close_connection = True
            return
        except Exception:  # noqa: BLE001 - any app failure becomes a plain 500, as werkzeug does
            self.log_error("sandbox: unhandled error on %s %s", self.command, self.path)
            captured[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]]
            payload, self.close_connection = b"Internal Server Error", True
        if body_in is None:
            self.close_connection = True  # a chunked body we may not have read to its end
        else:
            body_in.exhaust()  # unread body bytes would be parsed as the next request
        self._send(captured[0], captured[1], payload, environ["REQUEST_METHOD"] == "HEAD")

    def _bounded_input(self, environ: dict[str, Any]) -> LimitedStream | None:
        """Limit the body stream to Content-Length so the next request is not read by the app."""
        if environ.get("wsgi.input_terminated"):
            return None  # chunked request: werkzeug's dechunking stream already ends the body
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        stream = LimitedStream(self.rfile, length)  # type: ignore[arg-type]  # werkzeug's stub wants IO[bytes]
        environ["wsgi.input"] = stream
        return stream

    def _send(self, status: str, headers: list[tuple[str, str]], payload: bytes, head: bool) -> None:
        """Write status, headers (with Content-Length) and body."""
        code = int(status.split(" ", 1)[0])
        self.send_response(code, _reason(code))
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(payload)
        self.wfile.flush()

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """No per-request log line (see the module docstring)."""
        return None


def _reason(code: int) -> str:
    """The standard reason phrase ("Created", not werkzeug's "CREATED")."""
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def serve(config: SandboxConfig, host: str, port: int, state_path: Path | None = None) -> None:
    """Run a sandbox whose world starts from `config` (and `state_path`'s file, kept after every
    change, when given) on host:port; blocks until interrupted.

    `python -m sandbox` (sandbox/__main__.py) builds `config` from its arguments and
    environment; `tweetbot sandbox` runs that with the bot's client and tier.
    """
    app = create_app(config)
    remembered = state_path is not None and _keep_state(app, state_path)
    server = make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)
    server.daemon_threads = True  # type: ignore[attr-defined]  # idle kept-alive connections must not keep the process alive
    base = f"http://{host}:{server.port}"
    with app.app_context():
        world = current_world()
        users = ", ".join("@" + u.username for u in world.people.all())
        client = world.config.clients[0]
    kind = "confidential" if client.client_secret else "public"
    print(f"X sandbox on {base}  (users: {users}; client {client.client_id} ({kind}), "
          f"callback {', '.join(client.redirect_uris)}; tier {world.options.tier}; "
          f"access tokens live {world.options.access_token_lifetime} s)", file=sys.stderr, flush=True)
    print(f"  consent: {base}/i/oauth2/authorize   API: {base}/2/…   control: {base}/_sandbox/state",
          file=sys.stderr, flush=True)
    if state_path is not None:
        print(f"  state: {state_path} ({'the world as it was left' if remembered else 'a new world'})",
              file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _keep_state(app: Flask, path: Path) -> bool:
    """Start the app's world from `path` and keep it there; whether there was a world to start from.

    An unusable file stops the sandbox with one line, untouched."""
    state_file = StateFile(path)
    with app.app_context():
        world = current_world()
        try:
            remembered = load(world, path)
        except StateFileError as exc:
            raise SystemExit(str(exc)) from exc
        state_file.save(world)  # written once at start: a missing folder or a read-only one shows now, not mid-request
    state_file.install(app)
    return remembered
