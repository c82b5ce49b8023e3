"""Setting up: `tweetbot init` (a `.env` with fresh secrets and this machine's time zone) and
`tweetbot check` (the effective settings, secrets masked, and what cannot work as set)."""
from __future__ import annotations

import os
import secrets
import sys
from contextlib import suppress
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from cryptography.fernet import Fernet

from bot.cli.common import settings_or_exit
from bot.settings import PLATFORMS, Settings
from bot.store import StoreError, heartbeats, open_store
from bot.store.files import PRIVATE, atomic_write


@click.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing .env.")
@click.option("--path", "env_path", default=".env", show_default=True, type=click.Path(dir_okay=False))
def init_command(force: bool, env_path: str) -> None:
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


@click.command("check")
def check_command() -> None:
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
        from bot.store.postgres.budget import describe_database

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


COMMANDS: tuple[click.Command, ...] = (init_command, check_command)
