"""`tweetbot run`: every process of `process_table` run together under honcho until one stops or a
signal comes, and everything stopped on the way out.

Only honcho's public API is used: `Manager` (`add_process`, `loop`, `returncode`, and `terminate`,
which `Supervisor` extends), a `Printer` (honcho's place for everything it prints, handed
`Message`s), and the constants `KILL_WAIT` and `SYSTEM_PRINTER_NAME`. What honcho keeps to itself,
each process's pid and return code, `NotingPrinter` reads from honcho's own lines ("web started
(pid=…)", "web stopped (rc=…)"); sending a signal again once honcho's `terminate()` has acted is
ours (`Supervisor.signal_running`).
"""
from __future__ import annotations

import errno
import multiprocessing
import os
import re
import signal
import sys
import time
from contextlib import suppress
from datetime import datetime

from honcho.manager import KILL_WAIT, SYSTEM_PRINTER_NAME, Manager
from honcho.printer import Message, Printer

from bot.cli.processes import process_table, start_banner, taken_ports
from bot.cli.terminal import keystrokes_to_us
from bot.settings import Settings

_STOPPED_BY_US = re.compile(r" stopped \(rc=-(?:2|15)\)")
_STARTED_OR_STOPPED = re.compile(r"(?P<name>\S+) (?:started \(pid=(?P<pid>\d+)\)|stopped \(rc=(?P<rc>-?\d+)\))")


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


class NotingPrinter(Printer):
    """honcho's printer on `_Output`. From honcho's own lines it keeps each process's pid (when it
    started) and return code (when it stopped); once we are `stopping` them, a stop by our signal
    reads "web stopped", not "web stopped (rc=-15)"."""

    def __init__(self) -> None:
        super().__init__(_Output())
        self.stopping = False
        self.pids: dict[str, int] = {}
        self.returncodes: dict[str, int] = {}

    def write(self, message: Message) -> None:
        if message.name == SYSTEM_PRINTER_NAME:
            message = Message(type=message.type, data=self.noted(message.data), time=message.time,
                              name=message.name, colour=message.colour)
        super().write(message)

    def say(self, text: str) -> None:
        """A line of our own among honcho's ("system")."""
        self.write(Message(type="line", data=f"{text}\n", time=datetime.now(), name=SYSTEM_PRINTER_NAME,
                           colour=None))

    def noted(self, text: str) -> str:
        """`text`, a line of honcho's, noted (before it is printed: printing may stop everything)."""
        said = _STARTED_OR_STOPPED.fullmatch(text.strip())
        if said and said["pid"]:
            self.pids[said["name"]] = int(said["pid"])
        elif said:
            self.returncodes[said["name"]] = int(said["rc"])
        return _STOPPED_BY_US.sub(" stopped", text) if self.stopping else text


class Supervisor(Manager):
    """honcho's Manager printing through `NotingPrinter`, which it tells when the stopping begins."""

    def __init__(self) -> None:
        self.printer = NotingPrinter()
        super().__init__(self.printer)

    def terminate(self) -> None:
        self.printer.stopping = True
        super().terminate()

    def signal_running(self, signum: signal.Signals) -> None:
        """`signum` to each process that started and has not stopped; honcho's `terminate()` acts once,
        and this may follow a loop that raised before (or while) it sent its SIGTERMs."""
        self.printer.stopping = True
        for name, pid in list(self.printer.pids.items()):
            if name not in self.printer.returncodes:
                self.printer.say(f"sending {signum.name} to {name} (pid {pid})")
                # Its group, as honcho signals it: honcho starts each process in a session of its own.
                with suppress(ProcessLookupError, PermissionError):  # gone meanwhile
                    os.killpg(pid, signum)


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


def _stop_what_is_left(supervisor: Supervisor) -> None:
    """After honcho's loop ended, normally (nothing is left) or by an error: SIGTERM what still runs and
    SIGKILL what has not stopped within honcho's 5 s. Else it would outlive us, and multiprocessing
    would wait for it at our exit, forever."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        # honcho's runners, one for each process and ending when it does, are our only multiprocessing children.
        runners = multiprocessing.active_children()
        if not runners:
            return
        supervisor.signal_running(signum)
        deadline = time.monotonic() + KILL_WAIT
        for runner in runners:
            runner.join(timeout=max(0.0, deadline - time.monotonic()))


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
    supervisor = Supervisor()
    names = process_table(settings)
    for name, command in names.items():
        # exec: the program itself gets honcho's signal, not a shell that would die of it (rc=-15).
        supervisor.add_process(name, f"exec {command}", env=dict(os.environ))
    signal.signal(signal.SIGHUP, _stop_on_hangup)
    with keystrokes_to_us():
        try:
            supervisor.loop()
        finally:
            _stop_what_is_left(supervisor)
    return _exit_code(supervisor, list(names))


def _exit_code(supervisor: Supervisor, names: list[str]) -> int:
    """0 when a signal stopped us and every process stopped cleanly; else the first stopped one's code."""
    signalled = supervisor.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM)
    stopped = [supervisor.printer.returncodes.get(name) for name in names]
    if signalled and all(rc in (0, -signal.SIGINT, -signal.SIGTERM) for rc in stopped):
        return 0
    return int(supervisor.returncode or 0)
