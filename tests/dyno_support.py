"""The Procfile's lines as a platform runs them: each process type in an empty working directory of
its own, through a shell (for `$PORT`), in a process group of its own; and `/healthz` read from outside."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from conftest import ROOT

BIN = str(Path(sys.executable).parent)  # where the slug's `gunicorn` and `tweetbot` are on PATH


def procfile() -> dict[str, str]:
    """The Procfile's process types: name → command line."""
    lines = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            lines[name.strip()] = command.strip()
    return lines


def shell(command: str) -> list[str]:
    """The command as the platform runs it: through a shell (for `$PORT`), the process becoming the command."""
    return ["/bin/sh", "-c", f"exec {command}"]


class Dyno:
    """One process type running in its own empty working directory; its output in a log outside it."""

    def __init__(self, name: str, command: str, env: dict[str, str], workdir: Path, logs: Path) -> None:
        self.name = name
        workdir.mkdir()
        self.log_path = logs / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(shell(command), cwd=workdir, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        """True while it runs; a process that exited fails the test with its log."""
        assert self.process.poll() is None, f"{self.name} exited with {self.process.returncode}:\n{self.log()}"
        return True

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, as the platform stops a dyno; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill_quietly(self) -> None:
        """Whatever is left of the process group this dyno started (gunicorn's workers too)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextmanager
def dyno(name: str, command: str, env: dict[str, str], workdir: Path, logs: Path) -> Iterator[Dyno]:
    started = Dyno(name, command, env, workdir, logs)
    try:
        yield started
    finally:
        started.kill_quietly()


def health(url: str) -> tuple[int, dict[str, object]] | None:
    """`/healthz`'s status and body, or None while nothing answers."""
    try:
        answer = requests.get(url + "/healthz", timeout=5)
    except requests.RequestException:
        return None
    return answer.status_code, answer.json()


