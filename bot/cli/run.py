"""Starting tweetbot's long-running processes: `tweetbot run` (all of them together, what `make run`
starts), and each alone as the Procfile and `tweetbot run` start it: `web`, `worker`, `sandbox`."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from bot.cli.common import settings_or_exit, stop_unusable
from bot.logs import configure_logging
from bot.store import BROKEN, StoreError, open_store
from bot.xclient import XClient


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: SANDBOX_PORT (8100).")
@click.option("--token-lifetime", type=click.IntRange(1, 7200), default=None,
              help="Access-token lifetime in seconds (default: X's 7200).")
@click.option("--media-processing-seconds", type=click.FloatRange(0, 86400), default=0.0, show_default=True,
              help="How long a GIF or video takes to process (0: one step per STATUS poll).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A file that keeps the sandbox's world across restarts (tweetbot run: data/sandbox.state). "
                   "Default: memory only.")
def sandbox_command(host: str, port: int | None, token_lifetime: int | None, media_processing_seconds: float,
                    state_path: Path | None) -> None:
    """Run the local stand-in for X (consent page, tokens, posts, timelines, media)."""
    from bot.cli.processes import exec_sandbox

    settings = settings_or_exit()
    exec_sandbox(settings, host=host, port=port or settings.sandbox_port, token_lifetime=token_lifetime,
                 media_processing_seconds=media_processing_seconds, state_path=state_path)


@click.command("web")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: PORT (5000).")
def web_command(host: str, port: int | None) -> None:
    """Run the web app with gunicorn (as the Procfile's web line does)."""
    settings = settings_or_exit()
    from bot.cli.processes import exec_gunicorn

    exec_gunicorn(host, port or settings.port)


@click.command("worker")
def worker_command() -> None:
    """Run the worker: keep tokens fresh, post what is due (Procfile: worker)."""
    from bot.worker import Worker

    configure_logging(sys.stdout)
    settings = settings_or_exit()
    store = open_store(settings)
    try:
        store.verify()
    except BROKEN as exc:  # damaged, a wrong TOKEN_KEY, a schema behind: one line, exit 2
        stop_unusable(exc)
    except StoreError:
        pass  # a database it cannot reach yet: the worker waits for it
    sys.exit(Worker(settings, store, XClient(settings)).run())


@click.command("run")
def run_command() -> None:
    """Start everything: web app and worker, and the sandbox when no X credentials are set."""
    settings = settings_or_exit()
    from bot.cli.processes import sandbox_state_path
    from bot.cli.supervisor import run_all

    # The sandbox writes its state file into the store's folder at start, and the store makes that folder
    # only when web or worker first opens it: made here, the three start in any order.
    sandbox_state_path(settings).parent.mkdir(parents=True, exist_ok=True)
    sys.exit(run_all(settings))


COMMANDS: tuple[click.Command, ...] = (run_command, web_command, worker_command, sandbox_command)
