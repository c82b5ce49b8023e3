"""Posting: every queued post goes out once, on time, or fails with a reason a person can act on.

X has no idempotency key. A timeout after X stored a post looks like a failure,
and retrying it makes a duplicate. So every request to X for a post is preceded by
one durable write that marks the post `sending` at that moment and counts the
attempt; the outcome is stored durably after. A post whose call ended without a
clear answer is *uncertain* and is settled (`bot.settling`) by reading the
account's recent posts before anything is retried, and a post another process
left `sending` waits until its last request can no longer land.

Posts of different accounts go out in parallel (POST_CONCURRENCY threads); one
account's posts go out in order, one at a time. A thread posts part by part; each
part's tweet id is stored before the next part's request leaves.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from filelock import FileLock, Timeout

from bot.crypto import TokenKeyError
from bot.limits import SentLog
from bot.models import ACTIVE, POSTED, SCHEDULED, SENDING, Account, Post, utcnow
from bot.outcomes import mark_failed, mark_posted
from bot.settings import Settings
from bot.settling import AccountUnusable, CannotSettleYet, Settler, settle_after
from bot.store import Repository, StoreError
from bot.tokens import TokenKeeper, backoff
from bot.xclient import (XApi, XBadRequest, XClient, XError, XForbidden, XRateLimited, XUnauthorized,
                         XUnavailable, XUsageCapped, says_duplicate)

log = logging.getLogger("tweetbot.posting")

DUE_BATCH = 20  # due posts read per look at an account's queue
USAGE_CAP_HOLD = timedelta(hours=1)
MIN_HOLD = timedelta(seconds=15)
SETTLE_RETRY_FIRST = timedelta(seconds=15)


def account_can_post(account: Account | None, now: datetime) -> bool:
    """Active, and not held by a rate limit or usage cap."""
    return account is not None and account.status == ACTIVE and (
        account.hold_until is None or account.hold_until <= now)


@dataclass
class Turn:
    """One account's turn at posting: its due posts, in order, one at a time.

    It carries the account as read at the start of the turn (re-read after anything
    that may change it) and the `posted` outcome not yet written: that one is written
    with the next request's claim, or at the end of the turn, so a post costs one
    store write, not two. A crash loses at most that outcome, and settling finds it at X.
    """

    account_id: str
    account: Account | None
    unwritten: tuple[Post, datetime] | None = None
    post: Post | None = None  # the post being sent, as last claimed


class Dispatcher:
    """Sends due posts; one turn per account at a time, on a small thread pool."""

    def __init__(self, settings: Settings, store: Repository, x: XClient, tokens: TokenKeeper,
                 clock: Callable[[], datetime] = utcnow, should_stop: Callable[[], bool] = lambda: False) -> None:
        self.settings = settings
        self.store = store
        self.x = x
        self.tokens = tokens
        self.clock = clock
        self.should_stop = should_stop
        self.pool = ThreadPoolExecutor(max_workers=settings.post_concurrency, thread_name_prefix="post")
        self.in_flight: dict[str, Future[None]] = {}
        self._apis: dict[str, tuple[str, XApi]] = {}
        self.sent = SentLog(store, settings.x_tier, clock)
        self.settler = Settler(settings, store, tokens, self._api, clock)
        self.settle_after = settle_after(settings)
        self._settle_failures: dict[int, tuple[int, datetime]] = {}  # post id: (failures, next try)
        self._lease: FileLock | None = None
        self._told_no_lease = False

    # -- jobs ---------------------------------------------------------------------------

    def holds_lease(self) -> bool:
        """Whether this process is the one that posts (only one may: see `Repository.lease`)."""
        if self._lease is None:
            lease = self.store.lease("posting")
            try:
                lease.acquire(timeout=0)
            except Timeout:
                if not self._told_no_lease:
                    log.info("another worker is posting; this one keeps tokens fresh and waits its turn")
                    self._told_no_lease = True
                return False
            self._lease = lease
            log.info("this worker is the one that posts")
        return True

    def dispatch_due(self) -> int:
        """Start a turn for each account with due posts, or posts left `sending` that can be
        settled now, and none in flight; how many started."""
        if not self.holds_lease():
            return 0
        self._reap()
        now = self.clock()
        left = self._left_sending(now)
        waiting = {p.account_id for p in self.store.queued_posts(due_by=now)}
        started = 0
        for account_id in sorted(waiting | {a for a, ready in left.items() if ready}):
            if account_id in self.in_flight or left.get(account_id) is False:
                continue  # a turn is running, or a request of another process may still land
            account = self.store.get_account(account_id)  # read only when the account has work
            if account_id in left or self._may_send(account, now):
                self.in_flight[account_id] = self.pool.submit(self._take_turn, account_id, account)
                started += 1
        return started

    def _left_sending(self, now: datetime) -> dict[str, bool]:
        """Accounts with posts `sending` outside any turn of ours: whether all of them can be settled now."""
        ready: dict[str, bool] = {}
        for post in self.store.sending_posts():
            if post.account_id in self.in_flight:
                continue
            ready[post.account_id] = ready.get(post.account_id, True) and self._settleable(post, now)
        return ready

    def _settleable(self, post: Post, now: datetime) -> bool:
        """Its last request can no longer land at X, and no failed look at X asks us to wait."""
        landed_by = (post.sending_since or now) + self.settle_after
        failures = self._settle_failures.get(post.id)
        return now >= landed_by and (failures is None or now >= failures[1])

    def shutdown(self) -> None:
        """Wait for the calls in flight to end (turns stop between calls), then let another worker post."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def send(self, post: Post) -> Post:
        """Send one post now, exactly as a turn sends every post; it as stored after."""
        turn = Turn(post.account_id, self.store.get_account(post.account_id))
        try:
            self._send_post(turn, post)
        finally:
            self._write_unwritten(turn)
        return self.store.get_post(post.id) or post

    def _may_send(self, account: Account | None, now: datetime) -> bool:
        """The account can post and the tier's windows have room for one more post."""
        if account is None or not account_can_post(account, now):
            return False
        return self.sent.room_for(account.user_id, now)

    def _reap(self) -> None:
        """Forget finished turns; a damaged store ends the worker (it must not carry on blind)."""
        for account_id, future in list(self.in_flight.items()):
            if future.done():
                del self.in_flight[account_id]
                error = future.exception()
                if isinstance(error, (StoreError, TokenKeyError)):
                    raise error
                if error is not None:
                    log.error("the turn of account %s failed unexpectedly", account_id, exc_info=error)

    # -- one account's turn ---------------------------------------------------------------

    def _take_turn(self, account_id: str, account: Account | None) -> None:
        """Settle what the account has left `sending`, then send its due posts in order,
        until none is due, it must wait, or the worker stops."""
        turn = Turn(account_id, account)
        try:
            if self._settle_left(turn):
                self._send_due(turn)
        finally:
            self._write_unwritten(turn)

    def _settle_left(self, turn: Turn) -> bool:
        """Settle the account's posts left `sending` (oldest first); whether none is left."""
        for post in self.store.sending_posts(turn.account_id):
            if self.should_stop():
                return False
            try:
                settled = self.settler.settle(post, "the request's sender stopped before X answered")
            except CannotSettleYet:
                self._settle_failed(post)
                return False
            self._settle_failures.pop(post.id, None)
            if settled.status == SENDING:
                return False
            log.info("settled post %s, left sending by a run that ended: %s", post.id, settled.status)
        return True

    def _settle_failed(self, post: Post) -> None:
        failures = self._settle_failures.get(post.id, (0, self.clock()))[0] + 1
        self._settle_failures[post.id] = (failures, self.clock() + backoff(failures, first=SETTLE_RETRY_FIRST))

    def _send_due(self, turn: Turn) -> None:
        while not self.should_stop():
            due = self.store.queued_posts(turn.account_id, due_by=self.clock())[:DUE_BATCH]
            if not due:
                return
            for post in due:
                if self.should_stop() or not self._may_send(turn.account, self.clock()):
                    return
                outcome = self._send_post(turn, post)
                if outcome is not None and outcome.status != POSTED:
                    turn.account = self.store.get_account(turn.account_id)  # a hold or a flag may have changed it
                    if outcome.status == SENDING:
                        return  # uncertain and not settled: the account's later posts wait behind it

    def _send_post(self, turn: Turn, post: Post) -> Post | None:
        """Send the post's parts X lacks, each request claimed durably first; the outcome
        (None: the post changed under us, say canceled, and was left alone)."""
        for index, text in enumerate(post.parts):
            if index < len(post.tweet_ids) and post.tweet_ids[index]:
                continue
            turn.post = post
            try:
                tweet_id = self._create(turn, index, text)
            except _Changed:
                return None
            except (XError, AccountUnusable) as exc:
                return self._outcome_of(turn, turn.post, index, exc)
            post = self._record_part(turn, turn.post, index, tweet_id)
        return post

    def _outcome_of(self, turn: Turn, post: Post, index: int, exc: XError | AccountUnusable) -> Post:
        """What a request that brought no tweet id means for the post: the failure table."""
        if isinstance(exc, XUnavailable):
            log.warning("post %s part %d: no clear answer from X (%s); settling", post.id, index + 1, exc)
            return self._settle_now(turn, post, str(exc))
        if isinstance(exc, XRateLimited):
            until = max(exc.reset_at, self.clock() + MIN_HOLD)  # X's clock may be behind ours
            return self._hold(post, until, f"rate limited by X until {until.isoformat()}")
        if isinstance(exc, XUsageCapped):
            return self._hold(post, self.clock() + USAGE_CAP_HOLD, f"X usage cap: {exc}")
        if isinstance(exc, AccountUnusable):
            return self._hold(post, exc.retry_at, str(exc))
        if isinstance(exc, XForbidden) and says_duplicate(str(exc)) and post.attempts > 1:
            # A resend of an uncertain post: the earlier request went out after all.
            return self._settle_now(turn, post, str(exc), duplicate=True)
        return self._fail(post, index, exc)  # 400, 403, a second 401: X said no clearly

    def _create(self, turn: Turn, index: int, text: str) -> str:
        """POST /2/tweets for `turn.post` with a fresh token, claimed first; on a 401, refresh
        once and retry once (claimed again: it is another request)."""
        token = self._token(turn)
        post = self._claim(turn)
        reply_to = post.tweet_ids[index - 1] if index else None
        try:
            return self._api(post.account_id, token).create_post(text, reply_to)
        except XUnauthorized:
            fresh = self.tokens.after_unauthorized(post.account_id, token)
            if fresh is None or fresh == token:
                raise self._unusable(post.account_id) from None
            post = self._claim(turn)
            return self._api(post.account_id, fresh).create_post(text, reply_to)

    def _token(self, turn: Turn) -> str:
        known = turn.account if turn.account and turn.account.user_id == turn.account_id else None
        token = self.tokens.fresh_access_token(turn.account_id, known)
        if token is None:
            raise self._unusable(turn.account_id)
        return token

    def _unusable(self, account_id: str) -> AccountUnusable:
        """Why the account cannot call X now, and when to try again (None: when it is reconnected)."""
        account = self.store.get_account(account_id)
        if account is not None and account.status == ACTIVE:
            retry_at = max(account.next_refresh_at or self.clock(), self.clock() + MIN_HOLD)
            return AccountUnusable(f"the access token expired and refreshing it failed ({account.last_error}); "
                                   f"trying again at {retry_at.isoformat()}", retry_at)
        return AccountUnusable("the account cannot post until it is reconnected")

    def _api(self, account_id: str, token: str) -> XApi:
        """The account's API client, kept while its token lasts (one keep-alive connection per account)."""
        cached = self._apis.get(account_id)
        if cached is None or cached[0] != token:
            cached = self._apis[account_id] = (token, self.x.api(token))
        return cached[1]

    # -- writes (each one durable) ----------------------------------------------------------

    def _claim(self, turn: Turn) -> Post:
        """Right before a request leaves: mark the post `sending` now and count the attempt,
        with the parts X already has and the turn's unwritten outcome, in one durable write.

        `sending_since` is then the time the request left, which is what a process
        settling the post after a crash needs. Raises `_Changed` if the post is no
        longer ours to send (canceled, or settled by someone else).
        """
        post = turn.post
        assert post is not None, "a claim is for the turn's post"
        with self.store.transaction():
            self._write_unwritten(turn)
            current = self.store.get_post(post.id)
            ours = current is not None and current.status == post.status and (
                post.status == SCHEDULED or current.sending_since == post.sending_since)
            if ours and current is not None:
                claimed = self.store.update_post(post.id, status=SENDING, sending_since=self.clock(),
                                                 attempts=current.attempts + 1, tweet_ids=post.tweet_ids)
                self.store.record_event("sending", post.account_id, post.id, at=self.clock(),
                                        detail=f"attempt {claimed.attempts}")
        if not ours:
            raise _Changed(post.id)
        turn.post = claimed
        return claimed

    def _record_part(self, turn: Turn, post: Post, index: int, tweet_id: str) -> Post:
        """Keep the part's id; it is written with the next request's claim, or as the outcome."""
        self.sent.add(post.account_id, self.clock())
        ids = list(post.tweet_ids) + [None] * (len(post.parts) - len(post.tweet_ids))
        ids[index] = tweet_id
        post = replace(post, tweet_ids=tuple(ids))
        if all(ids):
            turn.unwritten = (post, self.clock())
            return replace(post, status=POSTED)
        return post

    def _write_unwritten(self, turn: Turn) -> None:
        """Write the turn's `posted` outcome, if the post is still ours (nothing settled it meanwhile)."""
        if turn.unwritten is None:
            return
        post, at = turn.unwritten
        with self.store.transaction():
            current = self.store.get_post(post.id)
            if current is not None and current.status == SENDING and current.sending_since == post.sending_since:
                mark_posted(self.store, post, at)
            else:
                log.error("post %s changed under this worker's claim; leaving it as it is now", post.id)
        turn.unwritten = None

    def _settle_now(self, turn: Turn, post: Post, why: str, duplicate: bool = False) -> Post:
        """Our own request ended without a clear answer: settle it by X's timeline at once."""
        self._write_unwritten(turn)
        try:
            return self.settler.settle(post, why, duplicate=duplicate)
        except CannotSettleYet:
            self._settle_failed(post)
            return post

    def _fail(self, post: Post, index: int, exc: XError) -> Post:
        where = f"part {index + 1}: " if len(post.parts) > 1 else ""
        reason = f"{where}X refused it ({exc.status}): {exc}"
        with self.store.transaction():
            failed = mark_failed(self.store, post, reason, self.clock())
            if isinstance(exc, XUnauthorized):
                self.store.update_account(post.account_id, last_error=f"X refused the access token twice: {exc}")
        return failed

    def _hold(self, post: Post, until: datetime | None, reason: str) -> Post:
        """Put the post back, the attempt uncounted (X did nothing), and hold the account's queue until `until`."""
        with self.store.transaction():
            attempts = max(post.attempts - 1, 0) if post.status == SENDING else post.attempts
            held = self.store.update_post(post.id, status=SCHEDULED, attempts=attempts, last_error=reason,
                                          tweet_ids=post.tweet_ids)
            if until is not None:
                self.store.update_account(post.account_id, hold_until=until, hold_reason=reason)
            self.store.record_event("held", post.account_id, post.id, detail=reason, at=self.clock())
        log.warning("post %s held: %s", post.id, reason)
        return held


class _Changed(Exception):
    """The post is no longer ours to send."""
