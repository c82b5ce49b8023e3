"""Starting tweetbot's long-running processes (what `make run` and the Procfile do)."""
from __future__ import annotations

import errno
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from bot.settings import Settings

DEMO_TOKEN_HEADROOM = 60  # seconds

# The path without the query string: the OAuth callback's query holds the one-time code.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


# Threads per gunicorn worker. A sync worker is held whole by one client that never finishes its
# headers (two such clients stalled both workers until /healthz timed out); a gthread worker's
# main loop keeps accepting and a stalled client holds one thread. Measured: with four stalled
# clients /healthz answers at once (tests/test_web_processes.py prints the figure).
THREADS = 8
TIMEOUT = 30  # s: a worker whose main loop is silent that long is restarted (gunicorn's default)
KEEPALIVE = 5  # s: an idle kept-alive connection is closed after this (it holds no thread meanwhile)


def gunicorn_command(host: str, port: int, workers: int = 2) -> list[str]:
    """gunicorn serving `web:create_app()`; the Procfile's web line says the same.

    `--no-control-socket`: gunicorn ≥ 25.1 would listen on $XDG_RUNTIME_DIR/gunicorn.ctl (else
    ~/.gunicorn/gunicorn.ctl), one path for every gunicorn of the user, which two tweetbots (or
    the tests' many) would take from each other; nothing here uses a control interface."""
    return [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "gthread",
            "--threads", str(THREADS), "--timeout", str(TIMEOUT), "--keep-alive", str(KEEPALIVE),
            "--bind", f"{host}:{port}", "--no-control-socket",
            "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT, "web:create_app()"]


def exec_gunicorn(host: str, port: int) -> None:
    """Replace this process with gunicorn."""
    command = gunicorn_command(host, port)
    os.execv(command[0], command)


def sandbox_command(settings: Settings, host: str, port: int, token_lifetime: int | None = None,
                    media_processing_seconds: float = 0.0,
                    state_path: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """`python -m sandbox` for the bot's own client (id, callback, tier) and its environment.

    The sandbox is a program of its own (the bot imports nothing from it): it is told
    everything on its command line, except a confidential client's secret, which goes in
    `SANDBOX_CLIENT_SECRET` so that it does not show in the process list.
    """
    # -P: a `sandbox` folder or module in the current directory must not shadow the package.
    command = [sys.executable, "-P", "-m", "sandbox", "--host", host, "--port", str(port),
               "--client-id", settings.x_client_id, "--redirect-uri", settings.redirect_uri,
               "--tier", settings.x_tier, "--media-processing-seconds", repr(float(media_processing_seconds))]
    if token_lifetime is not None:
        command += ["--token-lifetime", str(token_lifetime)]
    if state_path is not None:
        command += ["--state", str(state_path)]
    env = dict(os.environ)
    if settings.x_client_secret:
        env["SANDBOX_CLIENT_SECRET"] = settings.x_client_secret
    else:
        command.append("--client-secret=")  # a public client
    return command, env


def exec_sandbox(settings: Settings, host: str, port: int, token_lifetime: int | None = None,
                 media_processing_seconds: float = 0.0, state_path: Path | None = None) -> None:
    """Replace this process with the sandbox (`tweetbot sandbox`)."""
    command, env = sandbox_command(settings, host, port, token_lifetime, media_processing_seconds, state_path)
    os.execve(command[0], command, env)


def process_table(settings: Settings) -> dict[str, str]:
    """The processes `tweetbot run` starts (the sandbox only without X credentials): name → command."""
    tweetbot = shlex.quote(os.path.join(os.path.dirname(sys.executable), "tweetbot"))
    table = {"web": shlex.join(gunicorn_command("127.0.0.1", settings.port)), "worker": f"{tweetbot} worker"}
    if settings.sandbox:
        # Tokens that expire a minute past the refresh margin: the log shows a refresh
        # about a minute after Connect, not two hours later.
        lifetime = settings.refresh_margin + DEMO_TOKEN_HEADROOM
        state = shlex.quote(str(sandbox_state_path(settings)))
        table["sandbox"] = (f"{tweetbot} sandbox --port {settings.sandbox_port} --token-lifetime {lifetime} "
                            f"--state {state}")
    return table


def sandbox_state_path(settings: Settings) -> Path:
    """Where `tweetbot run`'s sandbox keeps its world: beside the store, so a restart finds the
    token chains the store holds (X does not forget them either)."""
    return settings.store_path.parent / "sandbox.state"


def port_taken(host: str, port: int) -> bool:
    """Whether something listens on `host:port` already (a socket merely closing there does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn and the sandbox bind
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def taken_ports(settings: Settings) -> list[str]:
    """One line for each port `tweetbot run` needs that is taken, naming the variable that moves it."""
    wanted = [("web app", settings.port, "PORT")]
    if settings.sandbox:
        wanted.append(("sandbox", settings.sandbox_port, "SANDBOX_PORT"))
    return [f"tweetbot: port {port} (the {what}) is taken on 127.0.0.1: set {variable} in .env to another port"
            for what, port, variable in wanted if port_taken("127.0.0.1", port)]


_STOPPED_BY_US = re.compile(r" stopped \(rc=-(?:2|15)\)")


class _Output:
    """Where honcho prints every process's lines: fd 1, written straight (no buffer that a signal
    handler printing "SIGTERM received" could re-enter). When the reader is gone (a closed terminal
    says EIO, a quit pager EPIPE) everything stops, as on a hangup; honcho's own printer would raise
    out of its loop instead and leave the web app, the worker and the sandbox running."""

    def isatty(self) -> bool:
        return os.isatty(1)

    def write(self, text: str) -> int:
        data = text.encode(errors="replace")
        try:
            while data:
                data = data[os.write(1, data):]
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EPIPE):
                raise
            _stop_without_output()
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""


def _manager() -> Any:
    """honcho's Manager, printing to `_Output`, quiet about the processes it stopped itself: "web
    stopped", not "(rc=-15)"."""
    from honcho.manager import Manager
    from honcho.printer import Printer

    class Quiet(Manager):
        stopping = False

        def terminate(self) -> None:
            self.stopping = True
            super().terminate()

        def _system_print(self, data: str) -> None:
            super()._system_print(_STOPPED_BY_US.sub(" stopped", data) if self.stopping else data)

    return Quiet(Printer(_Output()))


# Left in make's process group while `tweetbot run` leads its own: a signal sent to make's whole
# job (`kill -INT %1`, an IDE's stop button) reaches make and this, which passes it on to us.
_RELAY = """
import os, signal, sys, time
target = int(sys.argv[1])
def relay(signum, frame):
    os.kill(target, signal.SIGHUP if signum == signal.SIGHUP else signal.SIGINT)
for name in ("SIGINT", "SIGHUP", "SIGQUIT"):
    signal.signal(getattr(signal, name), relay)
while os.getppid() == target:
    time.sleep(0.5)
"""


@contextmanager
def keystrokes_to_us() -> Iterator[None]:
    """Be the terminal's foreground process group while running, as a shell makes each job it runs.

    Under `make run`, make leads the terminal's foreground group, so Ctrl-C signals make as well
    as us, and make dies of SIGINT (re-raised after its child ends) whatever we do: exit 130 and
    `make: *** [run] Interrupt` after a clean stop. In a group of our own that the terminal puts
    in front, Ctrl-C reaches only us; we stop everything, exit 0, and make exits with us. A small
    relay stays in make's group for the signals sent to the whole job; Ctrl-Z is ignored meanwhile
    (it would stop us and not make). The terminal goes back to the group it came from on the way
    out. Nothing changes without a terminal, in the background, when our output goes to a pipe (a
    pager in make's job needs the terminal), or when a shell already gave us our own group.
    """
    try:
        terminal = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:  # no controlling terminal (a PaaS, a test, a pipe)
        yield
        return
    try:
        before = os.tcgetpgrp(terminal)
        if before != os.getpgrp() or os.getpgrp() == os.getpid() or not (os.isatty(1) and os.isatty(2)):
            yield
            return
        relay = subprocess.Popen([sys.executable, "-c", _RELAY, str(os.getpid())], stdin=subprocess.DEVNULL)
        # A handler, not SIG_IGN: exec resets a handler, so the processes we start can still be stopped.
        suspend = signal.signal(signal.SIGTSTP, lambda signum, frame: None)
        try:
            with suppress(OSError):  # not allowed (a session leader): stay in make's group, as before
                os.setpgid(0, 0)
                if not _hand_terminal_to(terminal, os.getpgrp()):
                    os.setpgid(0, before)  # the terminal would not take us
            yield
        finally:
            if os.getpgrp() != before:
                _hand_terminal_to(terminal, before)
            signal.signal(signal.SIGTSTP, suspend)
            relay.terminate()
            relay.wait(timeout=5)
    finally:
        os.close(terminal)


def _hand_terminal_to(terminal: int, group: int) -> bool:
    """Make `group` the terminal's foreground; False if it cannot be (the group is gone: make was killed).
    tcsetpgrp from a group that is not in front stops the caller with SIGTTOU unless that is ignored."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(terminal, group)
        return True
    except OSError:
        return False
    finally:
        signal.signal(signal.SIGTTOU, previous)


def _stop_on_hangup(signum: int, frame: object) -> None:
    """A closed terminal (SIGHUP) stops everything as SIGTERM does: honcho handles only INT and TERM."""
    _stop_without_output()


def _stop_without_output() -> None:
    """Stop everything as SIGTERM does; what would still be printed goes nowhere, since writing to a
    hung-up terminal or a closed pipe fails."""
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.close(quiet)
    os.kill(os.getpid(), signal.SIGTERM)


def _stop_what_is_left(manager: Any) -> None:
    """After honcho's loop ended, normally (nothing is left) or by an error: SIGTERM what still runs and
    SIGKILL what has not stopped within honcho's 5 s. Else it would outlive us, and multiprocessing
    would wait for it at our exit, forever."""
    from honcho.manager import KILL_WAIT

    runners = [p["process"] for p in manager._processes.values() if "process" in p]
    for force in (False, True):
        if not any(runner.is_alive() for runner in runners):
            return
        if force:
            manager.kill()
        else:
            manager._terminating = False  # again: the loop may have raised before it sent its SIGTERMs
            manager.terminate()
        deadline = time.monotonic() + KILL_WAIT
        for runner in runners:  # a runner ends when its process does
            runner.join(timeout=max(0.0, deadline - time.monotonic()))


def start_banner(settings: Settings) -> list[str]:
    """What a person needs before the processes' own lines scroll by: where to sign in, which X this
    is, and how to reach the command line (`make run` does not put it on the PATH)."""
    tweetbot = Path(sys.executable).with_name("tweetbot")
    shown = os.path.relpath(tweetbot) if tweetbot.is_relative_to(Path.cwd()) else str(tweetbot)
    x = (f"the local sandbox on http://127.0.0.1:{settings.sandbox_port} (set X_CLIENT_ID and X_CLIENT_SECRET "
         f"in .env for the real X)" if settings.sandbox else "the real X (the client in X_CLIENT_ID)")
    return [f"tweetbot: open {settings.public_url} and sign in with the ADMIN_PASSWORD in .env",
            f"tweetbot: X is {x}",
            f"tweetbot: the command line: {shown} --help (or `source {Path(shown).parent}/activate`, "
            f"then tweetbot --help)",
            "tweetbot: Ctrl-C stops everything"]


def run_all(settings: Settings) -> int:
    """Run every process of `process_table` under honcho until one stops or a signal comes.

    A port that is taken stops it before anything starts, with one line per port naming the
    variable that moves it (exit 2). SIGINT (Ctrl-C) or SIGTERM stops every process; when each
    stopped cleanly (0, or by the signal honcho passed on) the exit code is 0. Otherwise it is
    the code of the process that stopped first.
    """
    taken = taken_ports(settings)
    if taken:
        print("\n".join(taken), file=sys.stderr, flush=True)
        return 2
    print("\n".join(start_banner(settings)), flush=True)
    manager = _manager()
    for name, command in process_table(settings).items():
        # exec: the program itself gets honcho's signal, not a shell that would die of it (rc=-15).
        manager.add_process(name, f"exec {command}", env=dict(os.environ))
    signal.signal(signal.SIGHUP, _stop_on_hangup)
    with keystrokes_to_us():
        try:
            manager.loop()
        finally:
            _stop_what_is_left(manager)
    signalled = manager.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM)
    stopped = [p.get("returncode") for p in manager._processes.values()]
    if signalled and all(rc in (0, -signal.SIGINT, -signal.SIGTERM) for rc in stopped):
        return 0
    return int(manager.returncode or 0)
