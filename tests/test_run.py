"""`tweetbot run` (what `make run` starts): web app, worker and sandbox, and /healthz says so."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import termios
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ports import free_port

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out

TWEETBOT = str(Path(sys.executable).with_name("tweetbot"))


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as answer:
        return answer.code, json.load(answer)


def wait_for(url: str, process: subprocess.Popen, until, seconds: float = 60,
             terminal: int | None = None) -> tuple[int, dict]:
    """GET `url` until `until(status, body)` holds; fails if the process dies (showing the end of what it
    printed, to its pipe or to `terminal`, a pty's controller) or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            printed = read_terminal(terminal, process, 5) if terminal is not None else process.communicate()[0]
            raise AssertionError(f"exited {process.returncode}:\n{(printed or '')[-4000:]}")
        try:
            status, body = get(url)
            if until(status, body):
                return status, body
        except OSError:  # not listening yet, or busy booting (URLError, a refused connection, a timeout)
            pass
        assert time.monotonic() < deadline, f"{url} did not answer as expected within {seconds} s"
        time.sleep(0.2)


def run_env(tmp_path: Path, port: int, sandbox_port: int) -> dict[str, str]:
    """`tweetbot init` in `tmp_path` (as `make run` does once) and the environment `tweetbot run` gets."""
    subprocess.run([TWEETBOT, "init"], cwd=tmp_path, check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items()
           if k not in {"X_CLIENT_ID", "SECRET_KEY", "TOKEN_KEY", "ADMIN_PASSWORD", "DYNO", "TRUSTED_PROXIES"}}
    env.update(PORT=str(port), SANDBOX_PORT=str(sandbox_port))
    return env


def start_run(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([TWEETBOT, "run"], cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def assert_stopped_cleanly(process: subprocess.Popen, output: str, returncode: int = 0) -> None:
    """Exit 0 (or `returncode`), every process's stop said plainly: no `rc=-15` (a shell killed under it),
    no error line."""
    assert process.returncode == returncode, output[-3000:]
    assert "rc=-15" not in output and "rc=-2" not in output, output[-3000:]
    assert not re.search(r"(?im)^.*\b(error|traceback)\b", output), output[-3000:]
    for name in ("web", "worker", "sandbox"):
        assert re.search(rf"\| {name} stopped( \(rc=0\))?$", output, re.M), (name, output[-3000:])


def test_run_starts_web_worker_and_sandbox_and_healthz_answers(tmp_path: Path) -> None:
    port, sandbox_port = free_port(), free_port()
    process = start_run(tmp_path, run_env(tmp_path, port, sandbox_port))
    try:
        status, body = wait_for(f"http://127.0.0.1:{port}/healthz", process,
                                until=lambda status, body: status == 200)
        assert body["store"] == "ok" and body["status"] == "ok"
        assert 0 <= body["worker_heartbeat_age_seconds"] < 120
        sandbox_status, users = get(f"http://127.0.0.1:{sandbox_port}/_sandbox/users")
        assert sandbox_status == 200 and users["users"]
        # The demo sandbox's tokens expire a minute past the refresh margin: a refresh shows up soon.
        assert get(f"http://127.0.0.1:{sandbox_port}/_sandbox/config")[1]["access_token_lifetime"] == 600 + 60
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # as the platform, or `kill` on make run's group
        output, _ = process.communicate(timeout=30)
    assert "Booting worker" in output  # gunicorn
    assert "tweetbot.worker: started" in output
    assert_stopped_cleanly(process, output)


def test_ctrl_c_on_run_ends_with_exit_0_and_no_error_lines(tmp_path: Path) -> None:
    port, sandbox_port = free_port(), free_port()
    process = start_run(tmp_path, run_env(tmp_path, port, sandbox_port))
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", process, until=lambda status, body: status == 200)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends the foreground group
        output, _ = process.communicate(timeout=30)
    assert "SIGINT received" in output
    assert_stopped_cleanly(process, output)


def test_a_taken_port_is_named_with_the_variable_that_moves_it(tmp_path: Path) -> None:
    for variable in ("PORT", "SANDBOX_PORT"):
        folder = tmp_path / variable
        folder.mkdir()
        port, sandbox_port = free_port(), free_port()
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", port if variable == "PORT" else sandbox_port))
            squatter.listen()
            run = subprocess.run([TWEETBOT, "run"], cwd=folder, env=run_env(folder, port, sandbox_port),
                                 capture_output=True, text=True, timeout=60)
        taken = port if variable == "PORT" else sandbox_port
        assert run.returncode == 2, run.stdout + run.stderr
        assert run.stdout == ""  # nothing was started
        assert run.stderr == (f"tweetbot: port {taken} (the {'web app' if variable == 'PORT' else 'sandbox'}) "
                              f"is taken on 127.0.0.1: set {variable} in .env to another port\n")


def start_make_run_in_a_terminal(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """`make run` (the README's command) in `tmp_path` with a pseudo-terminal as its controlling terminal,
    as a person's shell starts it: make leads the terminal's foreground group. Returns make and the pty."""
    root = Path(__file__).resolve().parents[1]
    controller, terminal = os.openpty()

    def own_the_terminal() -> None:  # a new session, this pty its controlling terminal, make its foreground
        os.setsid()
        fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)

    venv = Path(sys.executable).parent.parent
    # -o: the install stamp counts as done; make must never install into this venv from `tmp_path`.
    make = subprocess.Popen(["make", "--no-print-directory", "-f", str(root / "Makefile"), f"VENV={venv}",
                             "-o", str(venv / ".installed"), "run"],
                            cwd=tmp_path, env=env, stdin=terminal, stdout=terminal, stderr=terminal,
                            preexec_fn=own_the_terminal)
    os.close(terminal)
    return make, controller


def read_terminal(controller: int, process: subprocess.Popen, seconds: float = 60) -> str:
    """Everything the terminal shows until `process` ends (and the terminal is left to nobody)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every process holding the terminal is gone
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    return seen.decode(errors="replace").replace("\r\n", "\n")


def children_of(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def child_of(process: subprocess.Popen) -> int:
    """The pid of `process`'s one child (make's: `tweetbot run`)."""
    [child] = children_of(process.pid)
    return child


def descendants(pid: int) -> list[int]:
    """Every process under `pid`: honcho's runners and, in sessions of their own, what they run."""
    found = children_of(pid)
    for child in list(found):
        found += descendants(child)
    return found


def kill_all(pids: list[int]) -> None:
    """SIGKILL each process, what runs under it now, and their groups (after a failed test: nothing is
    left running). `pids` also names what was seen under them earlier, in case their parents are gone."""
    for pid in [*pids, *(found for seen in pids for found in descendants(seen))]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm", "sigint to the job"])
def test_make_run_in_a_terminal_stops_cleanly_and_ctrl_c_ends_it_with_exit_0(tmp_path: Path, stop: str) -> None:
    """The real keystroke: ^C typed into `make run`'s terminal, or SIGTERM to `tweetbot run` (as `kill`
    would): make, which would die of SIGINT itself and print `make: *** [Makefile:…: run] Interrupt`,
    sees `tweetbot run` stop everything and exit 0, and exits 0 too. SIGINT sent to make's whole job
    (`kill -INT %1`) reaches make, which always dies of it, and `tweetbot run`, which stops as cleanly."""
    port, sandbox_port = free_port(), free_port()
    env = run_env(tmp_path, port, sandbox_port)
    (tmp_path / ".env").unlink()  # make run writes it, as on a fresh clone
    make, controller = start_make_run_in_a_terminal(tmp_path, env)
    started: list[int] = []
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", make, until=lambda status, body: status == 200,
                 terminal=controller)
        run = child_of(make)
        started = [run, *descendants(run)]
        if stop == "ctrl-c":
            os.write(controller, b"\x03")  # the terminal signals its foreground process group
        elif stop == "sigterm":
            os.kill(run, signal.SIGTERM)
        else:
            os.killpg(make.pid, signal.SIGINT)  # make's group, which `tweetbot run` has left
        output = read_terminal(controller, make)
    finally:
        if make.poll() is None:  # it did not stop: leave nothing running
            kill_all([make.pid, *started])
        os.close(controller)
    assert (tmp_path / ".env").exists()
    assert ("SIGTERM received" if stop == "sigterm" else "SIGINT received") in output, output[-3000:]
    if stop != "sigint to the job":
        assert "make: ***" not in output and "Interrupt" not in output, output[-3000:]
    # make dies of a SIGINT sent to it (after the clean stop); else it ends as tweetbot run did: 0.
    assert_stopped_cleanly(make, output, -signal.SIGINT if stop == "sigint to the job" else 0)


def test_closing_make_runs_terminal_stops_every_process(tmp_path: Path) -> None:
    """A closed terminal window: the terminal hangs up and the shell sends SIGHUP to its jobs (make's
    group). `tweetbot run` stops everything it started, as for SIGTERM, instead of dying of it and
    leaving the web app, the worker and the sandbox running."""
    port, sandbox_port = free_port(), free_port()
    make, controller = start_make_run_in_a_terminal(tmp_path, run_env(tmp_path, port, sandbox_port))
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", make, until=lambda status, body: status == 200,
                 terminal=controller)
        run = child_of(make)
        started = [run, *descendants(run)]
    finally:
        os.close(controller)  # the terminal hangs up
    try:
        os.killpg(make.pid, signal.SIGHUP)  # as the shell does to its jobs when its terminal is gone
        make.wait(timeout=30)
        assert make.returncode == -signal.SIGHUP  # make's own death, once tweetbot run has stopped
        assert_all_gone(started, port)
    finally:  # what did not stop (the test failed) is not left running
        kill_all([make.pid, *started])


def test_a_closed_output_pipe_stops_every_process(tmp_path: Path) -> None:
    """`tweetbot run | less`, and the pager is quit: the next line printed fails (EPIPE), and instead of
    raising out of honcho's loop, leaving the web app, the worker and the sandbox running and itself
    waiting for them forever, `tweetbot run` stops each of them and exits 0, as for SIGTERM."""
    port, sandbox_port = free_port(), free_port()
    process = start_run(tmp_path, run_env(tmp_path, port, sandbox_port))
    started = [process.pid]
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", process, until=lambda status, body: status == 200)
        started += descendants(process.pid)
        assert len(started) >= 1 + 2 * 3  # honcho's runner and its process, for each of three
        process.stdout.close()  # the reader is gone
        with contextlib.suppress(OSError):  # not its answer: gunicorn's access log line, printed next
            get(f"http://127.0.0.1:{port}/healthz")
        assert process.wait(timeout=30) == 0
        assert_all_gone(started, port)
    finally:
        kill_all(started)


def test_a_process_that_dies_stops_the_others_and_run_exits_with_its_code(tmp_path: Path) -> None:
    """The worker killed from outside (SIGKILL, as the kernel's OOM killer does): `tweetbot run` says so
    with its code, stops the web app and the sandbox (their stop by our SIGTERM said plainly, no
    `rc=-15`) and exits with the worker's code, not 0."""
    port, sandbox_port = free_port(), free_port()
    process = start_run(tmp_path, run_env(tmp_path, port, sandbox_port))
    started = [process.pid]
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", process, until=lambda status, body: status == 200)
        started += descendants(process.pid)
        [worker] = [pid for pid in started if command_line(pid)[-2:] == [TWEETBOT, "worker"]]
        os.kill(worker, signal.SIGKILL)
        output, _ = process.communicate(timeout=30)
    finally:
        kill_all(started)
    assert process.returncode == 256 - signal.SIGKILL, output[-3000:]  # sys.exit(-9), as the worker's rc
    assert re.search(r"\| worker stopped \(rc=-9\)$", output, re.M), output[-3000:]
    assert "rc=-15" not in output, output[-3000:]
    for name in ("web", "sandbox"):
        assert re.search(rf"\| {name} stopped( \(rc=0\))?$", output, re.M), (name, output[-3000:])
    assert_all_gone(started, port)


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
    except FileNotFoundError:
        return []


def assert_all_gone(pids: list[int], port: int) -> None:
    for pid in pids:
        wait_until_gone(pid)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def wait_until_gone(pid: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":  # exited, not yet reaped by its (gone) parent's successor
            return
        time.sleep(0.2)
    raise AssertionError(f"process {pid} still runs {seconds} s after the hangup")
