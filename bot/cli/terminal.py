"""`tweetbot run` in front of its terminal: under `make run` it takes the terminal's foreground, as a
shell does for each job, so Ctrl-C reaches it alone and make exits as it does."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

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
