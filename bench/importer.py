"""How long `tweetbot import` takes for 10,000 rows as the number of accounts grows.

    .venv/bin/python bench/importer.py

Runs the real command (a process, as a person would) on a CSV of 10,000 rows spread
over 1, 50 and 200 connected accounts, each holding encrypted tokens, and prints
the wall-clock time of each. Target: 200 accounts no slower than 1.5x one account
(an account lookup must not decrypt tokens; each account is looked up once per file).
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from bot.crypto import TokenCipher  # noqa: E402
from bot.models import Account, utcnow  # noqa: E402
from bot.store.file import TinyStore  # noqa: E402

ROWS = 10_000
ACCOUNTS = (1, 50, 200)
TWEETBOT = str(Path(sys.executable).with_name("tweetbot"))


def prepare(folder: Path, accounts: int, key: str) -> Path:
    """A store with `accounts` connected accounts and a CSV of ROWS rows over them; the CSV's path."""
    store = TinyStore(folder / "tweetbot.json", TokenCipher([key]))
    with store.transaction():
        for n in range(accounts):
            store.save_account(Account(user_id=str(1000 + n), username=f"bench{n}", scopes=("tweet.write",),
                                       access_token=f"access-{n}-" + "a" * 80, refresh_token=f"refresh-{n}-" + "r" * 80,
                                       expires_at=utcnow() + timedelta(hours=2)))
    start = utcnow() + timedelta(days=1)
    path = folder / "posts.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account", "due_at", "text"])
        for n in range(ROWS):
            due = (start + timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M UTC")
            writer.writerow([f"@bench{n % accounts}", due, f"Bench post number {n}: an ordinary sentence."])
    return path


def run_import(folder: Path, csv_path: Path, key: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("X_CLIENT_ID", "DYNO")}
    env.update(SECRET_KEY=Fernet.generate_key().decode(), TOKEN_KEY=key, ADMIN_PASSWORD="bench-password",
               STORE_PATH=str(folder / "tweetbot.json"), TIMEZONE="UTC")
    started = time.perf_counter()
    done = subprocess.run([TWEETBOT, "import", str(csv_path)], cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"tweetbot import failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def main() -> None:
    times = {}
    for accounts in ACCOUNTS:
        key = Fernet.generate_key().decode()
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            times[accounts] = run_import(folder, prepare(folder, accounts, key), key)
        print(f"tweetbot import, {ROWS:,} rows, {accounts:>3} account(s): {times[accounts]:5.2f} s", flush=True)
    ratio = times[ACCOUNTS[-1]] / times[ACCOUNTS[0]]
    verdict = "meets" if ratio <= 1.5 else "misses"
    print(f"{ACCOUNTS[-1]} accounts / 1 account: {ratio:.2f}x ({verdict} the target of 1.5x)")


if __name__ == "__main__":
    main()
