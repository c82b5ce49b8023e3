"""Leases in the database: the PostgreSQL store's account locks and maintenance leases.

A session advisory lock lives and dies with one connection: a dropped connection
(a restart, `pg_terminate_backend`, a PaaS's maintenance) frees it while its holder
still works, and through a transaction pooler it belongs to whichever client the
pooler lent that session to. So a lease here is a row of `leases`:
- a holder (a fresh name per acquisition), and a fence that grows by one each time
  the lease is taken, so a write can check that its lease is still the current one;
- taken by one statement that succeeds only if nobody holds the row or its holder's
  time is up (one statement for many: those that are free); released by one statement
  that frees it only for its holder, or by the write it protects, as that lands (a
  refresh's new pair: `PostgresStore.replace_pair`);
- renewed while held by a thread of the process (every TTL/4); a holder that died
  stops renewing, and its lease can be taken TTL after the last renewal;
- measured on the database's clock, never a host's, and never shorter than TTL after
  the server started: a restart or a stop does not let another process take a lease
  whose holder could not renew while the server was away.

Every wait has an end: `acquire` polls until its timeout, and stops early when the
caller's `stop` says the process is stopping (`LockTimeout` either way).
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any

from bot.store.errors import StoreError
from bot.store.locks import LockTimeout

log = logging.getLogger("tweetbot.store")

LEASE_TTL = timedelta(seconds=60)
POLL_FIRST, POLL_MOST = 0.02, 0.5  # seconds between two tries to take a held lease

Run = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

_TAKE = """
INSERT INTO leases AS l (name, holder, fence, renewed_at, ttl)
SELECT name, holder, 1, clock_timestamp(), %(ttl)s
  FROM unnest(%(names)s::text[], %(holders)s::text[]) AS t(name, holder)
ON CONFLICT (name) DO UPDATE
   SET holder = EXCLUDED.holder, fence = l.fence + 1, renewed_at = EXCLUDED.renewed_at, ttl = EXCLUDED.ttl
 WHERE l.holder = ''
    OR (l.renewed_at + l.ttl < clock_timestamp() AND pg_postmaster_start_time() + l.ttl < clock_timestamp())
RETURNING name, fence"""
_RELEASE = "UPDATE leases SET holder = '' WHERE name = %(name)s AND holder = %(holder)s"
# Rows locked in the order of their names, as `_TAKE` takes them: a renewal and another process's take
# of some of the same leases never wait for each other in a circle.
_RENEW = """
UPDATE leases SET renewed_at = clock_timestamp()
 WHERE name IN (SELECT name FROM leases WHERE holder = ANY(%(holders)s) AND holder <> ''
                 ORDER BY name COLLATE "C" FOR UPDATE)
RETURNING holder"""


class RowLease:
    """A `Lock` kept as a row of `leases` (see the module); `fence` is its number while held."""

    alone = True

    def __init__(self, run: Run, keeper: LeaseKeeper, name: str, timeout: float = -1,
                 stop: Callable[[], bool] | None = None, ttl: timedelta = LEASE_TTL) -> None:
        self.run = run
        self.keeper = keeper
        self.name = name
        self.timeout = timeout
        self.stop = stop or (lambda: False)
        self.ttl = ttl
        self.holder = ""
        self.fence: int | None = None

    @property
    def held(self) -> bool:
        """Held, and not found taken by another when last renewed."""
        return self.fence is not None and self.keeper.holds(self.holder)

    def acquire(self, timeout: float = -1) -> None:
        """Take the lease, trying until `timeout` s have passed (0: once; negative: until `stop`)."""
        deadline = None if timeout < 0 else time.monotonic() + timeout
        pause = POLL_FIRST
        while True:
            if take_free(self.run, [self]):
                return
            if self.stop() or (deadline is not None and time.monotonic() + pause > deadline):
                raise LockTimeout(f"{self.name} is held by another process")
            time.sleep(pause)
            pause = min(pause * 2, POLL_MOST)

    def taken(self, holder: str, fence: int) -> None:
        """Note that the lease is held, as `holder`, with `fence`; renewed from now on."""
        self.holder, self.fence = holder, fence
        self.keeper.add(self)

    def freeing_write(self) -> None:
        """A write that frees the lease as it lands (as `_RELEASE` does, in its statement) is about to run:
        no renewal meanwhile (one would find it gone and call it lost). `freed_by_write` says how it went."""
        self.keeper.discard(self)

    def freed_by_write(self, freed: bool) -> None:
        """The write ran: the lease is free (`freed`), or still ours and renewed again."""
        if freed:
            self.holder, self.fence = "", None
        else:
            self.keeper.add(self)

    def release(self) -> None:
        """Free the lease if we still hold it. If the database cannot be reached, it frees itself
        TTL after its last renewal (the keeper no longer renews it)."""
        if self.fence is None:
            return
        self.keeper.discard(self)
        holder, self.holder, self.fence = self.holder, "", None
        try:
            self.run(_RELEASE, {"name": self.name, "holder": holder})
        except StoreError as exc:
            log.info("could not release %s now (%s); it frees itself within %s s", self.name, exc,
                     int(self.ttl.total_seconds()))

    def __enter__(self) -> RowLease:
        self.acquire(self.timeout)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


def take_free(run: Run, leases: list[RowLease]) -> list[RowLease]:
    """Take, in one statement, those of `leases` that nobody holds now (the others are passed over, never
    waited for); the ones taken. Taken in the order of their names, so that two processes taking some
    of the same leases at once never wait for each other in a circle."""
    if not leases:
        return []
    by_name = {lease.name: lease for lease in leases}
    holders = {name: secrets.token_hex(8) for name in sorted(by_name)}  # Python's order is COLLATE "C"
    rows = run(_TAKE, {"names": list(holders), "holders": list(holders.values()), "ttl": leases[0].ttl})
    for name, fence in rows:
        by_name[name].taken(holders[name], int(fence))
    return [by_name[name] for name, _ in rows]


class LeaseKeeper:
    """Renews every lease the process holds, on one daemon thread, while any is held."""

    def __init__(self, run: Run, every: float = LEASE_TTL.total_seconds() / 4) -> None:
        self.run = run
        self.every = every
        self._held: dict[str, RowLease] = {}
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, lease: RowLease) -> None:
        with self._lock:
            self._held[lease.holder] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)
                self._thread.start()

    def discard(self, lease: RowLease) -> None:
        with self._lock:
            self._held.pop(lease.holder, None)
            self._lost.discard(lease.holder)

    def holds(self, holder: str) -> bool:
        with self._lock:
            return holder in self._held and holder not in self._lost

    def close(self) -> None:
        """Stop renewing: the leases still held free themselves TTL after their last renewal."""
        with self._lock:
            self._held.clear()
        self._wake.set()

    def renew_now(self) -> None:
        """Renew every held lease once; one found taken by another is marked lost."""
        with self._lock:
            holders = [h for h in self._held if h not in self._lost]
        if not holders:
            return
        renewed = {row[0] for row in self.run(_RENEW, {"holders": holders})}
        with self._lock:
            for holder in holders:
                if holder not in renewed and holder in self._held:
                    self._lost.add(holder)
                    log.warning("lost the lease %s: it was taken while this process could not renew it",
                                self._held[holder].name)

    def _loop(self) -> None:
        while not self._wake.wait(self.every):
            with self._lock:
                if not self._held:
                    self._thread = None
                    return
            try:
                self.renew_now()
            except StoreError:
                pass  # the database is away: the store says so; the next round tries again
