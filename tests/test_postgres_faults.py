"""What managed databases do to their clients, done to a PostgreSQL server of the test's own (initdb in a
temporary folder, its own port; the shared server is never touched): backends cut, a restart, a stop of
20 s, each aimed while a token refresh is in flight at X and while posts are going out; and a role with
CONNECTION LIMIT 20 shared by the Procfile's web line, two workers and a command line in a loop.

What must hold: no token chain lost (X never sees a spent refresh token again), every post at X once,
the workers alive and quiet (a line a minute, no traceback), `/healthz` 503 "unreachable" within 2 s
while the database is away and 200 after, a SIGTERM obeyed within 10 s even then.
"""
from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import requests

from bot.models import ACTIVE, POSTED, Post, utcnow
from bot.store import Repository

from conftest import free_port, tweetbot_env
from dyno_support import BIN, dyno, procfile, shell
from pg_servers import ConnectionPeak, PrivateServer
from sandbox_helpers import SandboxControl
from test_worker_posting import TWEETS, posted_texts
from worker_support import WorkerProcess, chain_of, connect_accounts, open_test_store, wait_until

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out

TOKEN = "POST /2/oauth2/token"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateServer]:
    private = PrivateServer()
    private.start()
    yield private
    private.close()


def refresh_in_flight(sandbox: SandboxControl) -> bool:
    """A refresh request has reached X and has not been answered yet (the token endpoint is slowed)."""
    state = sandbox.state("request_counts", "token_events")
    answered = sum(e["kind"] in ("refreshed", "reuse_refused", "refresh_refused") for e in state["token_events"])
    return state["request_counts"].get(TOKEN, 0) > answered


def healthz(url: str) -> tuple[int, str]:
    """`/healthz` with a 2 s timeout: an answer slower than that fails the test (requests raises)."""
    answer = requests.get(url + "/healthz", timeout=2)
    return answer.status_code, answer.text


def answers_200(url: str) -> bool:
    """`/healthz` says 200 (False while nothing listens yet)."""
    try:
        return requests.get(url + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def on_path(env: dict[str, str]) -> dict[str, str]:
    """The environment with the venv's programs (gunicorn, tweetbot) first on PATH, as on a slug."""
    return {**env, "PATH": BIN + os.pathsep + env.get("PATH", "")}


def stops_within(worker: WorkerProcess, seconds: float) -> bool:
    """SIGTERM; whether it exited (0) within `seconds`. One still running must be holding a refreshed
    pair the database has not taken: it goes on trying until the pair lands (dropping it would lose the
    account), as its log says."""
    worker.process.send_signal(signal.SIGTERM)
    try:
        assert worker.process.wait(timeout=seconds) == 0
        return True
    except subprocess.TimeoutExpired:
        log = worker.log()
        assert "the new tokens of @" in log and "trying again until it is stored" in log, \
            f"the worker did not stop within {seconds} s of SIGTERM:\n{log}"
        return False


def quiet(log: str) -> None:
    """A worker's log through an outage: said, not shouted (no traceback, a line a minute at most)."""
    assert "Traceback" not in log, log
    assert log.count("is unreachable") + log.count("is still unreachable") <= 2, log


def test_backends_cut_a_restart_and_a_20_s_stop_lose_no_chain_and_no_post(
        tmp_path: Path, sandbox: SandboxControl, server: PrivateServer) -> None:
    name = f"faults_{next(_names)}"
    url = server.create_database(name)
    sandbox.configure(rate_limits=False, duplicate_window=1, access_token_lifetime=30)
    sandbox.fault(TOKEN, "latency", latency=1.0)  # every refresh is in flight for a second
    env = tweetbot_env(tmp_path, sandbox.url, DATABASE_URL=url, REFRESH_MARGIN="25", REFRESH_EVERY="1",
                       HTTP_TIMEOUT="5", RETRY_BACKOFF="0.5", MAX_ATTEMPTS="20")
    store = open_test_store(env)
    accounts = connect_accounts(store, sandbox, 10, prefix="blip")
    start = utcnow()
    store.add_posts([Post(id=0, account_id=accounts[n % 10].user_id, parts=(f"blip post {n:03d}",),
                          due_at=start + timedelta(seconds=3 + n * 0.25)) for n in range(200)])
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        web = stack.enter_context(dyno("web", procfile()["web"], on_path({**env, "PORT": str(port),
                                                                         "PUBLIC_URL": web_url}),
                                       tmp_path / "web", tmp_path))
        workers = [WorkerProcess(env, tmp_path, name=f"worker{n}") for n in (1, 2, 3)]
        stack.callback(lambda: [worker.stop_quietly() for worker in workers])
        for worker in workers:
            worker.wait_started()
        wait_until(lambda: web.running() and answers_200(web_url), 60, "/healthz to answer 200")

        wait_until(lambda: refresh_in_flight(sandbox), 30, "a refresh in flight")
        assert server.terminate_backends(name) >= 2  # both workers' sessions, the web's too
        wait_until(lambda: len(posted_texts(sandbox)) >= 30, 60, "posts going out after the cut")

        wait_until(lambda: refresh_in_flight(sandbox), 30, "a refresh in flight")
        server.restart()
        wait_until(lambda: len(posted_texts(sandbox)) >= 60, 60, "posts going out after the restart")

        wait_until(lambda: refresh_in_flight(sandbox), 30, "a refresh in flight")
        server.stop()
        stack.callback(server.start_if_stopped)  # whatever fails here, the next test gets its server
        stopped_at = time.monotonic()
        status, body = healthz(web_url)
        assert status == 503 and "unreachable" in body, body
        holds_a_pair = not stops_within(workers[2], 10)  # a SIGTERM during the outage is obeyed
        while time.monotonic() < stopped_at + 20:  # the outage itself, not a wait for something
            assert web.running() and all(w.process.poll() is None for w in workers[:2])
            assert healthz(web_url)[0] == 503
            time.sleep(1)
        server.start()
        wait_until(lambda: answers_200(web_url), 30, "/healthz to answer 200 again")
        if holds_a_pair:  # it stopped once the pair it held was stored
            assert workers[2].process.wait(timeout=30) == 0
            assert re.search(r"the new tokens of @\w+: stored", workers[2].log()), workers[2].log()

        wait_until(lambda: not store.queued_posts(), 120, "every post out", every=0.5)
        for worker in workers[:2]:
            assert worker.process.poll() is None, worker.log()
            assert worker.terminate() == 0
    assert_no_chain_lost(sandbox, store, [a.user_id for a in accounts])
    texts = posted_texts(sandbox)
    assert sum(texts.values()) == 200 and set(texts.values()) == {1}
    assert {p.status for p in store.history(limit=1000)} == {POSTED}
    for worker in workers:
        quiet(worker.log())
    assert "reachable again" in workers[0].log() + workers[1].log()


def assert_no_chain_lost(sandbox: SandboxControl, store: Repository, user_ids: list[str]) -> None:
    refreshes = sum(chain_of(sandbox, user_id)["refreshes"] for user_id in user_ids)
    print(f"faults: {refreshes} refreshes of {len(user_ids)} accounts, {sandbox.reuse_count()} reuses")
    assert sandbox.reuse_count() == 0 and refreshes >= len(user_ids)
    for user_id in user_ids:
        assert chain_of(sandbox, user_id)["status"] == "active"
        assert store.get_account(user_id).status == ACTIVE  # type: ignore[union-attr]


def test_web_two_workers_and_a_command_loop_share_a_role_limited_to_20_connections(
        tmp_path: Path, sandbox: SandboxControl, server: PrivateServer) -> None:
    name = f"limited_{next(_names)}"
    role = f"tweetbot_{name}"
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 20")
    admin_url = server.create_database(name)
    url = admin_url.replace("postgresql://postgres@", f"postgresql://{role}@")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}; "
                      f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    sandbox.configure(rate_limits=False, duplicate_window=1)
    sandbox.fault(TWEETS, "latency", latency=0.01)
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    env = tweetbot_env(tmp_path, sandbox.url, DATABASE_URL=url, METRICS_TOKEN="m" * 24, PUBLIC_URL=web_url)
    store = open_test_store({**env, "DATABASE_URL": admin_url})  # the test's own reads do not count against the role
    accounts = connect_accounts(store, sandbox, 20, prefix="limit")
    peak = ConnectionPeak(server.url, role=role)
    outputs: list[str] = []
    with ExitStack() as stack:
        stack.callback(peak.stop)
        web = stack.enter_context(dyno("web", procfile()["web"], on_path({**env, "PORT": str(port)}),
                                       tmp_path / "web", tmp_path))
        workers = [WorkerProcess(env, tmp_path, name=f"worker{n}") for n in (1, 2)]
        stack.callback(lambda: [worker.stop_quietly() for worker in workers])
        wait_until(lambda: web.running() and answers_200(web_url), 60, "/healthz to answer 200")
        start = utcnow()  # the posts come due once every part is up, so the monitor's reads overlap the posting
        store.add_posts([Post(id=0, account_id=accounts[n % 20].user_id, parts=(f"limited post {n:03d}",),
                              due_at=start + timedelta(seconds=2 + n * 0.02)) for n in range(380)])
        statuses: list[int] = []
        finished = threading.Event()
        readers = [threading.Thread(target=scrape, args=(web_url, env["METRICS_TOKEN"], finished, statuses),
                                    daemon=True) for _ in range(6)]
        for reader in readers:
            reader.start()
        for n in range(20):  # the command line, one process after another, while all of it runs
            text = shlex.quote(f"from the command line {n:02d}")
            command = f"tweetbot post {text} --at now --account @{accounts[n].username}"
            done = subprocess.run(shell(command), cwd=tmp_path, env=on_path(env), capture_output=True, text=True,
                                  timeout=60)
            outputs.append(done.stdout + done.stderr)
            assert done.returncode == 0, done.stdout + done.stderr
        wait_until(lambda: not store.queued_posts(), 120, "every post out", every=0.5)
        finished.set()
        for reader in readers:
            reader.join(timeout=30)
        logs = web.log() + "".join(worker.log() for worker in workers) + "".join(outputs)
        assert all(worker.terminate() == 0 for worker in workers)
    print(f"connection limit 20: peak {peak.most} connections of the role (web, 2 workers, a command loop)")
    assert "too many connections" not in logs and "remaining connection slots" not in logs, logs
    assert "Traceback" not in logs
    assert statuses and set(statuses) == {200}  # every /metrics and /healthz answered, none refused
    assert 0 < peak.most <= 20
    assert sum(posted_texts(sandbox).values()) == 400


def scrape(web_url: str, token: str, finished: threading.Event, statuses: list[int]) -> None:
    """What a monitor does while the bot runs: /metrics and /healthz, round after round until `finished`."""
    session = requests.Session()
    while True:
        for path in ("/metrics", "/healthz"):
            answer = session.get(web_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            statuses.append(answer.status_code)
        if finished.is_set():
            return


