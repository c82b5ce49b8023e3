"""Posting against the sandbox's real answers: every row of the failure table, threads, settling.

These drive the worker's own dispatcher in this process, with the worker's
injectable clock kept in step with the sandbox clock, so a test can move time
past a rate-limit reset. Crash and signal tests with real worker processes are
in test_worker_posting.py.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from bot import accounts, read_spend
from bot.models import FAILED, POSTED, SCHEDULED, SENDING, Post, utcnow
from bot.posting.dispatcher import CLAIM_WINDOW
from bot.posting.settling import settle_after
from bot.queue import NEXT_SLOT, queue_post
from bot.schedules import parse_slots, save_slots
from bot.settings import load_settings
from bot.store import Repository
from bot.worker import Worker
from bot.xclient import TokenSet, XClient

from conftest import tweetbot_env
from sandbox_helpers import SandboxControl
from worker_support import connect_accounts, open_test_store

TWEETS = "POST /2/tweets"


class SandboxClock:
    """The worker's clock, in step with the sandbox's (real time plus the sandbox's offset)."""

    def __init__(self, sandbox: SandboxControl) -> None:
        self.sandbox = sandbox
        self.offset = timedelta(seconds=sandbox.now() - datetime.now(timezone.utc).timestamp())

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, seconds: float) -> None:
        self.sandbox.advance(seconds)
        self.offset += timedelta(seconds=seconds)


class Rig:
    """A store with connected sandbox accounts and the worker's dispatcher, in this process."""

    def __init__(self, tmp_path: Path, sandbox: SandboxControl, accounts: int = 1,
                 clock: Callable[[], datetime] | None = None, scopes: list[str] | None = None, **env: str) -> None:
        self.env = tweetbot_env(tmp_path, sandbox.url, RETRY_BACKOFF="0.2", **env)
        self.sandbox = sandbox
        self.store: Repository = open_test_store(self.env)
        self.accounts = connect_accounts(self.store, sandbox, accounts, prefix="poster", scopes=scopes)
        self.clock = clock or SandboxClock(sandbox)
        settings = load_settings(dotenv_path=None, environ=self.env)
        self.worker = Worker(settings, self.store, XClient(settings), clock=self.clock)
        self.dispatcher = self.worker.dispatcher

    def queue(self, *parts: str, account: int = 0) -> Post:
        """A post due now, put straight into the store (as `bot.queue` does after its checks)."""
        post = Post(id=0, account_id=self.accounts[account].user_id, parts=parts, due_at=self.clock())
        return self.store.add_posts([post])[0]

    def send(self, post: Post) -> Post:
        return self.dispatcher.send(self.store.get_post(post.id))  # type: ignore[arg-type]

    def dispatch(self) -> int:
        """Run the dispatch job until it starts nothing more; how many sending tasks it started."""
        started = 0
        while (batch := self.dispatcher.dispatch_due()):
            started += batch
            for task in self.dispatcher.pending():
                task.result()
        return started

    def at_x(self, account: int = 0) -> list[dict]:
        return self.sandbox.posts(self.accounts[account].username)


@pytest.fixture
def rig(tmp_path: Path, sandbox: SandboxControl):
    made = Rig(tmp_path, sandbox)
    yield made
    made.dispatcher.shutdown()


def test_201_posts_and_keeps_the_tweet_id(rig: Rig) -> None:
    post = rig.send(rig.queue("hello from the failure table"))
    assert post.status == POSTED and post.posted_at is not None
    (stored,) = rig.at_x()
    assert post.tweet_ids == (stored["id"],)
    assert rig.store.get_post(post.id).status == POSTED  # durable, in the history
    assert [e.kind for e in rig.store.events(limit=2)] == ["posted", "sending"]


def test_401_refreshes_once_and_retries_once(rig: Rig) -> None:
    rig.clock.offset -= timedelta(hours=3)  # our clock lags: we believe the token is fresh
    rig.sandbox.advance(7300)               # X's clock: the access token expired
    rig.clock.offset += timedelta(seconds=7300)
    post = rig.send(rig.queue("after a 401"))
    assert post.status == POSTED
    assert len(rig.sandbox.token_events("refreshed")) == 1
    assert len(rig.at_x()) == 1


def test_a_second_401_fails_the_post_and_flags_the_account(rig: Rig) -> None:
    rig.sandbox.fault(TWEETS, "status", status=401, times=2)
    post = rig.send(rig.queue("refused twice"))
    assert post.status == FAILED and "401" in post.last_error
    assert "twice" in rig.store.get_account(rig.accounts[0].user_id).last_error
    assert len(rig.sandbox.token_events("refreshed")) == 1  # refreshed once, not in a loop
    assert rig.at_x() == []


def test_a_duplicate_fails_for_good_with_x_words(rig: Rig) -> None:
    assert rig.send(rig.queue("same words twice")).status == POSTED
    post = rig.send(rig.queue("same words twice"))
    assert post.status == FAILED
    assert "You are not allowed to create a Tweet with duplicate content." in post.last_error
    assert len(rig.at_x()) == 1
    assert rig.dispatcher.dispatch_due() == 0  # never retried


def test_too_long_at_x_fails_with_x_detail(rig: Rig) -> None:
    post = rig.send(rig.queue("x" * 281))  # (bot.queue refuses this; here it reached X anyway)
    assert post.status == FAILED and "Your Tweet text is too long" in post.last_error


def test_a_missing_scope_403_fails_with_the_detail(rig: Rig, sandbox: SandboxControl) -> None:
    reader = sandbox.create_user("reader_only")
    # A grant without tweet.write (one made under an older X_SCOPES).
    answer = sandbox.grant(reader["id"], scopes=["tweet.read", "users.read", "offline.access"])
    accounts.connect(rig.store, TokenSet.from_response(answer, utcnow()),
                     {"id": reader["id"], "username": reader["username"]})
    post = rig.store.add_posts([Post(id=0, account_id=reader["id"], parts=("no scope",), due_at=rig.clock())])[0]
    failed = rig.send(post)
    assert failed.status == FAILED and "(403): Forbidden" in failed.last_error


def test_429_holds_the_account_until_the_reset_and_counts_no_attempt(rig: Rig) -> None:
    rig.sandbox.limit(TWEETS, {"scope": "user", "window": 900, "limit": 1})
    assert rig.send(rig.queue("first in the window")).status == POSTED
    held = rig.send(rig.queue("second in the window"))
    second_other = rig.queue("third, same account")
    account = rig.store.get_account(rig.accounts[0].user_id)
    assert held.status == SCHEDULED and held.attempts == 0
    assert account.hold_until is not None and account.hold_until > rig.clock()
    assert "rate limited" in account.hold_reason
    assert rig.dispatcher.dispatch_due() == 0  # the whole account waits

    rig.clock.advance((account.hold_until - rig.clock()).total_seconds() + 1)
    rig.sandbox.limit(TWEETS, {"scope": "user", "window": 900, "limit": 5})
    assert rig.send(held).status == POSTED
    assert rig.send(second_other).status == POSTED
    assert len(rig.at_x()) == 3


@pytest.mark.parametrize("switch, words", [("usage_capped", "Usage cap exceeded"), ("credits_depleted", "")])
def test_a_usage_cap_holds_the_account_and_says_why(rig: Rig, switch: str, words: str) -> None:
    rig.sandbox.configure(**{switch: True})
    held = rig.send(rig.queue("no credits left"))
    account = rig.store.get_account(rig.accounts[0].user_id)
    assert held.status == SCHEDULED and held.attempts == 0
    assert account.hold_reason.startswith("X usage cap") and words in account.hold_reason
    assert account.hold_until > rig.clock()
    assert rig.at_x() == []


def test_a_5xx_that_stored_nothing_is_retried(rig: Rig) -> None:
    rig.sandbox.fault(TWEETS, "status", status=503, times=1)
    uncertain = rig.send(rig.queue("lost before X did anything"))
    assert uncertain.status == SCHEDULED and uncertain.attempts == 1 and uncertain.next_attempt_at
    rig.clock.advance(1)
    assert rig.send(uncertain).status == POSTED
    assert len(rig.at_x()) == 1


def test_a_call_without_an_answer_stays_uncertain_until_it_cannot_land_then_is_retried(rig: Rig) -> None:
    """No answer at all: X may still be storing it. Not found at once, it is not sent again until its
    request can no longer land; then the timeline is read once more, and it goes out once."""
    rig.sandbox.fault(TWEETS, "drop", times=1)
    uncertain = rig.send(rig.queue("no answer, nothing stored"))
    assert uncertain.status == SENDING and uncertain.attempts == 1
    assert rig.dispatch() == 0 and rig.at_x() == []  # its request may still land: nothing goes out
    rig.clock.advance((CLAIM_WINDOW + settle_after(rig.worker.settings)).total_seconds() + 1)
    rig.dispatch()
    assert rig.store.get_post(uncertain.id).status == POSTED  # type: ignore[union-attr]
    assert len(rig.at_x()) == 1
    reads = rig.sandbox.state("request_counts")["request_counts"]["GET /2/users/:id/tweets"]
    assert reads == 2  # at once, and once more when it could no longer land


@pytest.mark.parametrize("mode", ["store_then_status", "store_then_drop"])
def test_a_post_x_stored_before_the_answer_was_lost_is_settled_not_repeated(rig: Rig, mode: str) -> None:
    rig.sandbox.fault(TWEETS, mode, status=503, times=1)
    post = rig.send(rig.queue(f"X kept this one & its link https://example.com/{mode}"))
    (stored,) = rig.at_x()
    assert post.status == POSTED and post.tweet_ids == (stored["id"],)
    assert [e.kind for e in rig.store.events(limit=2)] == ["posted", "sending"]


@pytest.mark.parametrize("owner", [False, True])
def test_settling_reads_cost_what_x_bills_and_are_kept_for_the_month(tmp_path: Path, sandbox: SandboxControl,
                                                                      owner: bool) -> None:
    """A timeline read that settles an uncertain post is billed under pay-per-use: the store keeps the
    month's spend on such reads, the same figure as X's charge counter (the sandbox's) to the cent: each
    post returned at $0.005, or $0.001 when the account owns the app (X_APP_OWNER), and a post returned
    again the same UTC day not billed again."""
    rig = Rig(tmp_path, sandbox, **({"X_APP_OWNER": "@poster_1"} if owner else {}))
    if owner:
        sandbox.configure(app_owner=rig.accounts[0].user_id)
    try:
        for n in range(3):
            assert rig.send(rig.queue(f"an earlier post {n}")).status == POSTED  # the reads return these too
        sandbox.fault(TWEETS, "store_then_status", status=503, times=2)
        for n in range(2):
            assert rig.send(rig.queue(f"kept by X, its answer lost {n}")).status == POSTED  # settled by a read
    finally:
        rig.dispatcher.shutdown()
    billed = sandbox.charges()
    assert billed["posts_billed"] == 5 and billed["by_endpoint"] == {"GET /2/users/:id/tweets": billed["total_usd"]}
    assert read_spend.month_spend(rig.store, rig.clock()) == {read_spend.SETTLE: Decimal(str(billed["total_usd"]))}
    assert billed["total_usd"] == (0.005 if owner else 0.025)


def test_uncertain_posts_fail_after_max_attempts(tmp_path: Path, sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox, MAX_ATTEMPTS="3")
    sandbox.fault(TWEETS, "status", status=503)
    post = rig.queue("X is down")
    for _ in range(3):
        post = rig.send(post)
        rig.clock.advance(5)
    assert post.status == FAILED and "gave up after 3 attempts" in post.last_error
    assert rig.at_x() == []
    rig.dispatcher.shutdown()


def test_a_thread_replies_part_to_part(rig: Rig) -> None:
    post = rig.send(rig.queue("one", "two", "three"))
    at_x = {p["id"]: p for p in rig.at_x()}
    assert post.status == POSTED and len(post.tweet_ids) == 3
    assert [at_x[i]["reply_to"] for i in post.tweet_ids] == [None, post.tweet_ids[0], post.tweet_ids[1]]


def test_a_refused_thread_part_fails_the_thread_and_keeps_what_was_posted(rig: Rig) -> None:
    rig.sandbox.fault(TWEETS, "status", status=403, after=2, times=1)
    post = rig.send(rig.queue("first", "second", "third"))
    assert post.status == FAILED and post.last_error.startswith("part 3: ")
    assert post.tweet_ids[:2] == tuple(p["id"] for p in rig.at_x()) and post.tweet_ids[2:] in ((), (None,))


def test_an_uncertain_thread_part_is_found_and_the_thread_goes_on(rig: Rig) -> None:
    rig.sandbox.fault(TWEETS, "store_then_drop", after=1, times=1)
    post = rig.send(rig.queue("alpha", "beta", "gamma"))
    if post.status == SCHEDULED:  # the found part resumes the thread at once
        post = rig.send(post)
    at_x = rig.at_x()
    assert post.status == POSTED and [p["text"] for p in at_x] == ["alpha", "beta", "gamma"]
    assert [p["reply_to"] for p in at_x] == [None, post.tweet_ids[0], post.tweet_ids[1]]


def test_the_tier_spaces_an_accounts_posts_before_x_says_429(tmp_path: Path, sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox, X_TIER="free")
    sandbox.configure(rate_limits=False)  # prove the spacing is ours, not X's 429
    posts = [rig.queue(f"free tier post {n}") for n in range(18)]
    rig.dispatch()
    assert len(rig.at_x()) == 17  # free: 17 per 24 hours per user
    assert rig.store.get_post(posts[-1].id).status == SCHEDULED
    rig.clock.advance(24 * 3600 + 1)
    assert rig.dispatch() == 1
    assert rig.store.get_post(posts[-1].id).status == POSTED
    rig.dispatcher.shutdown()


class ManualClock:
    """The worker's clock, set by the test (the sandbox's only moves forward, and not into March)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.mark.parametrize("queued_on, due_utc", [
    (datetime(2026, 3, 27, 12, 0, tzinfo=timezone.utc), datetime(2026, 3, 28, 8, 0, tzinfo=timezone.utc)),
    (datetime(2026, 3, 30, 12, 0, tzinfo=timezone.utc), datetime(2026, 3, 31, 7, 0, tzinfo=timezone.utc)),
])
def test_a_0900_berlin_slot_posts_at_0800_utc_before_the_dst_change_and_0700_after(
        tmp_path: Path, sandbox: SandboxControl, queued_on: datetime, due_utc: datetime) -> None:
    clock = ManualClock(queued_on)
    rig = Rig(tmp_path, sandbox, clock=clock)
    account = rig.accounts[0]
    save_slots(rig.store, account.user_id, parse_slots("daily 09:00", tz="Europe/Berlin"))
    post = queue_post(rig.store, account.handle, [f"slot post queued {queued_on:%m-%d}"], NEXT_SLOT,
                      now=clock())
    assert post.due_at == due_utc
    clock.moment = due_utc - timedelta(seconds=1)
    assert rig.dispatch() == 0 and rig.at_x() == []
    clock.moment = due_utc
    assert rig.dispatch() == 1
    sent = rig.store.get_post(post.id)
    assert sent.status == POSTED and sent.posted_at == due_utc
    assert [p["text"] for p in rig.at_x()] == [post.text]
    rig.dispatcher.shutdown()


def test_settling_never_adopts_a_tweet_another_post_owns(rig: Rig) -> None:
    first = rig.send(rig.queue("New article: https://a.example/one"))
    rig.sandbox.fault(TWEETS, "status", status=503, times=1)  # X stores nothing, answers 503
    second = rig.send(rig.queue("New article: https://b.example/two"))  # alike but for its link
    assert second.status == SCHEDULED and second.tweet_ids in ((), (None,))
    rig.clock.advance(1)
    second = rig.send(second)
    assert second.status == POSTED and second.tweet_ids != first.tweet_ids
    assert len(rig.at_x()) == 2


def test_a_401_while_x_cannot_refresh_holds_the_post_instead_of_failing_it(rig: Rig) -> None:
    rig.clock.offset -= timedelta(hours=3)  # we believe the token is fresh; at X it expired
    rig.sandbox.advance(7300)
    rig.clock.offset += timedelta(seconds=7300)
    rig.sandbox.fault("POST /2/oauth2/token", "status", status=503)
    held = rig.send(rig.queue("waits for the token endpoint"))
    account = rig.store.get_account(rig.accounts[0].user_id)
    assert held.status == SCHEDULED and held.attempts == 0
    assert account.status == "active" and account.hold_until > rig.clock() and account.refresh_failures == 1
    rig.sandbox.clear_faults()
    rig.clock.advance((account.hold_until - rig.clock()).total_seconds() + 1)
    assert rig.send(held).status == POSTED
    assert rig.sandbox.reuse_count() == 0


def test_an_uncertain_post_x_will_not_let_us_check_fails_with_the_reason(rig: Rig) -> None:
    rig.sandbox.fault(TWEETS, "status", status=503, times=1)
    rig.sandbox.fault("GET /2/users/:id/tweets", "status", status=403)
    post = rig.send(rig.queue("cannot be checked"))
    assert post.status == FAILED and "refuses to show the account's posts (403" in post.last_error
