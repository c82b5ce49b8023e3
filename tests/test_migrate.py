"""`tweetbot migrate`: the PostgreSQL schema, applied once however often and however many at once;
web and worker refuse an old schema with one line naming the command."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet

from bot.store.postgres.migrate import latest_version

from conftest import TWEETBOT, tweetbot_env

PYTHON = str(Path(sys.executable))


def env_with(url: str, tmp_path: Path) -> dict[str, str]:
    return tweetbot_env(tmp_path, "http://127.0.0.1:9", DATABASE_URL=url, TOKEN_KEY=Fernet.generate_key().decode())


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def applied(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_two_migrations_at_once_apply_each_version_once_and_a_third_finds_nothing(
        tmp_path: Path, unmigrated_database_url: str) -> None:
    env = env_with(unmigrated_database_url.replace("postgresql://", "postgres://", 1), tmp_path)  # Heroku's form
    both = [subprocess.Popen([TWEETBOT, "migrate"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in both]
    assert [process.returncode for process in both] == [0, 0], outputs
    assert sum("Applied 0001_initial.sql" in out for out, _ in outputs) == 1
    assert applied(unmigrated_database_url) == list(range(1, latest_version() + 1))
    again = run([TWEETBOT, "migrate"], env, tmp_path)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert applied(unmigrated_database_url) == list(range(1, latest_version() + 1))


def test_worker_web_and_cli_refuse_a_database_without_the_schema(tmp_path: Path,
                                                                 unmigrated_database_url: str) -> None:
    env = env_with(unmigrated_database_url, tmp_path)
    worker = run([TWEETBOT, "worker"], env, tmp_path)
    web = run([PYTHON, "-c", "from web import create_app; create_app()"], env, tmp_path)
    queue = run([TWEETBOT, "queue"], env, tmp_path)
    for refused in (worker, web, queue):
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, refused.stderr
        assert "tweetbot migrate" in lines[0] and "Traceback" not in refused.stderr


def test_a_schema_behind_the_code_is_refused_until_it_is_current(tmp_path: Path, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        name = conn.execute("DELETE FROM schema_migrations WHERE version = %s RETURNING name",
                            (latest_version(),)).fetchone()[0]
    env = env_with(database_url, tmp_path)
    refused = run([TWEETBOT, "accounts"], env, tmp_path)
    assert refused.returncode == 2 and f"this tweetbot needs {latest_version()}" in refused.stderr
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (latest_version(), name))
    assert run([TWEETBOT, "accounts"], env, tmp_path).returncode == 0
