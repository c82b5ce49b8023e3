"""tweetbot's long-running processes, as `make run` and the Procfile start them: the command lines
of gunicorn and the sandbox (`tweetbot web` and `sandbox` exec them), `tweetbot run`'s table of
what it starts, the ports that must be free and the banner it prints first. Running them
together is `bot.cli.supervisor`'s."""
from __future__ import annotations

import errno
import os
import shlex
import socket
import sys
from pathlib import Path

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
