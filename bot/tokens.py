"""Keeping every account's tokens alive.

X's access tokens live two hours and every refresh spends the refresh token it
used. An account is lost for good when the new pair X issued is not stored (a
crash between X's answer and our write), or when two processes refresh at once
(the second one spends a token the first already spent). So a refresh
- holds the account's lock, across processes (worker, web callback, CLI), which
  survives a dropped database connection and a transaction pooler, and whose wait
  ends (at its timeout, or when the worker stops);
- re-reads the account under it and stops if someone else already refreshed,
- writes the new pair durably before it does anything else: while the database
  cannot be reached it tries again until the pair lands (`bot.durable`), still
  holding the lock, so nobody refreshes that account meanwhile; the write replaces
  only the pair whose refresh token it spent. A worker told to stop meanwhile goes
  on trying until the pair lands or the process is killed (a PaaS kills 30 s after
  SIGTERM): dropping the pair would lose the account for certain;
- on "token invalid" re-reads once more before declaring the account dead.
Network errors and 5xx never mark an account dead; they back off and retry.
The only loss left is a process killed between X's answer and the write.
"""
from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from contextlib import contextmanager
from datetime import datetime, timedelta

from bot import webhooks
from bot.alerts import FAILURES_WORTH_AN_ALERT
from bot.durable import until_stored
from bot.models import ACTIVE, NEEDS_RECONNECT, Account, utcnow
from bot.store import Event, Lock, LockTimeout, Repository
from bot.xclient import TokenRejected, TokenSet, XClient, XError

log = logging.getLogger("tweetbot.tokens")

LAZY_MARGIN = timedelta(minutes=1)
LOCK_MARGIN = 5.0  # seconds a wait for an account's lock gives beyond the holder's call to X
REFRESH_STRETCH_PER_THREAD = 4  # accounts read again and locked together, per refresh thread, before they are refreshed
BACKOFF_FIRST = timedelta(seconds=15)
BACKOFF_MAX = timedelta(minutes=15)


def backoff(failures: int, first: timedelta = BACKOFF_FIRST, most: timedelta = BACKOFF_MAX) -> timedelta:
    """The wait after the n-th consecutive failure: first, 2×first, 4×first … up to `most`."""
    return min(first * 2 ** max(failures - 1, 0), most)


def refresh_backoff(failures: int, margin: timedelta) -> timedelta:
    """Backoff for a failed refresh, scaled to the margin so several retries fit before expiry."""
    return backoff(failures, first=min(BACKOFF_FIRST, margin / 8), most=min(BACKOFF_MAX, margin / 2))


def expires_within(account: Account, margin: timedelta, now: datetime) -> bool:
    return account.expires_at is None or account.expires_at - now <= margin


def refresh_due(account: Account, margin: timedelta, now: datetime) -> bool:
    """Whether the proactive refresh should spend this account's refresh token now."""
    backing_off = account.next_refresh_at is not None and account.next_refresh_at > now
    # The token last: reading it decrypts it, and most accounts a round looks at are not due.
    return (account.status == ACTIVE and not backing_off and expires_within(account, margin, now)
            and bool(account.refresh_token))


class TokenKeeper:
    """Refreshes accounts' tokens safely; see the module docstring for the rules."""

    def __init__(self, store: Repository, x: XClient, margin: timedelta,
                 clock: Callable[[], datetime] = utcnow, should_stop: Callable[[], bool] = lambda: False,
                 lock_wait: float = 2 * 15.0 + LOCK_MARGIN) -> None:
        self.store = store
        self.x = x
        self.margin = margin
        self.clock = clock
        self.should_stop = should_stop
        self.lock_wait = lock_wait  # a holder's refresh takes up to twice the HTTP timeout
        self._refreshing = 0
        self._quiet = threading.Condition()

    def refresh_all_due(self, threads: int = 1) -> int:
        """Refresh every account whose token expires within the margin, on up to `threads` threads at
        once; how many were refreshed. An account another process is refreshing is left to it. Each
        worker goes through the accounts in an order of its own, so workers seldom meet, a stretch at a
        time: it reads which are still due, so it passes over what others refreshed, takes the locks of
        those that are free in one go, and reads them again under their locks."""
        due = [a.user_id for a in self.store.expiring_accounts(self.clock() + self.margin)
               if refresh_due(a, self.margin, self.clock())]
        random.shuffle(due)
        refreshed = 0
        stretch = REFRESH_STRETCH_PER_THREAD * threads
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="refresh") as pool:
            for start in range(0, len(due), stretch):
                if self.should_stop():
                    break
                refreshed += self._refresh_stretch(due[start:start + stretch], pool)
        return refreshed

    def _refresh_stretch(self, user_ids: list[str], pool: ThreadPoolExecutor) -> int:
        """Refresh those of the accounts that are still due (others refreshed some meanwhile), whose locks
        are free, and that are still due once we hold them. Each lock is let go as soon as its account's
        refresh ends (on this thread, which took it: a file lock belongs to its thread), and never while
        a refresh under it still runs, whatever happens to the others."""
        due = [a.user_id for a in self.store.expiring_accounts(self.clock() + self.margin, among=user_ids)
               if refresh_due(a, self.margin, self.clock())]
        held = self.store.take_free_account_locks(due) if due else {}
        running: dict[Future[bool], str] = {}
        try:
            still = [a for a in self.store.get_accounts(list(held)) if refresh_due(a, self.margin, self.clock())]
            for user_id in set(held) - {a.user_id for a in still}:
                held.pop(user_id).release()  # refreshed by another meanwhile
            running = {pool.submit(self._refresh_held, a, held[a.user_id]): a.user_id for a in still}
            refreshed = 0
            for done in as_completed(running):
                held.pop(running[done]).release()  # nothing to do for those the write of their new pair freed
                refreshed += done.result()
            return refreshed
        finally:
            wait(running)
            for lock in held.values():
                lock.release()

    def _refresh_held(self, account: Account, lock: Lock) -> bool:
        """Refresh the account, whose lock we hold, unless the worker stops; whether it got a new pair."""
        if self.should_stop():
            return False
        return self._refresh_locked(account, lock).refresh_token != account.refresh_token

    def refresh_if_due(self, user_id: str, force: bool = False, wait: float | None = None) -> Account | None:
        """Refresh the account if it still needs it once we hold its lock (always, with `force`). The lock
        is waited for `wait` s (default: as long as a holder's refresh may take), else `LockTimeout`."""
        with self._lock(user_id, wait) as lock:
            account = self.store.get_account(user_id)
            if account is None or account.status != ACTIVE or not account.refresh_token:
                return account
            if not force and not refresh_due(account, self.margin, self.clock()):
                return account
            return self._refresh_locked(account, lock)

    def _lock(self, user_id: str, wait: float | None = None) -> Lock:
        return self.store.account_lock(user_id, timeout=self.lock_wait if wait is None else wait,
                                       stop=self.should_stop)

    def fresh_access_token(self, user_id: str, known: Account | None = None) -> str | None:
        """The access token to call X with, refreshed first if it expires within a minute.

        `known` is the account as the caller read it moments ago: while its token has
        more than a minute left, it is used without reading the store again. None when
        there is no usable token: the account needs reconnecting, or its token expired
        and refreshing it failed (the refresh backoff is respected, not hammered).
        """
        usable = known is not None and known.status == ACTIVE and \
            not expires_within(known, LAZY_MARGIN, self.clock())
        account = known if usable else self.store.get_account(user_id)
        if account is not None and self._lazy_refresh_due(account):
            try:
                with self._lock(user_id) as lock:
                    account = self.store.get_account(user_id)
                    if account is not None and self._lazy_refresh_due(account):
                        account = self._refresh_locked(account, lock)
            except LockTimeout:  # another process is still refreshing it: use what is stored now
                account = self.store.get_account(user_id)
        if account is None or account.status != ACTIVE:
            return None
        expired = account.expires_at is not None and account.expires_at <= self.clock()
        return None if expired else account.access_token

    def _lazy_refresh_due(self, account: Account) -> bool:
        now = self.clock()
        backing_off = account.next_refresh_at is not None and account.next_refresh_at > now
        return account.status == ACTIVE and not backing_off and expires_within(account, LAZY_MARGIN, now)

    def after_unauthorized(self, user_id: str, rejected_access_token: str) -> str | None:
        """X said 401 to this access token: refresh once, unless someone already did."""
        with self._lock(user_id) as lock:
            account = self.store.get_account(user_id)
            if account is None or account.status != ACTIVE:
                return None
            if account.access_token == rejected_access_token:
                account = self._refresh_locked(account, lock)
            return account.access_token if account.status == ACTIVE else None

    # -- under the account's lock ---------------------------------------------------

    def _refresh_locked(self, account: Account, lock: Lock) -> Account:
        """Spend the refresh token; its outcome stored (the new pair's write frees `lock`, where it can)."""
        with self._refresh_in_progress():
            try:
                tokens = self.x.refresh(account.refresh_token or "", now=self.clock())
            except TokenRejected as exc:
                return self._rejected(account, exc)
            except XError as exc:
                return self._failed(account, exc)
            return self._store_new_pair(account, tokens, lock)

    @contextmanager
    def _refresh_in_progress(self) -> Iterator[None]:
        with self._quiet:
            self._refreshing += 1
        try:
            yield
        finally:
            with self._quiet:
                self._refreshing -= 1
                self._quiet.notify_all()

    def wait_for_refreshes(self, timeout: float) -> bool:
        """Block until no refresh is between X's answer and our write (or `timeout`); whether it got quiet.

        A process that must exit now waits for this first: X has spent the old refresh
        token, and the new pair exists nowhere but in this process until it is stored.
        """
        with self._quiet:
            return self._quiet.wait_for(lambda: self._refreshing == 0, timeout)

    def _store_new_pair(self, account: Account, tokens: TokenSet, lock: Lock) -> Account:
        """The first thing after X's answer: the new pair, durably, until it lands (see the module)."""
        updated = until_stored(lambda: self._write_pair(account, tokens, lock), f"the new tokens of {account.handle}")
        log.info("refreshed %s; the access token expires at %s", account.handle, tokens.expires_at.isoformat())
        return updated

    def _write_pair(self, account: Account, tokens: TokenSet, lock: Lock) -> Account:
        """Replace the pair whose refresh token was spent, with its event, in one write that frees `lock`
        where it can (fenced by that token: a newer pair stored meanwhile is never overwritten with this one)."""
        now = self.clock()
        updated = self.store.replace_pair(
            account, Event(now, "refreshed", account.user_id), lock, access_token=tokens.access_token,
            refresh_token=tokens.refresh_token or account.refresh_token, expires_at=tokens.expires_at,
            scopes=tokens.scopes or account.scopes, refreshed_at=now, status=ACTIVE, last_error=None,
            refresh_failures=0, next_refresh_at=None)
        if updated is None:
            return account  # disconnected meanwhile: nothing to keep the pair for
        if updated.access_token != tokens.access_token:
            log.warning("%s: a newer pair was stored while this refresh ran; keeping it", account.handle)
        return updated

    def _rejected(self, account: Account, exc: TokenRejected) -> Account:
        """X called the refresh token invalid: dead, unless another process had refreshed it."""
        current = self.store.get_account(account.user_id)
        if current is None:
            return account  # deleted meanwhile: nothing left to flag
        if current.refresh_token != account.refresh_token:
            log.info("%s was refreshed elsewhere meanwhile; using the new token", account.handle)
            return current
        reason = f"X refused the refresh token ({exc}); the owner must reconnect"
        with self.store.transaction():
            updated = self.store.update_account(account.user_id, status=NEEDS_RECONNECT, last_error=reason,
                                                refresh_failures=account.refresh_failures + 1)
            self.store.record_event("needs_reconnect", account.user_id, detail=reason, at=self.clock())
            webhooks.account_event(self.store, webhooks.ACCOUNT_NEEDS_RECONNECT, updated, self.clock())
        log.warning("%s needs reconnecting: %s", account.handle, reason)
        return updated

    def _failed(self, account: Account, exc: XError) -> Account:
        """A passing failure (network, 5xx, rate limit): back off, never declare the account dead."""
        failures = account.refresh_failures + 1
        retry_at = self.clock() + refresh_backoff(failures, self.margin)
        reason = f"{type(exc).__name__}: {exc}"
        with self.store.transaction():
            updated = self.store.update_account(account.user_id, refresh_failures=failures,
                                                last_error=reason, next_refresh_at=retry_at)
            self.store.record_event("refresh_failed", account.user_id, detail=reason, at=self.clock())
            if failures == FAILURES_WORTH_AN_ALERT:  # once per run of failures, as the owner's alert
                webhooks.account_event(self.store, webhooks.ACCOUNT_REFRESH_FAILING, updated, self.clock(),
                                       failures=failures, retry_at=webhooks.stamp(retry_at))
        log.warning("refreshing %s failed (%d in a row): %s; retrying at %s",
                    account.handle, failures, reason, retry_at.isoformat())
        return updated
