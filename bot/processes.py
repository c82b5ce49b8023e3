"""Starting tweetbot's long-running processes (what `make run` and the Procfile do)."""
from __future__ import annotations

import os
import shlex
import sys

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
    """gunicorn serving `web:create_app()`; the Procfile's web line says the same."""
    return [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "gthread",
            "--threads", str(THREADS), "--timeout", str(TIMEOUT), "--keep-alive", str(KEEPALIVE),
            "--bind", f"{host}:{port}",
            "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT, "web:create_app()"]


def exec_gunicorn(host: str, port: int) -> None:
    """Replace this process with gunicorn."""
    command = gunicorn_command(host, port)
    os.execv(command[0], command)


def sandbox_command(settings: Settings, host: str, port: int, token_lifetime: int | None = None,
                    media_processing_seconds: float = 0.0) -> tuple[list[str], dict[str, str]]:
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
    env = dict(os.environ)
    if settings.x_client_secret:
        env["SANDBOX_CLIENT_SECRET"] = settings.x_client_secret
    else:
        command.append("--client-secret=")  # a public client
    return command, env


def exec_sandbox(settings: Settings, host: str, port: int, token_lifetime: int | None = None,
                 media_processing_seconds: float = 0.0) -> None:
    """Replace this process with the sandbox (`tweetbot sandbox`)."""
    command, env = sandbox_command(settings, host, port, token_lifetime, media_processing_seconds)
    os.execve(command[0], command, env)


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
