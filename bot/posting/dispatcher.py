"""Posting: every queued post goes out once, on time, or fails with a reason a person can act on.

X has no idempotency key. A timeout after X stored a post looks like a failure,
and retrying it makes a duplicate. So posts are marked `sending` durably before X
is called (a batch of an account's due posts in one write) and their outcomes are
stored durably after; a post whose call ended without a clear answer is
*uncertain* and is settled (`bot.posting.settling`) by reading the account's recent posts
before anything is retried.

A batch's requests all leave within `CLAIM_WINDOW` of its claim: the sender hands
back what it has not sent by then. So a post left `sending` is settled once its
claim is older than that window plus the time a request may take to land
(`settle_after`), never while a request for it may still be on its way and never
while its claim is live, whichever worker holds it. The claim carries a token, and
every outcome is written under it: a post whose claim was taken over (its worker
stalled past that time) is never recorded over. An outcome X gave is written until
the store takes it (`bot.durable`). An attempt is counted when a request leaves,
and stored with the post's outcome.

Posts of different accounts go out in parallel (POST_CONCURRENCY threads); one
account's posts go out in order, one at a time. A thread posts part by part,
storing each part's id as soon as it exists, and resumes at the first part
without one. A post's media go to X before its turn comes (`bot.posting.media_uploads`); a part
whose media ids are not all in hand is handed back unsent, never sent without them.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from bot import webhooks
from bot.durable import GaveUp, until_stored
from bot.limits import SentLog
from bot.models import ACTIVE, MEDIA_REFUSED, POSTED, REFUSED, SENDING, Account, Post, utcnow
from bot.post_options import body_options, refusal_words
from bot.posting.media_uploads import Uploader, ready_media_ids
from bot.posting.outcomes import mark_failed, mark_posted
from bot.posting.settling import AccountUnusable, CannotSettleYet, Settler, settle_after
from bot.settings import Settings
from bot.store import BROKEN, ClaimLost, Lock, LockTimeout, Repository, StoreError
from bot.tokens import TokenKeeper, backoff
from bot.when import format_utc
from bot.xclient import (
    XApi,
    XClient,
    XDuplicate,
    XError,
    XMediaExpired,
    XNoAnswer,
    XRateLimited,
    XUnauthorized,
    XUnavailable,
    XUsageCapped,
)

log = logging.getLogger("tweetbot.posting")

CLAIM_BATCH = 20  # due posts of an account claimed in one write
CLAIM_WINDOW = timedelta(seconds=5)  # a batch's requests leave within this of its claim (20 posts at X's usual pace)
USAGE_CAP_HOLD = timedelta(hours=1)
MIN_HOLD = timedelta(seconds=15)
SETTLE_RETRY_FIRST = timedelta(seconds=15)
MAX_REUPLOADS = 1
LEAD_SCAN_EVERY = timedelta(seconds=15)  # how often the queue is read MEDIA_LEAD ahead (due posts: every round)


def this_worker() -> str:
    """The name a worker's claims and heartbeat go by: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def account_can_post(account: Account | None, now: datetime) -> bool:
    """Active, and not held by a rate limit or usage cap."""
    return account is not None and account.status == ACTIVE and (
        account.hold_until is None or account.hold_until <= now)


@dataclass
class Batch:
    """Posts of one account claimed in one durable write, sent in order while the claim is fresh.

    `posted` holds outcomes not yet written: they are written together when the batch
    ends, with the posts it never sent handed back. A crash leaves them `sending`,
    and settling finds at X which went out.
    """

    account: Account | None
    claimed_at: datetime
    unsent: list[Post]
    posted: list[tuple[Post, datetime]] = field(default_factory=list)
    claim_token: str | None = None  # the claim its posts are `sending` under

    def open(self, now: datetime) -> bool:
        """Whether a request for this batch may still leave (see `CLAIM_WINDOW`)."""
        return now < self.claimed_at + CLAIM_WINDOW

    def owned_ids(self) -> set[str]:
        """Tweet ids of the outcomes not written yet: no other post may adopt them."""
        return {tid for post, _ in self.posted for tid in post.tweet_ids if tid}


class Dispatcher:
    """Sends due posts on a small thread pool: posting runners, each claiming the next account's due
    posts and sending them, again and again, until none can be claimed; and per account, a turn
    that settles posts left `sending` under a dead claim, or uploads media due soon."""

    def __init__(self, settings: Settings, store: Repository, x: XClient, tokens: TokenKeeper,
                 clock: Callable[[], datetime] = utcnow, should_stop: Callable[[], bool] = lambda: False,
                 worker_id: str = "") -> None:
        self.settings = settings
        self.worker_id = worker_id or this_worker()
        self.store = store
        self.x = x
        self.tokens = tokens
        self.clock = clock
        self.should_stop = should_stop
        self.pool = ThreadPoolExecutor(max_workers=settings.post_concurrency, thread_name_prefix="post")
        self.in_flight: dict[str, Future[object]] = {}  # an account's settle or upload turn
        self._runners: set[Future[None]] = set()
        self._lock = threading.Lock()  # the two sets below, shared by the runners and the scheduler's thread
        self._posting: set[str] = set()  # accounts a runner holds a claim of now
        self._uploads_wanted: set[str] = set()  # accounts whose media must go up before their posts
        self._apis: dict[str, tuple[str, XApi]] = {}
        self.sent = SentLog(store, settings.x_tier, clock)
        self.settler = Settler(settings, store, tokens, self._api, clock)
        self.uploader = Uploader(store, tokens, self._api, clock, should_stop)
        self.settle_after = settle_after(settings)
        self._settle_failures: dict[int, tuple[int, datetime]] = {}  # post id: (failures, next try)
        self._settling: set[str] = set()  # claims this worker took over to settle (it sends nothing under them)
        self._next_lead_scan = datetime.min.replace(tzinfo=timezone.utc)
        self._reuploads: dict[int, int] = {}  # post id: media uploaded again after X refused the ids
        self._lease: Lock | None = None
        self._told_no_lease = False

    # -- jobs ---------------------------------------------------------------------------

    def holds_lease(self) -> bool:
        """Whether this process may post now: it holds the store's posting turn (`Repository.posting_turn`:
        on a file store one worker at a time, the others keep tokens fresh and wait)."""
        if self._lease is None:
            turn = self.store.posting_turn()
            try:
                turn.acquire(timeout=0)
            except LockTimeout:
                if not self._told_no_lease:
                    log.info("another worker is posting; this one keeps tokens fresh and waits its turn")
                    self._told_no_lease = True
                return False
            self._lease = turn
            if turn.alone:
                log.info("this worker is the one that posts")
        return True

    def dispatch_due(self) -> int:
        """Start what the due work needs: a settle turn for each account with posts left `sending`
        under a dead claim, an upload turn for each account with media to send soon, and posting
        runners, as many as accounts wait (up to POST_CONCURRENCY in all); how many started."""
        if not self.holds_lease():
            return 0
        self._reap()
        now = self.clock()
        return self._start_settling(now) + self._start_uploads(now) + self._start_runners(now)

    def _start_settling(self, now: datetime) -> int:
        started = 0
        for account_id, ready in self._left_sending(now).items():
            if ready and account_id not in self.in_flight:
                self.in_flight[account_id] = self.pool.submit(self._settle_left, account_id)
                started += 1
        return started

    def _start_uploads(self, now: datetime) -> int:
        """An upload turn for each account whose media must go up (a look every LEAD_SCAN_EVERY, and
        every account a runner found without its media ids)."""
        if now >= self._next_lead_scan:
            wanted = {p.account_id for p in self.uploader.posts_to_prepare(now)}
            self._next_lead_scan = now + LEAD_SCAN_EVERY
        else:
            wanted = set()
        with self._lock:
            wanted |= self._uploads_wanted
            self._uploads_wanted = set()
        started = 0
        for account_id in sorted(wanted - set(self.in_flight)):
            account = self.store.get_account(account_id)
            self.in_flight[account_id] = self.pool.submit(self.uploader.prepare, account_id, account)
            started += 1
        return started

    def _start_runners(self, now: datetime) -> int:
        """Posting runners for the accounts that wait, beside those running (none while the app's
        windows are full)."""
        free = self.settings.post_concurrency - len(self._runners)
        if free <= 0 or not self.sent.app_room(now):
            return 0
        busy = self._busy(now)
        wanted = min(free, len(self.store.due_accounts(now, limit=free + len(busy)) - busy))
        for _ in range(wanted):
            self._runners.add(self.pool.submit(self._run))
        return wanted

    def pending(self) -> list[Future[object] | Future[None]]:
        """The turns and runners started and not yet reaped (for a host program or a test that waits)."""
        return [*self.in_flight.values(), *self._runners]

    def _busy(self, now: datetime) -> set[str]:
        """Accounts no runner may claim now: in a turn or a runner's hands, media to upload, a full window."""
        with self._lock:
            busy = set(self.in_flight) | self._posting | self._uploads_wanted
        return busy | self.sent.waiting(now)

    def _left_sending(self, now: datetime) -> dict[str, bool]:
        """Accounts with posts `sending` outside any turn of ours: whether all of them can be settled now."""
        ready: dict[str, bool] = {}
        for post in self.store.sending_posts():
            if post.account_id in self.in_flight:
                continue
            ready[post.account_id] = ready.get(post.account_id, True) and self._settleable(post, now)
        return ready

    def _settleable(self, post: Post, now: datetime) -> bool:
        """Its claim is dead (no request of it can still land at X), or is ours to settle, and no
        failed look at X asks us to wait."""
        failures = self._settle_failures.get(post.id)
        return (self._ours_to_settle(post) or now >= self._dead_before(post, now)) and \
            (failures is None or now >= failures[1])

    def _dead_before(self, post: Post, now: datetime) -> datetime:
        """When the post's claim is dead: its batch's requests left within CLAIM_WINDOW of it, and
        each can land until `settle_after` later."""
        return (post.claim_started or now) + CLAIM_WINDOW + self.settle_after

    def _ours_to_settle(self, post: Post) -> bool:
        return post.claimed_by == self.worker_id and post.claim_token in self._settling

    def shutdown(self) -> None:
        """Wait for the calls in flight to end (turns stop between calls), then let another worker post."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def _may_send(self, account: Account | None, now: datetime) -> bool:
        """The account can post and the tier's windows have room for one more post."""
        if account is None or not account_can_post(account, now):
            return False
        return self.sent.room_for(account.user_id, now)

    def _reap(self) -> None:
        """Forget finished turns and runners; a damaged store ends the worker (it must not carry on blind)."""
        for account_id, turn in list(self.in_flight.items()):
            if turn.done():
                del self.in_flight[account_id]
                self._check(turn, f"the turn of account {account_id}")
        for runner in [f for f in self._runners if f.done()]:
            self._runners.discard(runner)
            self._check(runner, "a posting runner")

    @staticmethod
    def _check(future: Future[object] | Future[None], what: str) -> None:
        error = future.exception()
        if isinstance(error, BROKEN):
            raise error
        if isinstance(error, StoreError):  # the database away: the store says so, the next round tries again
            log.debug("%s ended: %s", what, error)
        elif error is not None:
            log.error("%s failed unexpectedly", what, exc_info=error)

    # -- posting runners and settle turns ----------------------------------------------------

    def _run(self) -> None:
        """A posting runner: claim the next account's due posts and send them, again and again, until
        none can be claimed now, the app's windows are full, or the worker stops."""
        while not self.should_stop():
            now = self.clock()
            if not self.sent.app_room(now):
                return
            claim = self.store.claim_next(now, self.worker_id, CLAIM_BATCH, skip=self._busy(now))
            if not claim.posts:
                return
            self._send_claimed(Batch(claim.account, now, claim.posts, claim_token=claim.posts[0].claim_token))

    def _send_claimed(self, batch: Batch) -> None:
        """Send a claimed batch in order while the account may post; hand back the rest."""
        account_id = batch.unsent[0].account_id
        with self._lock:
            self._posting.add(account_id)
        try:
            if self._may_send(batch.account, self.clock()):
                self._send_batch(batch)
        finally:
            self._finish(batch)
            with self._lock:
                self._posting.discard(account_id)

    def _settle_left(self, account_id: str) -> bool:
        """Settle the account's posts left `sending` with a dead claim (oldest first); whether none is left.
        A live claim (another worker's batch, or ours) ends the turn: the account waits for it."""
        for post in self.store.sending_posts(account_id):
            now = self.clock()
            if self.should_stop() or not self._settleable(post, now):
                return False
            taken = post if self._ours_to_settle(post) else self._take_over(post, now)
            if taken is None:
                return False  # another worker took it over, or its worker finished it, meanwhile
            try:
                settled = self.settler.settle(taken, "the worker that sent it stopped before X answered", waited=True)
            except CannotSettleYet:
                self._settle_failed(taken)
                return False
            self._settle_failures.pop(post.id, None)
            self._settling.discard(taken.claim_token or "")
            log.info("settled post %s, left sending by a run that ended (worker %s): %s", post.id, post.claimed_by,
                     settled.status)
        return True

    def _take_over(self, post: Post, now: datetime) -> Post | None:
        """The post under a claim of ours, if its claim is still the dead one we read (one write decides)."""
        cutoff = now - CLAIM_WINDOW - self.settle_after
        taken = self.store.take_over(post, self.worker_id, now, claimed_before=cutoff)
        if taken is not None:
            self._settling.add(taken.claim_token or "")
        return taken

    def _settle_failed(self, post: Post) -> None:
        failures = self._settle_failures.get(post.id, (0, self.clock()))[0] + 1
        self._settle_failures[post.id] = (failures, self.clock() + backoff(failures, first=SETTLE_RETRY_FIRST))

    def _send_batch(self, batch: Batch) -> None:
        """Send the batch's posts in order while its claim is open and the account may post (`_finish`
        hands back the rest). An uncertain outcome left unsettled stops it: the later posts wait behind."""
        while batch.unsent:
            if self.should_stop() or not batch.open(self.clock()) or not self._may_send(batch.account, self.clock()):
                return
            outcome = self._send_post(batch, batch.unsent[0])
            if outcome is None:  # handed back: the claim closed first, or its media are missing (they go up first)
                return
            batch.unsent.pop(0)
            if outcome.status != POSTED:
                batch.account = self.store.get_account(outcome.account_id)  # a hold or a flag may have changed it
                if outcome.status == SENDING:
                    return

    def send(self, post: Post) -> Post:
        """Send one post now, exactly as the worker sends every post (a batch of one); it as stored after."""
        batch = self._claim(post.account_id, self.store.get_account(post.account_id), post.id)
        try:
            self._send_batch(batch)
        finally:
            self._finish(batch)
        return self.store.get_post(post.id) or post

    def _send_post(self, batch: Batch, post: Post) -> Post | None:
        """Send the parts X lacks; the outcome (None: the claim closed first, and the post,
        with the parts already sent, goes back to the batch's unsent)."""
        for index in post.missing_parts():
            try:
                tweet_id = self._create(batch, post, index)
            except _ClaimClosed as closed:
                batch.unsent[0] = closed.post
                return None
            except (XError, AccountUnusable) as exc:
                return self._outcome_of(batch, _counted(post, index, exc), index, exc)
            post = self._record_part(batch, replace(post, attempts=post.attempts + 1), index, tweet_id)
            if post.status == SENDING and post.claim_token != batch.claim_token:
                return post  # its claim was taken over (we stalled): the settler finishes it
        return post

    def _create(self, batch: Batch, post: Post, index: int) -> str:
        """POST /2/tweets with a fresh token; on a 401, refresh once and retry once (the 401 is not an
        attempt: X did nothing; what the last request brought is counted by `_counted`)."""
        token = self._token(batch, post.account_id)
        try:
            return self._request(batch, post, token, index)
        except XUnauthorized:
            fresh = self.tokens.after_unauthorized(post.account_id, token)
            if fresh is None or fresh == token:
                raise self._unusable(post.account_id) from None
            return self._request(batch, post, fresh, index)

    def _request(self, batch: Batch, post: Post, token: str, index: int) -> str:
        """Part `index`, if the batch's claim is still open and the part's media are at X (else
        `_ClaimClosed`: the post goes back unsent, and its media go up before its next turn)."""
        media_ids = ready_media_ids(post, index, self.clock())
        if media_ids is None:
            with self._lock:
                self._uploads_wanted.add(post.account_id)
        if not batch.open(self.clock()) or media_ids is None:
            raise _ClaimClosed(post)
        reply_to = post.tweet_ids[index - 1] if index else None
        return self._api(post.account_id, token).create_post(post.parts[index], reply_to, media_ids,
                                                             body_options(post.options, index))

    def _token(self, batch: Batch, account_id: str) -> str:
        known = batch.account if batch.account and batch.account.user_id == account_id else None
        token = self.tokens.fresh_access_token(account_id, known)
        if token is None:
            raise self._unusable(account_id)
        return token

    def _unusable(self, account_id: str) -> AccountUnusable:
        """Why the account cannot call X now, and when to try again (None: when it is reconnected)."""
        account = self.store.get_account(account_id)
        if account is not None and account.status == ACTIVE:
            retry_at = max(account.next_refresh_at or self.clock(), self.clock() + MIN_HOLD)
            return AccountUnusable(f"the access token expired and refreshing it failed ({account.last_error}); "
                                   f"trying again at {format_utc(retry_at)}", retry_at)
        return AccountUnusable("the account cannot post until it is reconnected")

    def _api(self, account_id: str, token: str) -> XApi:
        """The account's API client, kept while its token lasts (one keep-alive connection per account)."""
        cached = self._apis.get(account_id)
        if cached is None or cached[0] != token:
            cached = self._apis[account_id] = (token, self.x.api(token))
        return cached[1]

    def _outcome_of(self, batch: Batch, post: Post, index: int, exc: XError | AccountUnusable) -> Post:
        """What a request that brought no tweet id means for the post: the failure table."""
        if isinstance(exc, XUnavailable):
            log.warning("post %s part %d: no clear answer from X (%s); settling", post.id, index + 1, exc)
            return self._settle_now(batch, post, str(exc), still_landing=isinstance(exc, XNoAnswer))
        if isinstance(exc, XRateLimited):
            until = max(exc.reset_at, self.clock() + MIN_HOLD)  # X's clock may be behind ours
            return self._hold(post, until, f"rate limited by X until {format_utc(until)}")
        if isinstance(exc, XUsageCapped):
            return self._hold(post, self.clock() + USAGE_CAP_HOLD, f"X usage cap: {exc}")
        if isinstance(exc, AccountUnusable):
            return self._hold(post, exc.retry_at, str(exc))
        if isinstance(exc, XMediaExpired) and post.media_of(index):
            return self._upload_again(post, index, exc)
        if isinstance(exc, XDuplicate):
            # Evidence, not only a refusal: an earlier request for this post may be the one X kept.
            return self._settle_now(batch, post, str(exc), duplicate=True)
        return self._fail(post, index, exc)  # 400, 403, a second 401: X said no clearly

    # -- writes (each one durable) ----------------------------------------------------------

    def _claim(self, account_id: str, account: Account | None, post_id: int | None = None) -> Batch:
        """Mark the account's due posts `sending` in one durable write, before X is called (no attempt yet)."""
        now = self.clock()
        claimed = self.store.claim_due(account_id, now, CLAIM_BATCH, self.worker_id, post_id)
        return Batch(account, now, claimed, claim_token=claimed[0].claim_token if claimed else None)

    def _record_part(self, batch: Batch, post: Post, index: int, tweet_id: str) -> Post:
        """Store the part's id at once (until it lands); the last part's outcome is written with the batch."""
        self.sent.add(post.account_id, self.clock())
        post = post.with_part_at_x(index, tweet_id)
        if not post.missing_parts():
            batch.posted.append((post, self.clock()))
            return replace(post, status=POSTED)
        return self._write_claimed(post, f"post {post.id} part {index + 1}", **post.progress())

    def _finish(self, batch: Batch) -> None:
        """Write the batch's posted outcomes, and hand back the posts it never sent, in one write, under
        the batch's claim; X's answers are written until the store takes them (or the worker stops:
        then the posts stay `sending`, and settling finds at X what went out)."""
        if not batch.posted and not batch.unsent:
            return
        try:
            until_stored(lambda: self._write_batch(batch), f"the outcomes of {len(batch.posted)} post(s)",
                         give_up=self.should_stop)
        except GaveUp as exc:
            log.warning("%s; they are settled by X's timeline once their claim is dead", exc)
        batch.posted, batch.unsent = [], []

    def _write_batch(self, batch: Batch) -> None:
        with self.store.transaction():
            for post, at in batch.posted:
                try:
                    mark_posted(self.store, post, at, self.settings.post_url, zone=self.settings.zone)
                except ClaimLost:
                    log.info("post %s was settled by another worker (its claim looked dead); its outcome stands",
                             post.id)
            for post in batch.unsent:
                self._write_claimed(post, f"post {post.id}", **post.handed_back())

    def _write_claimed(self, post: Post, what: str, **changes: Any) -> Post:
        """Change the post under its claim, until the store takes it; the post as stored (as it is now
        when its claim was taken over meanwhile: nothing of ours is written over another's)."""
        def write() -> Post:
            try:
                return self.store.update_post(post.id, under_claim=post.claim_token, **changes)
            except ClaimLost:
                log.info("%s: its claim was taken over meanwhile; leaving it to its settler", what)
                return self.store.get_post(post.id) or post
        return until_stored(write, what)

    def _settle_now(self, batch: Batch, post: Post, why: str, duplicate: bool = False,
                    still_landing: bool = False) -> Post:
        """Our own request ended without a clear answer: look at X's timeline at once (`still_landing`:
        it got no answer at all and may still land, so a post not found yet stays uncertain until then)."""
        try:
            return self.settler.settle(post, why, taken=batch.owned_ids(), duplicate=duplicate,
                                       still_landing=still_landing)
        except CannotSettleYet:
            self._settle_failed(post)
            return self._write_claimed(post, f"post {post.id}", **post.progress())

    def _fail(self, post: Post, index: int, exc: XError) -> Post:
        where = f"part {index + 1}: " if len(post.parts) > 1 else ""
        reason = f"{where}X refused it ({exc.status}): {refusal_words(str(exc), post.options, index)}"
        try:
            with self.store.transaction():
                kind = MEDIA_REFUSED if isinstance(exc, XMediaExpired) and post.media_of(index) else REFUSED
                failed = mark_failed(self.store, post, reason, self.clock(), kind)
                if isinstance(exc, XUnauthorized):
                    self.store.update_account(post.account_id, last_error=f"X refused the access token twice: {exc}")
        except ClaimLost:
            return self.store.get_post(post.id) or post
        return failed

    def _upload_again(self, post: Post, index: int, exc: XError) -> Post:
        """X no longer knows the part's media ids (expired early, or lost): forget them and put the
        post back, so its media go up again before it is sent (once; a second refusal fails it)."""
        if self._reuploads.get(post.id, 0) >= MAX_REUPLOADS:
            return self._fail(post, index, exc)
        self._reuploads[post.id] = self._reuploads.get(post.id, 0) + 1
        kept = {key: value for key, value in post.uploads.items() if not key.startswith(f"{index}.")}
        log.warning("post %s part %d: X refused its media ids (%s); uploading them again", post.id, index + 1, exc)
        return self._write_claimed(post, f"post {post.id}", **post.handed_back(uploads=kept))

    def _hold(self, post: Post, until: datetime | None, reason: str) -> Post:
        """Put the post back and hold the account's queue until `until`."""
        try:
            with self.store.transaction():
                held = self.store.update_post(post.id, under_claim=post.claim_token,
                                              **post.handed_back(last_error=reason))
                if until is not None:
                    self.store.update_account(post.account_id, hold_until=until, hold_reason=reason)
                self.store.record_event("held", post.account_id, post.id, detail=reason, at=self.clock())
                webhooks.post_event(self.store, webhooks.POST_HELD, held, self.clock(), reason=reason,
                                    until=webhooks.stamp(until) if until else None)
        except ClaimLost:
            return self.store.get_post(post.id) or post
        log.warning("post %s held: %s", post.id, reason)
        return held


class _ClaimClosed(Exception):
    """The batch's claim window closed before the post's next request: it goes back, unsent."""

    def __init__(self, post: Post) -> None:
        super().__init__(f"post {post.id}: the claim closed")
        self.post = post


def _counted(post: Post, index: int, exc: XError | AccountUnusable) -> Post:
    """The post with the attempt of the request for part `index` that ended in `exc`, if its kind counts as
    one: a wait X asks for does not, nor media ids to upload again (but ids refused on a part that has no
    media are a plain refusal); an account that cannot call X sent nothing."""
    mends = isinstance(exc, XMediaExpired) and bool(post.media_of(index))
    counts = isinstance(exc, XError) and exc.counts_as_attempt and not mends
    return replace(post, attempts=post.attempts + 1) if counts else post
