"""`tweetbot store copy`, run as a real process: a file store with 10 accounts, 1,000 posts
(queued, sending, retrying, posted, failed, canceled, threads), schedules, events, meta and
media files (one of several pieces in PostgreSQL) into PostgreSQL and back into a new file, the same records both ways; refusals of a target
that is not empty (both kinds) with exit 2 and nothing changed; all or nothing when the
load fails midway."""
from __future__ import annotations

import random
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from bot.models import CANCELED, FAILED, NEEDS_RECONNECT, POSTED, SENDING, Account, MediaRef, Post, utcnow
from bot.schedules import clear_slots, parse_slots, save_slots
from bot.store import Reading, Repository, StoreContents, TokenKeyError, heartbeats

from conftest import TWEETBOT, tweetbot_env
from sandbox_helpers import SandboxControl
from store_support import FILE, POSTGRES, StoreAt
from worker_support import WorkerProcess, wait_until

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out

NO_SANDBOX = "http://127.0.0.1:9"  # the copy never talks to X
ACCOUNTS = 10
POSTS = 1_000
POSTED_N, FAILED_N, CANCELED_N = 500, 100, 50
READ_N = 120  # posted posts with a reading of their metrics
FINISHED_N = POSTED_N + FAILED_N + CANCELED_N
QUEUED_N = POSTS - FINISHED_N
MEDIA_SIZES = (10, 200_000, 2 * (1 << 20) + 7)  # the last one is three pieces in PostgreSQL


@dataclass
class Filled:
    """What `fill` put in a store, counted as it went (not read back from the store)."""

    tokens: dict[str, tuple[str, str]]
    events: int
    schedules: int
    now: datetime
    media: dict[str, bytes]

    def counts_line(self) -> str:
        return (f"{ACCOUNTS:,} accounts, {QUEUED_N:,} queued posts, {FINISHED_N:,} finished posts, "
                f"{self.schedules:,} schedules, {self.events:,} events, {len(self.media):,} media files")


def fill(store: Repository, accounts: int = ACCOUNTS, posts: int = POSTS, seed: int = 7) -> Filled:
    """Accounts with tokens, `posts` posts of which FINISHED_N finish in shuffled order (so the
    history's order is not the ids'), a sending thread, retries, schedules, events and meta."""
    rng = random.Random(seed)
    now = utcnow().replace(microsecond=123456)
    tokens: dict[str, tuple[str, str]] = {}
    ids = [str(7_000_000 + n) for n in range(accounts)]
    for n, user_id in enumerate(ids):
        access, refresh = f"plain-access-{n}-{Fernet.generate_key().decode()}", f"plain-refresh-{n}-{n * 31}x"
        tokens[user_id] = (access, refresh)
        store.save_account(Account(
            user_id=user_id, username=f"Copier{n}", name=f"Copier number {n}",
            scopes=("tweet.read", "tweet.write", "users.read", "offline.access"),
            access_token=access, refresh_token=refresh, expires_at=now + timedelta(hours=2, seconds=n),
            refreshed_at=now - timedelta(minutes=n), connected_at=now - timedelta(days=n),
            status=NEEDS_RECONNECT if n == 3 else "active", last_error="invalid_grant" if n == 3 else None,
            refresh_failures=2 if n == 3 else 0, hold_until=now + timedelta(hours=1) if n == 4 else None,
            hold_reason="429 until reset" if n == 4 else None))
    events = 0
    blobs = [rng.randbytes(size) for size in MEDIA_SIZES]
    media = {store.put_media(blob): blob for blob in blobs}
    refs = [MediaRef(digest, "image", "image/png", len(blob), f"image{k}.png", alt=f"alt {k}")
            for k, (digest, blob) in enumerate(media.items())]
    drafts = []
    for n in range(posts):
        thread = n % 97 == 0
        parts = tuple(f"part {k} of thread {n} ✓" for k in range(3)) if thread else (f"post {n}: {'ü' * (n % 7)}",)
        drafts.append(Post(id=0, account_id=ids[n % accounts], parts=parts,
                           due_at=now + timedelta(minutes=rng.randint(-5000, 5000), microseconds=n),
                           source=("cli", "web", "import", "generator")[n % 4],
                           media=((refs[n % len(refs)],),) if n % 50 == 1 else ()))
    stored = store.add_posts(drafts)
    order = list(range(posts))
    rng.shuffle(order)
    finishing, staying = order[:FINISHED_N], order[FINISHED_N:]
    with store.transaction():
        for rank, index in enumerate(finishing):
            post = stored[index]
            worker = ("worker-a", "worker-b")[rank % 2]
            if rank < POSTED_N:
                store.update_post(post.id, status=POSTED, attempts=1 + rank % 2, claimed_by=worker,
                                  tweet_ids=tuple(str(10**18 + post.id * 10 + k) for k in range(len(post.parts))),
                                  posted_at=now - timedelta(seconds=rank))
                store.record_event("posted", post.account_id, post.id, detail=f"tweet {10**18 + post.id * 10}",
                                   at=now - timedelta(seconds=rank))
            elif rank < POSTED_N + FAILED_N:
                store.update_post(post.id, status=FAILED, attempts=3, last_error=f"403: duplicate content {rank}",
                                  claimed_by=worker)
                store.record_event("failed", post.account_id, post.id, detail="after 3 attempts: 403")
            else:
                store.update_post(post.id, status=CANCELED)
                store.record_event("canceled", post.account_id, post.id)
            events += 1
        # One thread half sent (its first tweet id kept), claimed by a worker; some retrying.
        sending = next(stored[i] for i in staying if len(stored[i].parts) > 1)
        store.update_post(sending.id, status=SENDING, sending_since=now - timedelta(seconds=3),
                          claimed_by="worker-a", attempts=1, tweet_ids=("1999999999999999999", None, None))
        store.record_event("sending", sending.account_id, sending.id, detail="worker-a", at=now - timedelta(seconds=3))
        events += 1
        for index in staying[1:21]:
            post = stored[index]
            store.update_post(post.id, attempts=2, next_attempt_at=now + timedelta(minutes=index % 50 - 10),
                              last_error="503 from X")
        for n, user_id in enumerate(ids):
            store.record_event("refreshed", user_id, at=now - timedelta(minutes=n))
            events += 1
        store.record_event("worker started", None, None, detail="pid 4242")
        events += 1
    posted = [stored[index] for index in finishing[:READ_N]]
    for age in range(2):  # each post read twice: only the newest reading is copied
        store.add_readings([Reading(post.id, post.account_id, now + timedelta(hours=age, seconds=n), age,
                                    {"like_count": n + age, "impression_count": 100 * n + age})
                            for n, post in enumerate(posted)])
    save_slots(store, ids[0], parse_slots("mon-fri 09:00,13:00; sat 11:00", tz="Europe/Berlin"))
    save_slots(store, ids[1], parse_slots("daily 07:30", tz="America/New_York"))
    save_slots(store, ids[2], parse_slots("weekends 10:00"))
    clear_slots(store, ids[5])
    store.set_meta("heartbeat:worker-a", {"at": "2026-12-01T09:00:00.000000+00:00", "pid": 4242})
    store.set_meta("signin_failures", {"count": 2})
    return Filled(tokens=tokens, events=events, schedules=4, now=now, media=media)


def run_copy(env: dict[str, str], cwd: Path, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWEETBOT, "store", "copy", "--to", target], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def env_for(tmp_path: Path, source: StoreAt) -> dict[str, str]:
    """A real process's variables, its store `source`, its TOKEN_KEY the store's."""
    env = tweetbot_env(tmp_path, NO_SANDBOX, TOKEN_KEY=source.key, **source.env())
    if source.database:
        env.pop("STORE_PATH")
    return env


def where(url: str) -> str:
    from bot.store.postgres import describe

    return describe(url)


def dumped(at: StoreAt) -> StoreContents:
    store = at.open()
    try:
        return store.dump()
    finally:
        store.close()


def assert_same(copy: StoreContents, source: StoreContents) -> None:
    """Every record the same: accounts as kept (tokens sealed the same), queue, history in order,
    schedules, events in order, meta."""
    by_id = sorted(source.accounts, key=lambda d: d["user_id"])
    assert sorted(copy.accounts, key=lambda d: d["user_id"]) == by_id
    assert copy.queue == source.queue
    assert copy.history == source.history
    assert copy.schedules == source.schedules
    assert copy.events == source.events
    assert copy.meta == source.meta
    assert copy.media == source.media  # the same files, each stored at the same moment
    assert sorted(copy.readings, key=lambda r: r.post_id) == sorted(source.readings, key=lambda r: r.post_id)
    assert copy.counts() == source.counts()


def assert_same_media(copy: StoreAt, filled: Filled) -> None:
    """The copy holds every media file `fill` put, byte for byte, and no other."""
    store = copy.open()
    try:
        assert set(store.media_digests()) == set(filled.media)
        for digest, blob in filled.media.items():
            assert store.get_media(digest) == blob
    finally:
        store.close()


def check_source(source: StoreContents, filled: Filled) -> None:
    """The source holds what `fill` put there (so an empty or short dump cannot pass the comparisons)."""
    assert source.counts() == {"accounts": ACCOUNTS, "queued posts": QUEUED_N, "finished posts": FINISHED_N,
                               "schedules": filled.schedules, "events": filled.events,
                               "media files": len(MEDIA_SIZES)}
    assert sum(p.media_count for p in [*source.queue, *source.history]) == POSTS // 50
    statuses = [p.status for p in source.history]
    assert (statuses.count(POSTED), statuses.count(FAILED), statuses.count(CANCELED)) == \
        (POSTED_N, FAILED_N, CANCELED_N)
    ids = [p.id for p in source.history]
    assert ids != sorted(ids), "the history's order should not be the ids' order"
    assert sum(len(p.parts) > 1 for p in [*source.queue, *source.history]) >= 5
    assert [p.status for p in source.queue].count(SENDING) == 1
    assert sum(p.next_attempt_at is not None for p in source.queue) == 20
    assert len(source.readings) == READ_N and {r.age for r in source.readings} == {1}
    assert source.meta == {"heartbeat:worker-a": {"at": "2026-12-01T09:00:00.000000+00:00", "pid": 4242},
                           "signin_failures": {"count": 2}}


def check_working_copy(copy: StoreAt, source: StoreAt, filled: Filled) -> None:
    """The copy answers the worker's and the pages' questions as the source does, its tokens open with
    the same TOKEN_KEY (and with no other), and new posts get ids past every copied one."""
    store, original = copy.open(), source.open()
    try:
        store.verify()
        for user_id, (access, refresh) in filled.tokens.items():
            account = store.get_account(user_id)
            assert account is not None
            assert (account.access_token, account.refresh_token) == (access, refresh)
        found = store.find_account("@COPIER3")
        assert found is not None and found.status == NEEDS_RECONNECT and found.last_error == "invalid_grant"
        assert store.queued_posts(due_by=filled.now) == original.queued_posts(due_by=filled.now)
        assert len(store.queued_posts(due_by=filled.now)) > 0
        assert store.sending_posts() == original.sending_posts() != []
        user = next(iter(filled.tokens))
        assert store.history(limit=25, account_id=user) == original.history(limit=25, account_id=user) != []
        assert store.events(limit=10, kind="failed") == original.events(limit=10, kind="failed") != []
        assert store.get_schedule(user) == original.get_schedule(user) is not None
        last = max(p.id for p in [*original.dump().queue, *original.dump().history])
        (new,) = store.add_posts([Post(id=0, account_id=user, parts=("after the copy",),
                                       due_at=filled.now + timedelta(days=30))])
        assert new.id == last + 1
    finally:
        store.close()
        original.close()
    with pytest.raises(TokenKeyError):
        other = copy.open(token_key=Fernet.generate_key().decode())
        try:
            other.verify()
        finally:
            other.close()


def assert_no_plain_tokens(at: StoreAt, filled: Filled) -> None:
    raw = at.raw()
    assert b"Copier7" in raw  # the raw bytes are really the store's
    for access, refresh in filled.tokens.values():
        assert access.encode() not in raw and refresh.encode() not in raw


def test_copy_file_to_postgres_and_back(tmp_path: Path, database_url: str) -> None:
    source = StoreAt(FILE, str(tmp_path / "source" / "tweetbot.json"))
    store = source.open()
    filled = fill(store)
    store.close()
    before = source.raw()
    contents = dumped(source)
    check_source(contents, filled)

    # file -> PostgreSQL
    to_pg = run_copy(env_for(tmp_path, source), tmp_path, database_url)
    assert to_pg.returncode == 0, to_pg.stderr
    assert to_pg.stdout.strip() == f"Copied {filled.counts_line()} to {where(database_url)}."
    assert "Traceback" not in to_pg.stderr
    in_pg = StoreAt(POSTGRES, database_url, key=source.key)
    assert_same(dumped(in_pg), contents)
    assert_same_media(in_pg, filled)
    assert_no_plain_tokens(in_pg, filled)
    assert source.raw() == before, "the copy changed its source"

    # PostgreSQL -> a new file
    back = StoreAt(FILE, str(tmp_path / "back" / "tweetbot.json"), key=source.key)
    pg_before = in_pg.raw()
    to_file = run_copy(env_for(tmp_path, in_pg), tmp_path, back.location)
    assert to_file.returncode == 0, to_file.stderr
    assert to_file.stdout.strip() == f"Copied {filled.counts_line()} to {back.location}."
    assert_same(dumped(back), contents)
    assert_same_media(back, filled)
    assert_no_plain_tokens(back, filled)
    assert in_pg.raw() == pg_before, "the copy changed its source"

    # Both copies work as stores (this adds a post to each, so it comes last).
    check_working_copy(in_pg, source, filled)
    check_working_copy(back, source, filled)


def test_copy_into_a_database_with_no_schema_yet(tmp_path: Path, unmigrated_database_url: str) -> None:
    """What a new add-on hands out: the copy migrates it first."""
    source = StoreAt(FILE, str(tmp_path / "tweetbot.json"))
    store = source.open()
    filled = fill(store, posts=POSTS)
    store.close()
    result = run_copy(env_for(tmp_path, source), tmp_path, unmigrated_database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Copied {filled.counts_line()} to {where(unmigrated_database_url)}."
    assert_same(dumped(StoreAt(POSTGRES, unmigrated_database_url, key=source.key)), dumped(source))


# --- refusals: a target that is not empty -------------------------------------------------

def small_source(tmp_path: Path) -> StoreAt:
    source = StoreAt(FILE, str(tmp_path / "source" / "tweetbot.json"))
    store = source.open()
    store.save_account(Account(user_id="42", username="source", access_token="a", refresh_token="r"))
    store.add_posts([Post(id=0, account_id="42", parts=("from the source",), due_at=utcnow() + timedelta(days=1))])
    save_slots(store, "42", parse_slots("mon 09:00"))
    store.record_event("connected", "42")
    store.close()
    return source


HOLDINGS = {
    "one event": lambda s: s.record_event("worker started", None),
    "one account": lambda s: s.save_account(Account(user_id="9", username="there", access_token="t")),
    "one queued post": lambda s: s.add_posts([Post(id=0, account_id="9", parts=("there",),
                                                   due_at=utcnow() + timedelta(days=1))]),
    "one finished post": lambda s: s.add_posts([Post(id=0, account_id="9", parts=("there",), due_at=utcnow(),
                                                     status=POSTED, tweet_ids=("5",))]),
    "one schedule": lambda s: save_slots(s, "777", parse_slots("tue 10:00")),
}
@pytest.mark.parametrize("holding", list(HOLDINGS))
def test_refuses_a_database_that_is_not_empty(tmp_path: Path, database_url: str, holding: str) -> None:
    source = small_source(tmp_path)
    target = StoreAt(POSTGRES, database_url, key=source.key)
    store = target.open()
    HOLDINGS[holding](store)
    store.close()
    before, source_before = target.raw(), source.raw()
    result = run_copy(env_for(tmp_path, source), tmp_path, database_url)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "not empty" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Copied" not in result.stdout
    assert target.raw() == before
    assert source.raw() == source_before


@pytest.mark.parametrize("source_kind", [FILE, POSTGRES])
@pytest.mark.parametrize("existing", ["a store", "an empty file"])
def test_refuses_a_file_that_exists(tmp_path: Path, database_url: str, source_kind: str, existing: str) -> None:
    source = small_source(tmp_path)
    if source_kind == POSTGRES:
        in_pg = StoreAt(POSTGRES, database_url, key=source.key)
        assert run_copy(env_for(tmp_path, source), tmp_path, database_url).returncode == 0
        source = in_pg
    target = StoreAt(FILE, str(tmp_path / "target" / "tweetbot.json"), key=source.key)
    if existing == "a store":
        store = target.open()
        store.save_account(Account(user_id="9", username="there", access_token="t"))
        store.close()
    else:
        Path(target.location).parent.mkdir()
        Path(target.location).write_bytes(b"")
    folder = Path(target.location).parent
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    source_before = source.raw()
    result = run_copy(env_for(tmp_path, source), tmp_path, target.location)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "exists" in result.stderr and "Traceback" not in result.stderr
    assert "Copied" not in result.stdout
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert source.raw() == source_before


def test_refuses_to_copy_with_another_token_key(tmp_path: Path, database_url: str) -> None:
    """The source's tokens do not open with the TOKEN_KEY given: exit 2, one line, nothing copied."""
    source = small_source(tmp_path)
    env = {**env_for(tmp_path, source), "TOKEN_KEY": Fernet.generate_key().decode()}
    target = StoreAt(POSTGRES, database_url, key=source.key)
    before = target.raw()
    result = run_copy(env, tmp_path, database_url)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "TOKEN_KEY" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert target.raw() == before


# --- all or nothing -------------------------------------------------------------------------

def test_a_load_that_fails_midway_leaves_the_database_empty(tmp_path: Path, database_url: str) -> None:
    """The target refuses the 600th post (a trigger): the accounts, schedules and 599 posts already
    inserted go too, and a second copy (the trigger gone) then succeeds."""
    source = StoreAt(FILE, str(tmp_path / "source" / "tweetbot.json"))
    store = source.open()
    filled = fill(store)
    store.close()
    contents = dumped(source)
    victim = [*contents.history, *contents.queue][599].id
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION refuse_post() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'refused post %', NEW.id; END $$")
        conn.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON posts FOR EACH ROW WHEN (NEW.id = {victim}) "
                     "EXECUTE FUNCTION refuse_post()")
    target = StoreAt(POSTGRES, database_url, key=source.key)
    before = target.raw()
    result = run_copy(env_for(tmp_path, source), tmp_path, database_url)
    assert result.returncode != 0
    assert f"refused post {victim}" in result.stderr  # it did fail where the trigger is, midway
    assert "Copied" not in result.stdout
    assert target.raw() == before
    assert dumped(target).empty and dumped(target).media == {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER refuse ON posts")
    again = run_copy(env_for(tmp_path, source), tmp_path, database_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"Copied {filled.counts_line()} to {where(database_url)}."
    assert_same(dumped(target), contents)


def copy_a_text_postgres_cannot_keep(tmp_path: Path, database_url: str) -> tuple[subprocess.CompletedProcess[str],
                                                                                    StoreAt]:
    """A file store whose thread has a NUL in its text, which the file store keeps and PostgreSQL's jsonb
    refuses, copied into PostgreSQL after 10 accounts and 1,000 posts. The queue refuses a NUL since issue 12
    (tests/test_queue_messages.py), so the thread goes into the store directly, as one queued before did."""
    source = StoreAt(FILE, str(tmp_path / "source" / "tweetbot.json"))
    store = source.open()
    fill(store)
    copier1 = next(account for account in store.list_accounts() if account.username == "Copier1")
    store.add_posts([Post(id=0, account_id=copier1.user_id, parts=("hello\x00world", "second part"),
                          due_at=utcnow() + timedelta(days=1))])
    store.close()
    env = env_for(tmp_path, source)
    return run_copy(env, tmp_path, database_url), StoreAt(POSTGRES, database_url, key=source.key)


def test_a_text_postgres_cannot_keep_copies_nothing(tmp_path: Path, database_url: str) -> None:
    result, target = copy_a_text_postgres_cannot_keep(tmp_path, database_url)
    assert result.returncode != 0 and "Copied" not in result.stdout
    assert "\\u0000" in result.stderr  # it failed on the post, after the accounts and schedules went in
    assert dumped(target).empty


def test_a_text_postgres_cannot_keep_is_one_line(tmp_path: Path, database_url: str) -> None:
    result, _ = copy_a_text_postgres_cannot_keep(tmp_path, database_url)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def failed_file_copy(tmp_path: Path, database_url: str) -> tuple[StoreAt, StoreAt]:
    """A copy from PostgreSQL into a new file that fails midway: the target's events log cannot be
    created (its path is a link into a folder that does not exist), after the history log was written.
    The link is gone after; (source, target)."""
    source = StoreAt(POSTGRES, database_url)
    store = source.open()
    fill(store)
    store.close()
    target = StoreAt(FILE, str(tmp_path / "target" / "tweetbot.json"), key=source.key)
    folder = Path(target.location).parent
    folder.mkdir()
    link = folder / "tweetbot.events.jsonl"
    link.symlink_to(tmp_path / "nowhere" / "events.jsonl")
    result = run_copy(env_for(tmp_path, source), tmp_path, target.location)
    left = sorted(p.name for p in folder.iterdir())
    link.unlink()
    assert result.returncode == 2 and "Copied" not in result.stdout
    assert re.search(r"No such file or directory: .*tweetbot\.events\.jsonl", result.stderr), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert left == ["tweetbot.events.jsonl"]  # what the failed copy wrote (the history log first) is gone
    return source, target


def test_a_copy_into_a_file_that_fails_midway_copies_nothing(tmp_path: Path, database_url: str) -> None:
    _, target = failed_file_copy(tmp_path, database_url)
    if Path(target.location).exists():
        assert dumped(target).empty


def test_a_copy_into_a_file_that_failed_can_be_run_again(tmp_path: Path, database_url: str) -> None:
    source, target = failed_file_copy(tmp_path, database_url)
    again = run_copy(env_for(tmp_path, source), tmp_path, target.location)
    assert again.returncode == 0, again.stderr
    assert_same(dumped(target), dumped(source))


# --- backup and restore on PostgreSQL: the file store's archive format -------------------------------------


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWEETBOT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_postgres_backup_restores_into_a_fresh_database_and_into_a_file(
        tmp_path: Path, database_url: str, second_database_url: str) -> None:
    source = StoreAt(POSTGRES, database_url)
    store = source.open()
    filled = fill(store)
    store.set_meta("worker_heartbeat", utcnow().isoformat())  # a worker runs on the original
    store.close()
    contents = dumped(source)
    env = env_for(tmp_path, source)
    archive = tmp_path / "backups" / "tweetbot.tar.gz"
    backed = run_cli(env, tmp_path, "backup", str(archive))
    assert backed.returncode == 0, backed.stderr
    assert backed.stdout.startswith(f"Backed up {ACCOUNTS} account(s), {QUEUED_N} queued post(s), "
                                    f"{FINISHED_N} finished post(s)")
    assert archive.stat().st_mode & 0o777 == 0o600

    expected = StoreContents(**{**contents.__dict__, "meta": {k: v for k, v in contents.meta.items()
                                                               if k != "worker_heartbeat"}})
    into_pg = StoreAt(POSTGRES, second_database_url, key=source.key)
    restored = run_cli({**env, "DATABASE_URL": second_database_url}, tmp_path, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert f"into PostgreSQL at {where(second_database_url)}" in restored.stdout
    in_pg = dumped(into_pg)
    assert in_pg.meta.pop("worker_heartbeat") is None  # no worker has run on the copy
    assert in_pg.meta.pop("restored")["archive"] == "tweetbot.tar.gz"  # where it came from, instead
    assert_same(in_pg, expected)
    assert_same_media(into_pg, filled)
    check_working_copy(into_pg, source, filled)

    into_file = StoreAt(FILE, str(tmp_path / "file" / "tweetbot.json"), key=source.key)
    file_env = {k: v for k, v in env.items() if k != "DATABASE_URL"} | {"STORE_PATH": into_file.location}
    to_file = run_cli(file_env, tmp_path, "restore", str(archive))
    assert to_file.returncode == 0, to_file.stderr
    in_file = dumped(into_file)
    assert in_file.meta.pop("worker_heartbeat") is None
    assert in_file.meta.pop("restored")["archive"] == "tweetbot.tar.gz"
    assert_same(in_file, expected)
    assert_same_media(into_file, filled)


def test_a_restore_into_postgres_refuses_a_database_in_use_unless_forced(
        tmp_path: Path, database_url: str, second_database_url: str) -> None:
    source = StoreAt(POSTGRES, database_url)
    store = source.open()
    store.save_account(Account(user_id="42", username="archived", access_token="a", refresh_token="r"))
    store.close()
    archive = tmp_path / "small.tar.gz"
    assert run_cli(env_for(tmp_path, source), tmp_path, "backup", str(archive)).returncode == 0
    target = StoreAt(POSTGRES, second_database_url, key=source.key)
    existing = target.open()
    existing.save_account(Account(user_id="9", username="present", access_token="t", refresh_token="u"))
    existing.close()
    env = env_for(tmp_path, target)
    before = target.raw()
    refused = run_cli(env, tmp_path, "restore", str(archive))
    assert refused.returncode == 2 and "not empty" in refused.stderr and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and target.raw() == before
    beating = target.open()
    beating.set_meta("worker_heartbeat", utcnow().isoformat())
    beating.close()
    busy = run_cli(env, tmp_path, "restore", "--force", str(archive))
    assert busy.returncode == 2 and "a worker is running" in busy.stderr
    beating = target.open()
    beating.set_meta("worker_heartbeat", None)
    beating.close()
    forced = run_cli(env, tmp_path, "restore", "--force", str(archive))
    assert forced.returncode == 0, forced.stderr
    assert [doc["user_id"] for doc in dumped(target).accounts] == ["42"]  # replaced, not merged


@pytest.mark.parametrize("kind", [FILE, POSTGRES])
def test_a_restored_copy_warns_before_its_first_worker_and_not_after(
        tmp_path: Path, sandbox: SandboxControl, second_database_url: str, kind: str) -> None:
    """A backup restored elsewhere holds the original's refresh tokens and queue: `tweetbot check` and the
    first lines of the first worker on the copy say what running both would do; once a worker has run on
    the copy, neither says it again. The original itself never warns."""
    source = small_source(tmp_path)
    original = env_for(tmp_path, source)
    archive = tmp_path / "monday.tar.gz"
    assert run_cli(original, tmp_path, "backup", str(archive)).returncode == 0
    assert WARNED not in run_cli(original, tmp_path, "check").stdout
    copy = (StoreAt(POSTGRES, second_database_url, key=source.key) if kind == POSTGRES
            else StoreAt(FILE, str(tmp_path / "copy" / "tweetbot.json"), key=source.key))
    env = {**env_for(tmp_path, copy), "X_API_BASE": sandbox.url}
    assert run_cli(env, tmp_path, "restore", str(archive)).returncode == 0, "restore"
    checked = run_cli(env, tmp_path, "check")
    assert checked.returncode == 0, checked.stderr
    [warning] = [line for line in checked.stdout.splitlines() if line.startswith(WARNED)]
    assert "from the backup monday.tar.gz, taken " in warning
    assert "stop it for good before starting one here" in warning and "same refresh tokens" in warning

    worker = WorkerProcess(env, tmp_path, name="first-worker")
    try:
        worker.wait_started()
        assert "tweetbot: this store was restored" in worker.log()
        wait_until(lambda: copy_beats(copy), 30, "the worker's first heartbeat")
        assert worker.terminate() == 0, worker.log()
    finally:
        worker.stop_quietly()
    assert WARNED not in run_cli(env, tmp_path, "check").stdout
    second = WorkerProcess(env, tmp_path, name="second-worker")
    try:
        second.wait_started()
        assert second.terminate() == 0
    finally:
        second.stop_quietly()
    assert "this store was restored" not in second.log()


WARNED = "warning: this store was restored"


def copy_beats(at: StoreAt) -> bool:
    store = at.open()
    try:
        return heartbeats.newest_beat(store) is not None
    finally:
        store.close()
