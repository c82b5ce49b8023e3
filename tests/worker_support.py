"""Helpers for tests that run real worker processes against the real sandbox."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bot import accounts
from bot.models import Account, utcnow
from bot.settings import load_settings
from bot.store import Repository, open_store
from bot.xclient import TokenSet

from sandbox_helpers import SandboxControl

TWEETBOT = str(Path(sys.executable).with_name("tweetbot"))
TOKEN_ENDPOINT = "POST /2/oauth2/token"


def open_test_store(env: dict[str, str]) -> Repository:
    """The store a process started with `env` uses (its file, or DATABASE_URL), opened in the test process."""
    return open_store(load_settings(dotenv_path=None, environ=env))


def connect_accounts(store: Repository, sandbox: SandboxControl, count: int, prefix: str = "acct",
                     scopes: list[str] | None = None) -> list[Account]:
    """`count` new sandbox users, each granted (the sandbox's default scopes, or `scopes`) and
    connected in the store as the web callback would."""
    connected = []
    for user in sandbox.create_users(count, prefix):
        connected.append(connect_user(store, sandbox, user, scopes))
    return connected


def connect_user(store: Repository, sandbox: SandboxControl, user: dict[str, Any],
                 scopes: list[str] | None = None) -> Account:
    answer = sandbox.grant(user["id"], scopes=scopes)
    tokens = TokenSet.from_response(answer, utcnow())
    return accounts.connect(store, tokens, {"id": user["id"], "username": user["username"],
                                            "name": user.get("name") or ""})


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll until `condition()` is truthy (its value), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class WorkerProcess:
    """A real `tweetbot worker` process; its output goes to a log file."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str = "worker") -> None:
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen([TWEETBOT, "worker"], cwd=workdir, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_started(self, timeout: float = 30) -> None:
        wait_until(lambda: "tweetbot.worker: started" in self.log() or self.process.poll() is not None,
                   timeout, "the worker to start")
        assert self.process.poll() is None, self.log()

    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM and wait; the exit code (raises if it takes longer than `timeout`)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def stop_quietly(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def chain_of(sandbox: SandboxControl, user_id: str) -> dict[str, Any]:
    """The sandbox's newest token chain for a user."""
    chains = [c for c in sandbox.state("chains")["chains"] if c["user_id"] == user_id]
    assert chains, f"no chain for {user_id}"
    return chains[-1]


def stored_refreshes(store: Repository, user_id: str) -> int:
    """How many refreshes the store has recorded for the account since it was last connected."""
    count = 0
    for event in store.events(limit=10**6, account_id=user_id):
        if event.kind in ("connected", "reconnected"):
            return count
        count += event.kind == "refreshed"
    return count


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that keeps every JSON message POSTed to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()
