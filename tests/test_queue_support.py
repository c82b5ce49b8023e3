"""Helpers for the queue tests: a scratch tweetbot folder with a real `.env`, store and accounts.

No test lives here. The folder is made the way an operator makes one: `tweetbot
init` writes the `.env`, a STORE_PATH is added, accounts are put in the store
through `bot.accounts.connect` (what the consent flow calls), and commands run
as real `tweetbot` processes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.accounts import connect
from bot.models import Account
from bot.settings import DEFAULT_SCOPES, Settings, load_settings
from bot.store import Repository, open_store
from bot.xclient import TokenSet

TWEETBOT = str(Path(sys.executable).with_name("tweetbot"))
# Variables the test's .env must decide, not the environment pytest happens to run in.
_OWN_VARIABLES = {"SECRET_KEY", "TOKEN_KEY", "ADMIN_PASSWORD", "X_CLIENT_ID", "X_CLIENT_SECRET", "X_API_BASE",
                  "DYNO", "STORE_PATH", "TIMEZONE", "X_TIER", "GENERATORS_FILE", "SANDBOX_PORT"}


@dataclass
class BotFolder:
    """A folder an operator would run tweetbot in."""

    path: Path

    @property
    def env_file(self) -> Path:
        return self.path / ".env"

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`tweetbot ARGS…` in the folder, as a real process."""
        clean = {k: v for k, v in os.environ.items() if k not in _OWN_VARIABLES}
        return subprocess.run([TWEETBOT, *args], cwd=self.path, env={**clean, **(env or {})},
                              capture_output=True, text=True, timeout=120)

    def set(self, **variables: str) -> None:
        """Add variables to the `.env` (later lines win over earlier ones in python-dotenv)."""
        with self.env_file.open("a", encoding="utf-8") as handle:
            handle.writelines(f"{name}={value}\n" for name, value in variables.items())

    def settings(self) -> Settings:
        return load_settings(self.env_file, environ={})

    def store(self) -> Repository:
        return open_store(self.settings())

    def connect(self, username: str, user_id: str, scopes: tuple[str, ...] = DEFAULT_SCOPES) -> Account:
        """Put an account in the store as the consent flow does (no network needed)."""
        tokens = TokenSet(access_token=f"access-{user_id}", refresh_token=f"refresh-{user_id}",
                          expires_at=datetime.now(timezone.utc) + timedelta(hours=2), scopes=scopes)
        return connect(self.store(), tokens, {"id": user_id, "username": username, "name": username.title()})


def make_folder(path: Path, timezone_name: str = "UTC", **variables: str) -> BotFolder:
    """`tweetbot init` in `path`, plus STORE_PATH, TIMEZONE and any other variables."""
    folder = BotFolder(path)
    result = folder.run("init")
    assert result.returncode == 0, result.stderr
    folder.set(STORE_PATH=str(path / "data" / "tweetbot.json"), TIMEZONE=timezone_name, **variables)
    return folder


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A UTC moment: utc(2026, 3, 27, 8, 0)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
