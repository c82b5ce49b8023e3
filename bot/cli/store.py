"""The store's own commands: `tweetbot migrate` (the PostgreSQL schema, Procfile's release
line), `tweetbot store copy` (between a file store and PostgreSQL, either way), and
`tweetbot backup` and `restore` (the whole store to an archive and back, for either kind)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from bot.cli.common import settings_or_exit, stop_unusable, store_or_exit
from bot.crypto import TokenCipher
from bot.settings import Settings
from bot.store import UNUSABLE, BackupError, RecordMissing, Repository, restore_store
from bot.store.file import TinyStore
from bot.store.file.store import media_folder

# RecordMissing: a media file of the source deleted between reading the list and copying it.
COPY_FAILURES: tuple[type[BaseException], ...] = (*UNUSABLE, OSError, RecordMissing)


@click.command("migrate")
def migrate_command() -> None:
    """Bring the PostgreSQL schema up to date (safe to run twice, or two at once)."""
    settings = settings_or_exit()
    if not settings.database_url:
        click.echo(f"The store is the file {settings.store_path}: it needs no migration.")
        return
    import psycopg

    from bot.store.postgres import describe
    from bot.store.postgres.migrate import latest_version, migrate

    try:
        applied = migrate(settings.database_url)
    except psycopg.Error as exc:
        stop_unusable(RuntimeError(f"cannot migrate the database at {describe(settings.database_url)}: {exc}"))
    where = describe(settings.database_url)
    if applied:
        click.echo(f"Applied {', '.join(applied)} to {where}; the schema is at version {latest_version()}.")
    else:
        click.echo(f"The schema at {where} is up to date (version {latest_version()}).")


@click.group("store")
def store_group() -> None:
    """Move the store: between a file and PostgreSQL."""


@store_group.command("copy")
@click.option("--to", "target", required=True, metavar="URL_OR_FILE",
              help="A PostgreSQL URL, or the path of a new TinyDB file.")
def copy_command(target: str) -> None:
    """Copy everything (accounts, tokens, queue, schedules, history, events, media) into an empty store.

    All or nothing; tokens stay encrypted with TOKEN_KEY, so the target needs the same key.
    Media files are copied one at a time, each checked against its digest.
    """
    settings = settings_or_exit()
    source = store_or_exit(settings)
    folder = None if _is_url(target) else Path(target).resolve().parent
    before = set(folder.iterdir()) if folder is not None and folder.is_dir() else None
    destination = _target_store(target, TokenCipher(settings.token_keys))
    try:
        contents = source.dump()
        destination.load(contents)
    except COPY_FAILURES as exc:
        destination.close()
        if folder is not None:
            _remove_new_files(folder, before, Path(target).name)  # a new file store that failed is no store
        stop_unusable(exc)
    destination.close()
    counts = ", ".join(f"{n:,} {what}" for what, n in contents.counts().items())
    click.echo(f"Copied {counts} to {_where(target) if _is_url(target) else target}.")


def _is_url(target: str) -> bool:
    return target.startswith(("postgres://", "postgresql://"))


def _remove_new_files(folder: Path, before: set[Path] | None, name: str) -> None:
    """Remove the files of the store `name` that a failed copy created in `folder` (`before`: what was
    there; None: the copy made the folder). Other processes' files there are left alone."""
    if not folder.is_dir():
        return
    if before is None:
        shutil.rmtree(folder)
        return
    stem = Path(name).stem
    for created in {p for p in folder.iterdir() if p.name.startswith((stem + ".", f".{name}."))} - before:
        if created.is_file() or created.is_symlink():
            created.unlink()
        elif created == media_folder(folder / name):  # the store's own media folder, new with this copy
            shutil.rmtree(created)


def _target_store(target: str, cipher: TokenCipher) -> Repository:
    if _is_url(target):
        from bot.store.postgres import PostgresStore
        from bot.store.postgres.migrate import migrate

        migrate(target)
        return PostgresStore(target, cipher)
    path = Path(target)
    if path.exists():
        click.secho(f"tweetbot: {path} exists: copy only into a new file", fg="red", err=True)
        sys.exit(2)
    return TinyStore(path, cipher)


def _where(url: str) -> str:
    from bot.store.postgres import describe

    return describe(url)


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(file: Path) -> None:
    """Write the whole store as of now to the archive FILE (tar.gz, 0600); safe while the worker runs."""
    settings = settings_or_exit()
    summary = store_or_exit(settings).backup(file)
    click.echo(f"Backed up {summary.describe()} to {file} ({summary.size:,} bytes).")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a store that holds anything (a file store's files are kept "
                                            "beside it; a database's records are replaced in one transaction).")
def restore_command(file: Path, force: bool) -> None:
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
        from bot.store.postgres.connections import describe

        return f"PostgreSQL at {describe(settings.database_url)}"
    return str(settings.store_path)


COMMANDS: tuple[click.Command, ...] = (migrate_command, store_group, backup_command, restore_command)
