"""Once per deployment: three workers on one PostgreSQL each run every generator, and each run (the
generator and the period of its schedule) queues one post, whichever worker gets there first."""
from __future__ import annotations

import math
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from bot.generators import SOURCE

from sandbox_helpers import SandboxControl
from test_worker_posting import env_for, posted_texts
from worker_support import WorkerProcess, connect_accounts, open_test_store, wait_until

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out

PERIOD = 2  # seconds: `every = "2 seconds"`

MODULE = '''
    import itertools
    import os

    calls = itertools.count(1)

    def news():
        return f"news from worker {os.getpid()}, call {next(calls)}"
'''


def runs(workers: list[WorkerProcess]) -> Counter[str]:
    """How each worker's runs of the generator ended: queued, or found queued already."""
    seen: Counter[str] = Counter()
    for worker in workers:
        log = worker.log()
        seen["queued"] += log.count("(gen_once:news, every 2 seconds UTC, for @once_1) queued post")
        seen["already"] += log.count("this period's post is queued already")
    return seen


def test_three_workers_queue_each_generator_run_once(tmp_path: Path, sandbox: SandboxControl,
                                                     database_url: str) -> None:
    sandbox.configure(rate_limits=False, duplicate_window=1)
    (tmp_path / "gen_once.py").write_text(textwrap.dedent(MODULE))
    (tmp_path / "tweetbot.toml").write_text(textwrap.dedent(f'''
        [[generator]]
        account = "@once_1"
        every = "{PERIOD} seconds"
        call = "gen_once:news"
    '''))
    env = env_for(tmp_path, sandbox, DATABASE_URL=database_url)
    store = open_test_store(env)
    connect_accounts(store, sandbox, 1, prefix="once")
    workers = [WorkerProcess(env, tmp_path, name=f"worker{n}") for n in (1, 2, 3)]
    try:
        # Twelve runs of a job every 2 s on three workers span at most five or six periods:
        # more runs than periods, so runs of one period met (whatever the timing).
        wait_until(lambda: sum(runs(workers).values()) >= 12, 60, "twelve runs of the generator")
        assert all(worker.terminate() == 0 for worker in workers)
    finally:
        for worker in workers:
            worker.stop_quietly()
    seen = runs(workers)
    generated = [p for p in [*store.queued_posts(), *store.history(limit=1000)] if p.source == SOURCE]
    periods = Counter(math.floor(p.due_at.timestamp() / PERIOD) for p in generated)
    print(f"generators: {sum(seen.values())} runs on 3 workers, {len(generated)} posts in {len(periods)} periods")
    assert len(generated) == seen["queued"] and seen["already"] >= 1
    assert set(periods.values()) == {1}  # one post per period, never two
    assert sum(seen.values()) > len(generated)
    assert set(posted_texts(sandbox).values()) <= {1}  # what went out, once each
