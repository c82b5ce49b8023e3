"""The `tweetbot` command line.

Each command loads the settings itself (never at import time), so `init` and
`count` work before there is any `.env`, and a bad variable ends the command
with one line naming it instead of a traceback. So does a store that cannot be
used (damaged files, a TOKEN_KEY that does not open it): every command that
opens the store verifies it first, and the group turns the same errors raised
later into that one line, exit 2.
"""
from __future__ import annotations

import os
import secrets
import sys
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from cryptography.fernet import Fernet

from bot.cli.common import settings_or_exit, stop_unusable, store_or_exit
from bot.cli.queue import register as register_queue
from bot.cli.store import register as register_store
from bot.logs import configure_logging
from bot.models import NEEDS_RECONNECT, Account
from bot.settings import PLATFORMS, Settings
from bot.store import BROKEN, UNUSABLE, BackupError, Repository, StoreError, heartbeats, open_store, restore_store
from bot.store.files import PRIVATE, atomic_write
from bot.when import relative
from bot.xclient import XClient


class TweetbotGroup(click.Group):
    """The command group; a store found unusable in the middle of any command ends it with one line, exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UNUSABLE as exc:
            stop_unusable(exc)


@click.group(cls=TweetbotGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """tweetbot: posts to X on your behalf, on a schedule."""


def open_everything() -> tuple[Settings, Repository, XClient]:
    """Settings, verified store and X client for a command that works on accounts."""
    settings = settings_or_exit()
    return settings, store_or_exit(settings), XClient(settings)


@main.command()
@click.option("--force", is_flag=True, help="Overwrite an existing .env.")
@click.option("--path", "env_path", default=".env", show_default=True, type=click.Path(dir_okay=False))
def init(force: bool, env_path: str) -> None:
    """Write a .env with fresh SECRET_KEY, TOKEN_KEY and ADMIN_PASSWORD."""
    path = Path(env_path)
    password = secrets.token_urlsafe(12)
    zone = machine_zone()
    try:
        write_private(path, env_file_text(password, zone), replace=force)
    except FileExistsError:
        click.secho(f"tweetbot: {path} exists; not overwriting it (use --force)", fg="red", err=True)
        sys.exit(1)
    click.echo(f"Wrote {path} with fresh secrets; times are shown in {zone} (TIMEZONE, this machine's zone).")
    click.echo(f"Admin password (shown once): {password}")
    click.echo("Without X_CLIENT_ID the bot uses the local sandbox; set X_CLIENT_ID and X_CLIENT_SECRET to talk to X.")


def write_private(path: Path, text: str, replace: bool) -> None:
    """Write a file that holds secrets, 0600 from its first byte (created with the mode, never chmod-ed).

    New: `O_CREAT | O_EXCL` (`FileExistsError` if it exists). Replacing: a private
    temp file renamed over it, so the old file stands until the new one is whole.
    """
    if replace:
        atomic_write(path, text.encode("utf-8"))
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def env_file_text(admin_password: str, zone: str = "UTC") -> str:
    """A new `.env`: fresh secrets and the machine's time zone, everything else left to `.env.example`'s defaults."""
    return (
        "# Written by `tweetbot init`. Every variable is described in .env.example.\n"
        f"SECRET_KEY={secrets.token_urlsafe(32)}\n"
        f"TOKEN_KEY={Fernet.generate_key().decode()}\n"
        f"ADMIN_PASSWORD={admin_password}\n"
        f"TIMEZONE={zone}\n"
        "# X_CLIENT_ID=\n"
        "# X_CLIENT_SECRET=\n"
    )


UTC_ALIASES = {"Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"}  # shown as "UTC"


def machine_zone(localtime: Path = Path("/etc/localtime"), timezone_file: Path = Path("/etc/timezone")) -> str:
    """This machine's IANA time zone: `TZ` when it names one, else what /etc/localtime links to (or
    Debian's /etc/timezone says); UTC only when none of them tells."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    with suppress(OSError):
        target = str(localtime.resolve())
        candidates.append(target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else "")
    with suppress(OSError):
        candidates.append(timezone_file.read_text().strip())
    zone = next((name for name in candidates if _zone_name(name)), "UTC")
    return "UTC" if zone in UTC_ALIASES else zone


def _zone_name(name: str) -> bool:
    """Whether `name` is a zone Python's zoneinfo knows ("Europe/Berlin"; not "", a path or "CET-1")."""
    if not name or name.startswith("/"):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@main.command()
@click.argument("text")
def count(text: str) -> None:
    """Print TEXT's weighted length, the limit and whether it can be posted (exit 1 if not)."""
    from bot.queue import control_problem
    from xtext import MAX_WEIGHTED_LENGTH, length_error, parse_post

    parsed = parse_post(text)
    stripped = text.replace("\r\n", "\n").strip()  # what the queue would keep
    control, reason = control_problem(stripped), length_error(stripped)
    over = parsed.weighted_length - MAX_WEIGHTED_LENGTH
    if not stripped:
        verdict = "cannot be posted: it is empty"
    elif control:
        verdict = f"cannot be posted: it {control}"
    elif reason and over > 0:
        verdict = f"does not fit ({over} too many)"
    elif reason:
        verdict = f"cannot be posted: {'it ' if reason.startswith('contains') else ''}{reason}"
    else:
        verdict = "fits"
    click.echo(f"{parsed.weighted_length}/{MAX_WEIGHTED_LENGTH} weighted characters: {verdict}")
    sys.exit(0 if verdict == "fits" else 1)


@main.command()
def check() -> None:
    """Print the effective settings (secrets masked) and where things live."""
    settings = settings_or_exit()
    shown = settings.masked()
    for name, value in shown.items():
        click.echo(f"{name:20} {value}")
    target = "the local sandbox" if settings.sandbox else "X"
    click.echo(f"Talks to {target} at {settings.api_base} (authorize: {settings.authorize_url})")
    store = f"PostgreSQL at {shown['database_url']}" if settings.database_url else settings.store_path.resolve()
    click.echo(f"Store: {store}")
    if settings.database_url:
        from bot.store.budget import describe_database

        for line in describe_database(settings):
            click.echo(line)
    for warning in [*platform_warnings(settings), *store_warnings(settings)]:
        click.secho(f"warning: {warning}", fg="yellow")


def store_warnings(settings: Settings) -> list[str]:
    """What the store says a person must know before starting a worker (a restored copy); nothing when
    there is no store yet or it cannot be read (the commands that need it say why)."""
    if not settings.database_url and not settings.store_path.exists():
        return []
    try:
        store = open_store(settings)
        try:
            warning = heartbeats.restored_copy_warning(store)
        finally:
            store.close()
    except StoreError:
        return []
    return [warning] if warning else []


def platform_warnings(settings: Settings) -> list[str]:
    """What cannot work on the PaaS these settings run on (nothing off one)."""
    if settings.platform is None:
        return []
    variable = next(name for name, platform in PLATFORMS.items() if platform == settings.platform)
    warnings = []
    if not settings.database_url:
        wiped = ", and wipes each one's disk on every restart" if settings.platform == "Heroku" else ""
        warnings.append(
            f"{variable} is set: {settings.platform} runs web and worker with no disk in common{wiped}, "
            f"so the store file {settings.store_path} loses every token; "
            "set DATABASE_URL to a PostgreSQL database (README: Deploying)"
        )
    if settings.sandbox:
        warnings.append(
            f"X_CLIENT_ID is not set: the bot talks to the sandbox at {settings.api_base}, which does not run "
            f"on {settings.platform}; set X_CLIENT_ID and X_CLIENT_SECRET from your X app"
        )
    return warnings


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: SANDBOX_PORT (8100).")
@click.option("--token-lifetime", type=click.IntRange(1, 7200), default=None,
              help="Access-token lifetime in seconds (default: X's 7200).")
@click.option("--media-processing-seconds", type=click.FloatRange(0, 86400), default=0.0, show_default=True,
              help="How long a GIF or video takes to process (0: one step per STATUS poll).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A file that keeps the sandbox's world across restarts (tweetbot run: data/sandbox.state). "
                   "Default: memory only.")
def sandbox(host: str, port: int | None, token_lifetime: int | None, media_processing_seconds: float,
            state_path: Path | None) -> None:
    """Run the local stand-in for X (consent page, tokens, posts, timelines, media)."""
    from bot.cli.processes import exec_sandbox

    settings = settings_or_exit()
    exec_sandbox(settings, host=host, port=port or settings.sandbox_port, token_lifetime=token_lifetime,
                 media_processing_seconds=media_processing_seconds, state_path=state_path)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: PORT (5000).")
def web(host: str, port: int | None) -> None:
    """Run the web app with gunicorn (as the Procfile's web line does)."""
    settings = settings_or_exit()
    from bot.cli.processes import exec_gunicorn

    exec_gunicorn(host, port or settings.port)


@main.command()
def worker() -> None:
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


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Write the whole store as of now to the archive FILE (tar.gz, 0600); safe while the worker runs."""
    settings = settings_or_exit()
    summary = store_or_exit(settings).backup(file)
    click.echo(f"Backed up {summary.describe()} to {file} ({summary.size:,} bytes).")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a store that holds anything (a file store's files are kept "
                                            "beside it; a database's records are replaced in one transaction).")
def restore(file: Path, force: bool) -> None:
    """Check the backup FILE, then make it the store (DATABASE_URL, else STORE_PATH); refuses while a worker runs."""
    settings = settings_or_exit()
    try:
        summary = restore_store(settings, file, force=force)
    except BackupError as exc:
        click.secho(f"tweetbot: {exc}", fg="red", err=True)
        sys.exit(2)
    click.echo(f"Restored {summary.describe()} from {file} into {store_location(settings)}.")


def store_location(settings: Settings) -> str:
    """Where the store lives, for messages (a database's URL without its password)."""
    if settings.database_url:
        from bot.store.connections import describe

        return f"PostgreSQL at {describe(settings.database_url)}"
    return str(settings.store_path)


@main.command()
def accounts() -> None:
    """List the connected accounts with their token health."""
    _, store, _ = open_everything()
    from bot.media import RECONNECT_FOR_MEDIA, can_post_media
    from bot.store.heartbeats import known_workers

    rows = store.list_accounts()
    if not rows:
        click.echo("No accounts yet: sign in to the web app and press Connect.")
    sending = {post.account_id: post.claimed_by for post in store.sending_posts()}
    for account in rows:
        line = (f"{account.handle:20} {account.status:16} expires {relative(account.expires_at):14} "
                f"refreshed {relative(account.refreshed_at):14} failures {account.refresh_failures}")
        if sending.get(account.user_id):
            line += f"  posting: worker {sending[account.user_id]}"
        if account.last_error and account.status == NEEDS_RECONNECT:
            line += f"  ({account.last_error})"
        elif not can_post_media(account):
            line += f"  text only: {RECONNECT_FOR_MEDIA}"
        click.secho(line, fg="red" if needs_owner(account) else None)
    for name, beat in known_workers(store).items():
        click.echo(f"worker {name:30} heartbeat {relative(beat)}")


def needs_owner(account: Account) -> bool:
    from bot.alerts import attention

    return attention(account) != "ok"


@main.command()
@click.argument("handle", required=False)
def refresh(handle: str | None) -> None:
    """Refresh now the tokens of @HANDLE (default: every active account)."""
    from bot.tokens import TokenKeeper

    configure_logging(sys.stdout)
    settings, store, x = open_everything()
    keeper = TokenKeeper(store, x, timedelta(seconds=settings.refresh_margin))
    targets = store.list_accounts()
    if handle:
        found = store.find_account(handle)
        if found is None:
            click.secho(f"tweetbot: no account {handle}", fg="red", err=True)
            sys.exit(1)
        targets = [found]
    failed = 0
    for account in targets:
        before = account.refresh_token
        after = keeper.refresh_if_due(account.user_id, force=True)
        if after is None or after.refresh_token == before:
            failed += 1
            reason = "the account is gone" if after is None else after.last_error or f"status {after.status}"
            click.secho(f"{account.handle}: not refreshed ({reason})", fg="red")
        else:
            click.echo(f"{account.handle}: refreshed, expires {relative(after.expires_at)}")
    sys.exit(1 if failed else 0)


@main.command()
def run() -> None:
    """Start everything: web app and worker, and the sandbox when no X credentials are set."""
    settings = settings_or_exit()
    from bot.cli.processes import run_all

    sys.exit(run_all(settings))


register_queue(main)
register_store(main)
