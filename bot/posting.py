"""Posting: every queued post goes out once, on time, or fails with a reason a person can act on.

X has no idempotency key. A timeout after X stored a post looks like a failure,
and retrying it makes a duplicate. So a post is marked `sending` durably before
X is called and its outcome is stored durably after; a post whose call ended
without a clear answer is *uncertain* and is settled by reading the account's
recent posts before anything is retried.

Posts of different accounts go out in parallel (POST_CONCURRENCY threads); one
account's posts go out in order, one at a time. A thread posts part by part,
storing each part's id as soon as it exists, and resumes at the first part
without one.
"""
from __future__ import annotations

import html
import logging
import re
import sys
import threading
import unicodedata
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from filelock import FileLock, Timeout

from bot.limits import APP, LONGEST_SPAN, USER, next_allowed_at, recent_post_times, windows
from bot.models import ACTIVE, FAILED, POSTED, SCHEDULED, SENDING, Account, Post, utcnow
from bot.settings import Settings
from bot.store import Repository
from bot.tokens import TokenKeeper, backoff
from bot.xclient import (XApi, XBadRequest, XClient, XError, XForbidden, XNotFound, XRateLimited,
                         XUnauthorized, XUnavailable, XUsageCapped)

log = logging.getLogger("tweetbot.posting")

CLAIM_BATCH = 20
SETTLE_LOOKBACK = timedelta(minutes=5)
SETTLE_HISTORY = 200  # finished posts whose tweet ids an uncertain one must not adopt  # X's clock and ours may disagree a little
USAGE_CAP_HOLD = timedelta(hours=1)
MIN_HOLD = timedelta(seconds=15)
_URL = re.compile(r"https?://\S+", re.IGNORECASE)


class AccountUnusable(Exception):
    """The account cannot call X now: it needs reconnecting (`retry_at` None), or its token
    could not be refreshed yet (X's token endpoint failing: try again at `retry_at`)."""

    def __init__(self, message: str, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


def comparable(text: str) -> str:
    """Text as X may echo it back: NFC, HTML entities undone, URLs (t.co-wrapped) blanked, spaces folded."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    return " ".join(_URL.sub("<url>", text).split())


def account_can_post(account: Account | None, now: datetime) -> bool:
    """Active, and not held by a rate limit or usage cap."""
    return account is not None and account.status == ACTIVE and (
        account.hold_until is None or account.hold_until <= now)


class Dispatcher:
    """Sends due posts; one task per account at a time, on a small thread pool."""

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
        self._batch = threading.local()  # a sending task's account and the outcomes it writes at its batch's end
        self.sent = SentLog(store, settings.x_tier, clock)
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
        """Start a sending task for each account with due posts and none in flight; how many started."""
        if not self.holds_lease():
            return 0
        self._reap()
        now = self.clock()
        waiting = {p.account_id for p in self.store.queued_posts(due_by=now) if p.account_id not in self.in_flight}
        started = 0
        for account_id in sorted(waiting):  # accounts (and their tokens) are read only when a post is due
            if self._may_send(self.store.get_account(account_id), now):
                self.in_flight[account_id] = self.pool.submit(self._send_account, account_id)
                started += 1
        return started

    def settle_stale(self, older_than: timedelta | None = None) -> int:
        """Settle posts left `sending` (by a crash, or a call that never answered); how many.

        `older_than=None` settles every one (start-up: nothing of ours is in flight yet).
        Only the worker that holds the posting lease settles: another one's batch is
        `sending` for as long as it takes.
        """
        if not self.holds_lease():
            return 0
        now = self.clock()
        settled = 0
        for post in self.store.queued_posts():
            if post.status != SENDING or post.account_id in self.in_flight:
                continue
            if older_than is not None and post.sending_since and now - post.sending_since < older_than:
                continue
            self.settle(post)
            settled += 1
        return settled

    def shutdown(self) -> None:
        """Wait for the posts in flight to be settled one way or the other, then let another worker post."""
        self.pool.shutdown(wait=True)
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def _may_send(self, account: Account | None, now: datetime) -> bool:
        """The account can post and the tier's windows have room for one more post."""
        if not account_can_post(account, now):
            return False
        return self.sent.room_for(account.user_id, now)  # type: ignore[union-attr]

    def _reap(self) -> None:
        for account_id, future in list(self.in_flight.items()):
            if future.done():
                del self.in_flight[account_id]
                if future.exception() is not None:
                    log.error("sending for account %s failed unexpectedly", account_id,
                              exc_info=future.exception())

    # -- one account's posts, in order -----------------------------------------------

    def _send_account(self, account_id: str) -> None:
        """Send the account's due posts in order, one at a time, until none is due or it must wait.

        Posts are claimed in batches (one durable write marks them all `sending`),
        and the `posted` outcomes of a batch are written together at its end. Both
        are safe: a crash leaves the batch `sending`, and settling at start-up finds
        which of them X has. A store write per post would cost more than the call
        to X does on a fast link.
        """
        while not self.should_stop():
            due = self.store.queued_posts(account_id, due_by=self.clock())[:CLAIM_BATCH]
            if not due or not self._may_send(self.store.get_account(account_id), self.clock()):
                return
            self._send_batch(self._claim_all([post.id for post in due]))

    def _send_batch(self, claimed: list[Post]) -> None:
        self._batch.posted = []
        unsent = list(claimed)
        account = self.store.get_account(claimed[0].account_id) if claimed else None
        try:
            while unsent and not self.should_stop() and self._may_send(account, self.clock()):
                self._batch.account = account
                if self._send_parts(unsent.pop(0)).status != POSTED:
                    account = self.store.get_account(account.user_id)  # a hold or a flag may have changed it
        finally:
            self._batch.account = None
            posted, self._batch.posted = self._batch.posted, None
            self._finish_batch(posted, unsent)

    def _claim_all(self, post_ids: list[int]) -> list[Post]:
        """Mark the posts `sending` in one durable write, before X is called."""
        with self.store.transaction():
            return [post for post in map(self._claim, post_ids) if post is not None]

    def _finish_batch(self, posted: list[tuple[Post, tuple[str | None, ...], datetime]], unsent: list[Post]) -> None:
        """Write the batch's posted outcomes, and hand back the posts it never tried, uncounted."""
        if not posted and not unsent:
            return
        with self.store.transaction():
            for post, tweet_ids, at in posted:
                if self._still_ours(post):
                    self._posted(post, tweet_ids, at)
            for post in unsent:
                if self._still_ours(post):
                    self.store.update_post(post.id, status=SCHEDULED, sending_since=None,
                                           attempts=max(post.attempts - 1, 0))

    def _still_ours(self, post: Post) -> bool:
        """The post is still `sending` from our claim (nothing else settled it meanwhile)."""
        current = self.store.get_post(post.id)
        if current is not None and current.status == SENDING and current.sending_since == post.sending_since:
            return True
        log.error("post %s changed under this worker's claim; leaving it as it is now", post.id)
        return False

    def send(self, post: Post) -> Post:
        """Send one post now, exactly as the worker sends every post (a batch of one); it as stored after."""
        self._send_batch(self._claim_all([post.id]))
        return self.store.get_post(post.id) or post

    def _claim(self, post_id: int) -> Post | None:
        """Mark the post `sending` durably before X is called (None: someone else has it)."""
        with self.store.transaction():
            post = self.store.get_post(post_id)
            if post is None or post.status != SCHEDULED:
                return None
            post = self.store.update_post(post_id, status=SENDING, sending_since=self.clock(),
                                          attempts=post.attempts + 1)
            self.store.record_event("sending", post.account_id, post.id, at=self.clock())
        return post

    def _send_parts(self, post: Post) -> Post:
        for index, text in enumerate(post.parts):
            if index < len(post.tweet_ids) and post.tweet_ids[index]:
                continue
            reply_to = post.tweet_ids[index - 1] if index else None
            try:
                tweet_id = self._create(post.account_id, text, reply_to)
            except XUnavailable as exc:
                log.warning("post %s part %d: no clear answer from X (%s); settling", post.id, index + 1, exc)
                return self.settle(post, str(exc))
            except XRateLimited as exc:
                until = max(exc.reset_at, self.clock() + MIN_HOLD)  # X's clock may be behind ours
                return self._hold(post, until, f"rate limited by X until {until.isoformat()}")
            except XUsageCapped as exc:
                return self._hold(post, self.clock() + USAGE_CAP_HOLD, f"X usage cap: {exc}")
            except AccountUnusable as exc:
                return self._hold(post, exc.retry_at, str(exc))
            except (XForbidden, XBadRequest, XUnauthorized, XError) as exc:
                return self._fail(post, index, exc)
            post = self._record_part(post, index, tweet_id)
        return post if post.status == POSTED else self._posted(post)

    def _create(self, account_id: str, text: str, reply_to: str | None) -> str:
        """POST /2/tweets with a fresh token; on a 401, refresh once and retry once."""
        known = getattr(self._batch, "account", None)
        token = self.tokens.fresh_access_token(account_id, known if known and known.user_id == account_id else None)
        if token is None:
            raise self._unusable(account_id)
        try:
            return self._api(account_id, token).create_post(text, reply_to)
        except XUnauthorized:
            fresh = self.tokens.after_unauthorized(account_id, token)
            if fresh is None or fresh == token:
                raise self._unusable(account_id) from None
            return self._api(account_id, fresh).create_post(text, reply_to)

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

    # -- outcomes (each one durable) ------------------------------------------------------

    def _record_part(self, post: Post, index: int, tweet_id: str) -> Post:
        """Store the part's id at once; with the last part the post is posted, in the same write."""
        self.sent.add(post.account_id, self.clock())
        ids = list(post.tweet_ids) + [None] * (len(post.parts) - len(post.tweet_ids))
        ids[index] = tweet_id
        if all(ids) and getattr(self._batch, "posted", None) is not None:
            self._batch.posted.append((post, tuple(ids), self.clock()))  # written with the batch
            return replace(post, status=POSTED, tweet_ids=tuple(ids))
        if all(ids):
            return self._posted(post, tuple(ids))
        return self.store.update_post(post.id, tweet_ids=tuple(ids))

    def _posted(self, post: Post, tweet_ids: tuple[str | None, ...] | None = None,
                at: datetime | None = None) -> Post:
        at = at or self.clock()
        with self.store.transaction():
            done = self.store.update_post(post.id, status=POSTED, posted_at=at, last_error=None,
                                          tweet_ids=tweet_ids or post.tweet_ids)
            self.store.record_event("posted", post.account_id, post.id, detail=",".join(map(str, done.tweet_ids)),
                                    at=at)
        log.info("post %s is out: %s", post.id, ", ".join(map(str, done.tweet_ids)))
        return done

    def _fail(self, post: Post, index: int, exc: XError) -> Post:
        where = f"part {index + 1}: " if len(post.parts) > 1 else ""
        reason = f"{where}X refused it ({exc.status}): {exc}"
        with self.store.transaction():
            failed = self.store.update_post(post.id, status=FAILED, last_error=reason)
            self.store.record_event("failed", post.account_id, post.id, detail=reason, at=self.clock())
            if isinstance(exc, XUnauthorized):
                self.store.update_account(post.account_id, last_error=f"X refused the access token twice: {exc}")
        log.warning("post %s failed: %s", post.id, reason)
        return failed

    def _hold(self, post: Post, until: datetime | None, reason: str) -> Post:
        """Put the post back, uncounted, and hold the account's queue until `until`."""
        with self.store.transaction():
            held = self.store.update_post(post.id, status=SCHEDULED, attempts=max(post.attempts - 1, 0),
                                          last_error=reason)
            if until is not None:
                self.store.update_account(post.account_id, hold_until=until, hold_reason=reason)
            self.store.record_event("held", post.account_id, post.id, detail=reason, at=self.clock())
        log.warning("post %s held: %s", post.id, reason)
        return held

    # -- settling uncertain posts ------------------------------------------------------------

    def settle(self, post: Post, why: str | None = None) -> Post:
        """Find out which parts X has, by reading the account's recent posts; resume or retry later."""
        try:
            settled = self._adopt_found_parts(post)
        except (XForbidden, XNotFound, XBadRequest) as exc:
            return self._unverifiable(post, exc)
        except (XError, AccountUnusable) as exc:
            log.warning("post %s: cannot settle yet (%s); it stays sending", post.id, exc)
            return post
        if all(settled.tweet_ids) and len(settled.tweet_ids) == len(settled.parts):
            return self._posted(settled)
        if settled.tweet_ids != post.tweet_ids:
            return self._resume(settled)
        return self._retry_later(settled, why)

    def _adopt_found_parts(self, post: Post) -> Post:
        token = self.tokens.fresh_access_token(post.account_id)
        if token is None:
            raise AccountUnusable("the account cannot read its posts until it is reconnected")
        since = (post.sending_since or self.clock()) - SETTLE_LOOKBACK
        recent = self._api(post.account_id, token).recent_posts(post.account_id, since=since)
        taken = self._ids_of_other_posts(post)
        known = {tid for tid in post.tweet_ids if tid}
        ids = list(post.tweet_ids) + [None] * (len(post.parts) - len(post.tweet_ids))
        for index, text in enumerate(post.parts):
            if ids[index]:
                continue
            match = next((r["id"] for r in reversed(recent) if r["id"] not in known and r["id"] not in taken
                          and comparable(r["text"]) == comparable(text)), None)
            if match is None:
                break
            ids[index] = match
            known.add(match)
            log.info("post %s part %d was stored by X after all: %s", post.id, index + 1, match)
        if len(known) > len({tid for tid in post.tweet_ids if tid}):
            post = self.store.update_post(post.id, tweet_ids=tuple(ids))
        return post

    def _ids_of_other_posts(self, post: Post) -> set[str]:
        """Tweet ids other posts of the account already own: two posts alike but for their links
        compare equal, and one must never adopt the other's tweet."""
        others = self.store.history(limit=SETTLE_HISTORY, account_id=post.account_id)
        others += self.store.queued_posts(post.account_id)
        taken = {tid for other in others if other.id != post.id for tid in other.tweet_ids if tid}
        for _, tweet_ids, _ in getattr(self._batch, "posted", None) or []:  # outcomes not yet written
            taken.update(tid for tid in tweet_ids if tid)
        return taken

    def _unverifiable(self, post: Post, exc: XError) -> Post:
        """X refuses for good to show the account's posts: the outcome can never be known, so
        the post fails with the reason (sending it again might make a duplicate)."""
        reason = (f"X may or may not have stored it, and refuses to show the account's posts "
                  f"({exc.status}: {exc}); check the account on X before retrying")
        with self.store.transaction():
            failed = self.store.update_post(post.id, status=FAILED, last_error=reason)
            self.store.record_event("failed", post.account_id, post.id, detail=reason, at=self.clock())
        log.warning("post %s failed: %s", post.id, reason)
        return failed

    def _resume(self, post: Post) -> Post:
        """The uncertain part was stored after all: the rest of the thread goes out at once."""
        with self.store.transaction():
            again = self.store.update_post(post.id, status=SCHEDULED, next_attempt_at=None)
            self.store.record_event("resumed", post.account_id, post.id, at=self.clock())
        return again

    def _retry_later(self, post: Post, why: str | None) -> Post:
        if post.attempts >= self.settings.max_attempts:
            reason = f"gave up after {post.attempts} attempts without a clear answer from X ({why or 'unknown'})"
            with self.store.transaction():
                failed = self.store.update_post(post.id, status=FAILED, last_error=reason)
                self.store.record_event("failed", post.account_id, post.id, detail=reason, at=self.clock())
            return failed
        retry_at = self.clock() + backoff(post.attempts, first=timedelta(seconds=self.settings.retry_backoff))
        with self.store.transaction():
            again = self.store.update_post(post.id, status=SCHEDULED, next_attempt_at=retry_at,
                                           last_error=why)
            self.store.record_event("retry", post.account_id, post.id,
                                    detail=f"not found at X; retrying at {retry_at.isoformat()}", at=self.clock())
        log.info("post %s was not stored by X; retrying at %s", post.id, retry_at.isoformat())
        return again


class SentLog:
    """When each account's posts went out, to space posts within X_TIER's windows before X says 429.

    Seeded from the history once per account, then kept in memory, oldest first, as
    parts go out. The windows are only worked out when a list is long enough to fill
    one: this runs before every post.
    """

    def __init__(self, store: Repository, tier: str, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.tier = tier
        self.clock = clock
        self._times: dict[str | None, deque[datetime]] = {}
        self._lock = threading.Lock()
        self._waiting_until: dict[str, datetime] = {}
        self._smallest_limit = {scope: min((w.limit for w in windows(tier, scope)), default=sys.maxsize)
                                for scope in (USER, APP)}

    def _of(self, account_id: str | None, now: datetime) -> deque[datetime]:
        if account_id not in self._times:
            self._times[account_id] = deque(sorted(recent_post_times(self.store, account_id, now)))
        times = self._times[account_id]
        while times and now - times[0] >= LONGEST_SPAN:
            times.popleft()
        return times

    def add(self, account_id: str, when: datetime) -> None:
        with self._lock:
            for key in (account_id, None):
                self._of(key, when).append(when)

    def room_for(self, account_id: str, now: datetime) -> bool:
        """Whether one more post fits the per-user and per-app windows now."""
        with self._lock:
            if self._waiting_until.get(account_id, now) > now:
                return False
            mine, everyone = self._of(account_id, now), self._of(None, now)
            if len(mine) < self._smallest_limit[USER] and len(everyone) < self._smallest_limit[APP]:
                return True
            allowed = max((at for at in (next_allowed_at(list(mine), self.tier, now, scope=USER),
                                         next_allowed_at(list(everyone), self.tier, now, scope=APP))
                           if at is not None), default=None)
            if allowed is None:
                return True
            self._waiting_until[account_id] = allowed
        log.info("account %s: %s tier's window is full; next post at %s", account_id, self.tier,
                 allowed.isoformat())
        return False
