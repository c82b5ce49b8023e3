"""The `tweetbot` command, run as a real process in a scratch folder."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.cli.config import machine_zone
from bot.models import Account
from bot.settings import load_settings
from bot.store import open_store

from pg_servers import Pgbouncer

TWEETBOT = str(Path(sys.executable).with_name("tweetbot"))


def tweetbot(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"SECRET_KEY", "TOKEN_KEY", "ADMIN_PASSWORD", "X_CLIENT_ID", "DYNO"}}
    return subprocess.run([TWEETBOT, *args], cwd=cwd, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=60)


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = tweetbot(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("init", "count", "check", "sandbox", "run"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command


def test_init_writes_fresh_secrets_once(tmp_path: Path) -> None:
    first = tweetbot(tmp_path, "init")
    assert first.returncode == 0, first.stderr
    values = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert set(values) == {"SECRET_KEY", "TOKEN_KEY", "ADMIN_PASSWORD", "TIMEZONE"}
    Fernet(values["TOKEN_KEY"])
    assert len(values["SECRET_KEY"]) >= 32
    assert f"Admin password (shown once): {values['ADMIN_PASSWORD']}" in first.stdout
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0

    again = tweetbot(tmp_path, "init")
    assert again.returncode == 1 and "--force" in again.stderr
    assert (tmp_path / ".env").read_text().count(values["SECRET_KEY"]) == 1

    forced = tweetbot(tmp_path, "init", "--force")
    assert forced.returncode == 0
    assert values["SECRET_KEY"] not in (tmp_path / ".env").read_text()


@pytest.mark.parametrize("tz, zone", [("Europe/Berlin", "Europe/Berlin"), (":America/New_York", "America/New_York")])
def test_init_takes_the_time_zone_from_tz(tmp_path: Path, tz: str, zone: str) -> None:
    done = tweetbot(tmp_path, "init", env={"TZ": tz})
    assert done.returncode == 0, done.stderr
    assert f"\nTIMEZONE={zone}\n" in (tmp_path / ".env").read_text()
    assert f"times are shown in {zone}" in done.stdout
    assert load_settings(tmp_path / ".env", {}).timezone == zone


def test_the_machine_zone_is_what_etc_localtime_links_to_and_utc_only_when_nothing_tells(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Nowhere/Else")  # not a zone: the files are asked next
    tokyo = tmp_path / "localtime"
    tokyo.symlink_to("/usr/share/zoneinfo/Asia/Tokyo")
    assert machine_zone(tokyo, tmp_path / "no-timezone-file") == "Asia/Tokyo"
    utc = tmp_path / "utc"
    utc.symlink_to("/usr/share/zoneinfo/Etc/UTC")
    assert machine_zone(utc, tmp_path / "no-timezone-file") == "UTC"
    (tmp_path / "timezone").write_text("America/Sao_Paulo\n")
    assert machine_zone(tmp_path / "missing", tmp_path / "timezone") == "America/Sao_Paulo"
    assert machine_zone(tmp_path / "missing", tmp_path / "missing-too") == "UTC"


def test_check_masks_secrets_and_says_which_x(tmp_path: Path) -> None:
    tweetbot(tmp_path, "init")
    env_text = (tmp_path / ".env").read_text()
    result = tweetbot(tmp_path, "check")
    assert result.returncode == 0, result.stderr
    assert "Talks to the local sandbox at http://127.0.0.1:8100" in result.stdout
    assert f"Store: {tmp_path / 'data' / 'tweetbot.json'}" in result.stdout
    for line in env_text.splitlines():
        if "=" in line and not line.startswith(("#", "TIMEZONE=")):
            assert line.split("=", 1)[1] not in result.stdout
    assert "DYNO" not in result.stdout


def test_check_shows_neither_a_secrets_first_characters_nor_its_length(tmp_path: Path) -> None:
    tweetbot(tmp_path, "init")
    values = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines()
                  if line and not line.startswith("#"))
    result = tweetbot(tmp_path, "check", env={"X_CLIENT_ID": "abc", "X_CLIENT_SECRET": "a-client-secret-value",
                                              "METRICS_TOKEN": ""})
    assert result.returncode == 0, result.stderr
    shown = dict(line.split(None, 1) for line in result.stdout.splitlines() if line[:1].islower() and " " in line)
    assert {name: shown[name] for name in ("secret_key", "token_keys", "admin_password", "x_client_secret",
                                           "metrics_token")} == {
        "secret_key": "set", "token_keys": "set", "admin_password": "set", "x_client_secret": "set",
        "metrics_token": "not set"}
    for secret in (*values.values(), "a-client-secret-value"):
        assert secret[:2] + "…" not in result.stdout and f"({len(secret)} chars)" not in result.stdout

    real = tweetbot(tmp_path, "check", env={"X_CLIENT_ID": "abc", "DYNO": "web.1"})
    assert "Talks to X at https://api.twitter.com" in real.stdout
    assert "warning: DYNO is set" in real.stdout


@pytest.mark.parametrize("variable, value, expected", [
    ("TOKEN_KEY", "nope", "TOKEN_KEY is malformed"),
    ("PORT", "x", "PORT='x' is not a whole number"),
])
def test_a_bad_variable_stops_with_one_line(tmp_path: Path, variable: str, value: str, expected: str) -> None:
    tweetbot(tmp_path, "init")
    result = tweetbot(tmp_path, "check", env={variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tweetbot: configuration error: {expected}")
    assert "Traceback" not in result.stderr


def test_without_a_dotenv_commands_that_need_settings_say_how_to_fix_it(tmp_path: Path) -> None:
    result = tweetbot(tmp_path, "check")
    assert result.returncode == 2
    assert "SECRET_KEY is not set: run `tweetbot init`" in result.stderr


@pytest.mark.parametrize("text, code, shown", [
    ("hello", 0, "5/280 weighted characters: fits"),
    ("界" * 141, 1, "282/280 weighted characters: does not fit (2 too many)"),
    ("x" * 256 + " https://example.com/a/long/path/that/counts/as/23", 0, "280/280 weighted characters: fits"),
    ("", 1, "0/280 weighted characters: cannot be posted: it is empty"),
    ("  \n ", 1, "4/280 weighted characters: cannot be posted: it is empty"),
    ("bell\x07", 1, "5/280 weighted characters: cannot be posted: it contains a control character U+0007 at "
                    "position 4 (only newlines and tabs may be in a post)"),
    ("a\ufffeb", 1, "4/280 weighted characters: cannot be posted: it contains an invalid character U+FFFE at "
                    "position 1"),
])
def test_count(tmp_path: Path, text: str, code: int, shown: str) -> None:
    result = tweetbot(tmp_path, "count", text)
    assert result.returncode == code
    assert result.stdout == shown + "\n"  # one verdict, said once


# --- check on a PaaS: the platform comes from the variable it sets in every process --------
NOT_ON_A_PLATFORM = {"DYNO": "", "RENDER": "", "RAILWAY_ENVIRONMENT": "", "FLY_APP_NAME": "", "DATABASE_URL": ""}


def warnings_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize("variable, value, platform", [
    ("DYNO", "web.1", "Heroku"),
    ("RENDER", "true", "Render"),
    ("RAILWAY_ENVIRONMENT", "production", "Railway"),
    ("FLY_APP_NAME", "my-tweetbot", "Fly.io"),
])
def test_check_warns_of_a_store_file_where_processes_share_no_disk(tmp_path: Path, variable: str, value: str,
                                                                    platform: str) -> None:
    tweetbot(tmp_path, "init")
    result = tweetbot(tmp_path, "check", env={**NOT_ON_A_PLATFORM, "X_CLIENT_ID": "abc", variable: value})
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^platform\s+{re.escape(platform)}$", result.stdout, re.M)
    [warning] = warnings_of(result)
    assert warning.startswith(f"warning: {variable} is set: {platform} runs web and worker with no disk in common")
    assert "the store file data/tweetbot.json loses every token" in warning
    assert warning.endswith("set DATABASE_URL to a PostgreSQL database (README: Deploying)")
    assert ("wipes each one's disk on every restart" in warning) == (platform == "Heroku")


def test_check_says_nothing_with_a_database_on_a_platform_nor_with_a_file_off_one(tmp_path: Path) -> None:
    tweetbot(tmp_path, "init")
    url = "postgres://tweetbot:hunter2secret@db.internal:5432/tweetbot"
    database = tweetbot(tmp_path, "check", env={**NOT_ON_A_PLATFORM, "X_CLIENT_ID": "abc", "RENDER": "true",
                                                "DATABASE_URL": url})
    assert database.returncode == 0, database.stderr
    assert warnings_of(database) == []
    [store] = [line for line in database.stdout.splitlines() if line.startswith("Store: ")]
    assert store.startswith("Store: PostgreSQL at postgres://tweetbot:") and store.endswith("@db.internal:5432/tweetbot")
    assert "hunter2secret" not in database.stdout

    local = tweetbot(tmp_path, "check", env={**NOT_ON_A_PLATFORM, "X_CLIENT_ID": "abc"})
    assert local.returncode == 0, local.stderr
    assert warnings_of(local) == []
    assert re.search(r"^platform\s+None$", local.stdout, re.M)
    assert f"Store: {tmp_path / 'data' / 'tweetbot.json'}" in local.stdout


def test_check_warns_that_the_sandbox_does_not_run_on_a_platform(tmp_path: Path) -> None:
    tweetbot(tmp_path, "init")
    result = tweetbot(tmp_path, "check", env={**NOT_ON_A_PLATFORM, "FLY_APP_NAME": "my-tweetbot", "SANDBOX_PORT": "8100",
                                              "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/tweetbot"})
    assert result.returncode == 0, result.stderr
    assert warnings_of(result) == [
        "warning: X_CLIENT_ID is not set: the bot talks to the sandbox at http://127.0.0.1:8100, which does not run "
        "on Fly.io; set X_CLIENT_ID and X_CLIENT_SECRET from your X app"
    ]


@pytest.mark.slow
def test_check_says_whether_the_database_is_reached_directly_or_through_a_pooler_and_the_connection_budget(
        tmp_path: Path, database_url: str, pgbouncer: Pgbouncer) -> None:
    tweetbot(tmp_path, "init")
    for url, kind in ((database_url, "direct"), (pgbouncer.through(database_url), "pooled")):
        result = tweetbot(tmp_path, "check", env={**NOT_ON_A_PLATFORM, "DATABASE_URL": url,
                                                  "DATABASE_POOL_SIZE": "3"})
        assert result.returncode == 0, result.stderr
        [database] = [line for line in result.stdout.splitlines() if line.startswith("Database: ")]
        assert database.endswith(kind) if kind == "direct" else f", {kind}: a pooler stands between" in database
        assert ("Connections: at most 3 per process (DATABASE_POOL_SIZE): web 6 (2 gunicorn processes), "
                "each worker 3, migrate 1, a command 1; 14 with 2 workers") in result.stdout
        assert re.search(r"^The server allows \d+ connections \(max_connections \d+ less \d+ reserved\)",
                         result.stdout, re.M)
    crowded = tweetbot(tmp_path, "check", env={**NOT_ON_A_PLATFORM, "DATABASE_URL": database_url,
                                               "DATABASE_POOL_SIZE": "100"})
    assert "lower DATABASE_POOL_SIZE" in crowded.stdout  # 404 connections wanted: more than the server allows


@pytest.mark.slow
def test_commands_work_through_a_transaction_pooler(tmp_path: Path, database_url: str, pgbouncer: Pgbouncer) -> None:
    """pgbouncer in transaction mode (Supabase's and Neon's pooled URLs): a statement prepared on one
    server session is unknown on the next, so a command that repeats a statement must prepare none."""
    tweetbot(tmp_path, "init")
    pooled = {**NOT_ON_A_PLATFORM, "DATABASE_URL": pgbouncer.through(database_url)}
    store = open_store(load_settings(dotenv_path=tmp_path / ".env", environ={**os.environ, **pooled}))
    store.save_account(Account(user_id="101", username="pooled", access_token="a", refresh_token="r",
                               scopes=("tweet.read", "tweet.write", "users.read", "offline.access")))
    store.close()
    rows = "".join(f"@pooled,2099-12-01 {n % 24:02d}:{n % 60:02d},row {n} through the pooler\n" for n in range(40))
    (tmp_path / "posts.csv").write_text("account,due_at,text\n" + rows)
    results = [tweetbot(tmp_path, "import", "posts.csv", env=pooled)]
    results += [tweetbot(tmp_path, "post", f"post {n} through the pooler", "--at", "2099-12-02 09:00",
                         "--account", "@pooled", env=pooled) for n in range(6)]
    results.append(tweetbot(tmp_path, "queue", env=pooled))
    for result in results:
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert results[-1].stdout.count("@pooled ") == 46  # a row per queued post
