"""The web app under gunicorn for the benches (bench/web.py, bench/api.py): a free port, its environment on a
scratch store, a store filled with connected accounts, and waiting until its workers answer."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from bot.models import ACTIVE, POSTED, Account, Post, utcnow
from bot.store import Repository

PASSWORD = "bench-admin-password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fill(store: Repository, accounts: int, queued: int, finished: int = 200) -> None:
    """Connected accounts with tokens, a queue spread over them, and some history."""
    now = utcnow()
    for n in range(accounts):
        store.save_account(Account(
            user_id=str(1_720_000_000_000_000_100 + n), username=f"bench_{n:02d}", name=f"Bench {n}",
            scopes=("tweet.read", "tweet.write", "users.read", "offline.access"),
            access_token=f"access-{n}-" + "a" * 60, refresh_token=f"refresh-{n}-" + "r" * 60,
            expires_at=now + timedelta(minutes=30 + n), refreshed_at=now - timedelta(minutes=90 - n),
            connected_at=now - timedelta(days=n), status=ACTIVE))
    ids = [str(1_720_000_000_000_000_100 + n) for n in range(accounts)]
    store.add_posts([Post(id=0, account_id=ids[n % accounts], due_at=now + timedelta(minutes=10 * n + 5),
                          parts=(f"queued post {n} " + "lorem ipsum dolor sit amet " * 5,), source="bench")
                     for n in range(queued)])
    store.add_posts([Post(id=0, account_id=ids[n % accounts], due_at=now - timedelta(hours=n), status=POSTED,
                          parts=(f"posted {n} " + "x" * 100,), tweet_ids=(str(1_860_000_000_000_000_000 + n),),
                          posted_at=now - timedelta(hours=n)) for n in range(finished)])


def environment(folder: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("X_")}
    env.update(SECRET_KEY=Fernet.generate_key().decode(), TOKEN_KEY=Fernet.generate_key().decode(),
               ADMIN_PASSWORD=PASSWORD, STORE_PATH=str(folder / "tweetbot.json"), PORT=str(port),
               PUBLIC_URL=f"http://127.0.0.1:{port}", SANDBOX_PORT=str(free_port()), TIMEZONE="Europe/Berlin")
    return env


def workers_of(master: int) -> list[int]:
    """The pids of gunicorn's workers (the master's children)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def wait_until_up(url: str, process: subprocess.Popen[bytes], workers: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            requests.get(url + "/healthz", timeout=5)
            if len(workers_of(process.pid)) >= workers:
                return
        except requests.RequestException:  # not listening yet, or busy booting
            pass
        time.sleep(0.1)
    raise SystemExit("gunicorn did not come up within 30 s")
