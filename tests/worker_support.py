"""Helpers for tests that run real worker processes against the real sandbox, and the kernel's
view of their TCP connections (what a server has read, what it has still to answer)."""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


# --- TCP connections, as the kernel lists them (Linux) ----------------------------------

TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
# The tables' `st` codes (the kernel's include/net/tcp_states.h).
ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT = 1, 4, 5, 8

Endpoint = tuple[str, int]


@dataclass(frozen=True)
class TcpSocket:
    """One end of a TCP connection: on loopback the table lists both ends."""

    local: Endpoint
    remote: Endpoint
    state: int
    unacked: int  # bytes (and a FIN) this end sent that the other end has not acknowledged
    unread: int  # bytes that reached this end and its process has not read


def tcp_sockets() -> list[TcpSocket]:
    """Every TCP socket of this machine's network namespace."""
    found = []
    for table in TCP_TABLES:
        if not table.exists():  # no IPv6
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            unacked, unread = fields[4].split(":")
            found.append(TcpSocket(_endpoint(fields[1]), _endpoint(fields[2]), int(fields[3], 16),
                                   int(unacked, 16), int(unread, 16)))
    return found


def _endpoint(field: str) -> Endpoint:
    """A table's `address:port`, e.g. `0100007F:1F90` is ("127.0.0.1", 8080): the address is in 32-bit
    words of the host's byte order, the port in hex."""
    address, port = field.split(":")
    raw = bytes.fromhex(address)
    words = [raw[i:i + 4] for i in range(0, len(raw), 4)]
    ip = ipaddress.ip_address(b"".join(word[::-1] if sys.byteorder == "little" else word for word in words))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), int(port, 16)


def server_endpoint(url: str) -> Endpoint:
    """Where a server at `url` (http://host:port) listens."""
    parts = urlsplit(url)
    return socket.gethostbyname(parts.hostname or ""), parts.port or 80


def hung_up_unfinished(url: str) -> list[TcpSocket]:
    """Connections to the server at `url` that their client has closed and the server has not.

    A client's end is in FIN_WAIT from the moment it closes (a killed process's ends close
    before it can be reaped), until the server closes its own; the server's end waits in
    CLOSE_WAIT even if the client's is dropped first. The sandbox closes a connection only
    once it has answered everything sent on it.
    """
    server = server_endpoint(url)
    return [end for end in tcp_sockets()
            if (end.remote == server and end.state in (FIN_WAIT1, FIN_WAIT2))
            or (end.local == server and end.state == CLOSE_WAIT)]


def wait_until_x_has_finished_abandoned_calls(sandbox: SandboxControl, timeout: float = 30) -> None:
    """Wait until X has answered every request sent on a connection its client has closed since: a
    killed worker's, a call given up on. After that none of them can still land at X.

    The kernel lists its table a page at a time, so a row can be missed while others come and go:
    the table must show none twice in a row.
    """
    clear_readings = 0

    def clear_twice() -> bool:
        nonlocal clear_readings
        clear_readings = clear_readings + 1 if not hung_up_unfinished(sandbox.url) else 0
        return clear_readings >= 2

    wait_until(clear_twice, timeout, "X to finish the calls of clients that hung up", every=0.02)


def read_by_server(url: str, clients: list[socket.socket]) -> bool:
    """Whether the server at `url` has accepted each client's connection and read every byte it sent."""
    server = server_endpoint(url)
    ends = {(end.local, end.remote): end for end in tcp_sockets() if end.state == ESTABLISHED}
    for client in clients:
        mine: Endpoint = client.getsockname()[:2]
        sent, received = ends.get((mine, server)), ends.get((server, mine))
        if sent is None or received is None or sent.unacked or received.unread:
            return False
    return True
