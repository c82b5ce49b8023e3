"""Starting tweetbot's long-running processes (what `make run` and the Procfile do)."""
from __future__ import annotations

import os
import shlex
import sys

from bot.settings import Settings

DEMO_TOKEN_HEADROOM = 60  # seconds

# The path without the query string: the OAuth callback's query holds the one-time code.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


def gunicorn_command(host: str, port: int, workers: int = 2) -> list[str]:
    """gunicorn serving `web:create_app()`; the Procfile's web line says the same."""
    return [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"{host}:{port}",
            "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT, "web:create_app()"]


def exec_gunicorn(host: str, port: int) -> None:
    """Replace this process with gunicorn."""
    command = gunicorn_command(host, port)
    os.execv(command[0], command)


def process_table(settings: Settings) -> dict[str, str]:
    """The processes `tweetbot run` starts (the sandbox only without X credentials): name → command."""
    tweetbot = shlex.quote(os.path.join(os.path.dirname(sys.executable), "tweetbot"))
    table = {"web": shlex.join(gunicorn_command("127.0.0.1", settings.port)), "worker": f"{tweetbot} worker"}
    if settings.sandbox:
        # Tokens that expire a minute past the refresh margin: the log shows a refresh
        # about a minute after Connect, not two hours later.
        lifetime = settings.refresh_margin + DEMO_TOKEN_HEADROOM
        table["sandbox"] = f"{tweetbot} sandbox --port {settings.sandbox_port} --token-lifetime {lifetime}"
    return table


def run_all(settings: Settings) -> int:
    """Run every process of `process_table` under honcho until one stops; its exit code."""
    from honcho.manager import Manager

    manager = Manager()
    for name, command in process_table(settings).items():
        manager.add_process(name, command, env=dict(os.environ))
    manager.loop()
    return manager.returncode or 0
