"""The worker: one `schedule.Scheduler` that keeps tokens fresh and posts what is due.

It sleeps until the next job is due. One job's exception is logged with its
traceback and never stops the loop. SIGTERM or SIGINT only sets a flag: the
job in hand finishes (a refresh is stored, not abandoned) and the loop exits 0;
a second signal exits at once. A PaaS sends SIGTERM and kills 30 s later.

A database that cannot be reached stops nothing: the store says so once a minute,
each job tries again on its next round, and a worker started while it is away
waits for it. Jobs that must run once per deployment, whatever the number of
workers, run under a lease (alerts, media retention, reading how posts did, expiry,
plugs) or are keyed in the store (each generator run, each feed entry).
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import schedule

from bot import alerts, queue, webhooks
from bot.analytics import Reader
from bot.api_keys import IDEMPOTENCY_WINDOW
from bot.expiry import Expirer
from bot.feeds import schedule_feeds
from bot.generators import schedule_generators
from bot.models import utcnow
from bot.posting.dispatcher import Dispatcher, this_worker
from bot.retention import forget_finished_media
from bot.series import fire_due_plugs
from bot.settings import Settings
from bot.store import BROKEN, LockTimeout, Repository, StoreError, StoreUnreachable, heartbeats
from bot.tokens import LOCK_MARGIN, TokenKeeper
from bot.xclient import XClient

log = logging.getLogger("tweetbot.worker")


def one_line(exc: BaseException) -> str:
    """An error's message on one line, for a log or a terminal."""
    return " ".join(str(exc).split()) or type(exc).__name__


DISPATCH_EVERY = 1
ANALYTICS_EVERY = 60  # seconds: the reading plan's ages are an hour and more; a minute late is on time
EXPIRY_EVERY = 30  # seconds: an expiry is a minute at the least
MEDIA_CLEANUP_EVERY = 60  # minutes: retention is counted in days, so an hour late is never late
RUN_KEYS_KEPT = timedelta(days=30)  # generator run keys older than any run they could collide with
DELIVERIES_KEPT = timedelta(days=30)  # finished webhook deliveries in the log (the newest 200 stay whatever their age)
STORE_WAIT_EVERY = 1.0  # seconds between two looks at a store that cannot be reached at start-up
SANDBOX_WAIT = 30.0  # seconds a worker waits at start for the sandbox `tweetbot run` starts beside it


class Worker:
    """The long-running process behind `tweetbot worker`."""

    def __init__(self, settings: Settings, store: Repository, x: XClient,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._stop = threading.Event()
        self.tokens = TokenKeeper(store, x, timedelta(seconds=settings.refresh_margin), clock,
                                  should_stop=self._stop.is_set, lock_wait=2 * settings.http_timeout + LOCK_MARGIN)
        self.worker_id = this_worker()
        self.dispatcher = Dispatcher(settings, store, x, self.tokens, clock, should_stop=self._stop.is_set,
                                     worker_id=self.worker_id)
        self.webhooks = webhooks.Deliverer(settings, store, clock)
        self.analytics = Reader(settings, store, x, self.tokens, clock)
        self.expirer = Expirer(store, x, self.tokens, clock)
        self.scheduler = schedule.Scheduler()
        self._signals = 0
        self.exit_code = 0

    # -- jobs ------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Say this worker is alive: its own beat (`tweetbot accounts` lists the workers) and the
        newest beat of any worker (what `/healthz` reads)."""
        with self.store.transaction():
            heartbeats.beat(self.store, self.worker_id, self.clock())

    def refresh_due_tokens(self) -> None:
        """Refresh what expires within the margin (on the posting threads' number of threads), once the
        owner's alert subscription matches ALERT_WEBHOOK_URL (one worker at a time), so that what the
        refreshes find reaches it."""
        self._once("alerts", lambda: alerts.keep_alert_subscription(self.store, self.settings.alert_webhook_url,
                                                                    self.clock()))
        self.tokens.refresh_all_due(threads=self.settings.post_concurrency)

    def dispatch(self) -> None:
        self.dispatcher.dispatch_due()

    def deliver_webhooks(self) -> None:
        """Start the attempts of the webhook deliveries that are due (on the deliverer's own threads)."""
        self.webhooks.deliver_due()

    def read_metrics(self) -> None:
        """Read how the posted posts did, those due by the reading plan, within the month's budget
        (`bot.analytics`); one worker at a time, so no post is read (and paid for) twice."""
        self._once("analytics", self.analytics.read_due)

    def delete_expired(self) -> None:
        """Delete from X the posts whose `expire_after` has come (`bot.expiry`); one worker at a time."""
        self._once("expiry", self.expirer.expire_due)

    def fire_plugs(self) -> None:
        """Reply to each post whose plug is due (its likes, as last read, or its hours; `bot.series`), once;
        one worker at a time."""
        self._once("plugs", lambda: fire_due_plugs(self.store, self.clock,
                                                   lambda reply: queue.add_posts(self.store, [reply])))

    def forget_media(self) -> None:
        """Delete the stored media no post needs any more (MEDIA_RETENTION_DAYS after it finished), generator
        run keys too old to matter, old finished webhook deliveries and the API's answers past their
        Idempotency-Key's window (a request path should not pay for the clean-up); one worker at a time."""
        self._once("retention", self._forget_old)

    def _forget_old(self) -> None:
        retention = timedelta(days=self.settings.media_retention_days)
        deleted = forget_finished_media(self.store, self.clock(), retention)
        if deleted:
            log.info("deleted %s media file(s) of posts finished over %s day(s) ago", deleted,
                     self.settings.media_retention_days)
        self.store.forget_runs(self.clock() - RUN_KEYS_KEPT)
        self.store.forget_deliveries(self.clock() - DELIVERIES_KEPT)
        self.store.forget_answers(self.clock() - IDEMPOTENCY_WINDOW)

    def _once(self, job: str, run: Callable[[], Any]) -> None:
        """Run a maintenance job under its lease; skip it when another worker is running it now."""
        lease = self.store.lease(f"maintenance:{job}", stop=self._stop.is_set)
        try:
            lease.acquire(timeout=0)
        except LockTimeout:
            return
        try:
            run()
        finally:
            lease.release()

    def schedule_jobs(self) -> None:
        every = self.settings.refresh_every
        self.scheduler.every(DISPATCH_EVERY).seconds.do(self._guarded, self.dispatch).tag("dispatch")
        self.scheduler.every(DISPATCH_EVERY).seconds.do(self._guarded, self.deliver_webhooks).tag("webhooks")
        self.scheduler.every(every).seconds.do(self._guarded, self.refresh_due_tokens).tag("refresh")
        self.scheduler.every(heartbeats.BEAT_EVERY).seconds.do(self._guarded, self.heartbeat).tag("heartbeat")
        self.scheduler.every(MEDIA_CLEANUP_EVERY).minutes.do(self._guarded, self.forget_media).tag("media")
        self.scheduler.every(ANALYTICS_EVERY).seconds.do(self._guarded, self.read_metrics).tag("analytics")
        self.scheduler.every(EXPIRY_EVERY).seconds.do(self._guarded, self.delete_expired).tag("expiry")
        self.scheduler.every(EXPIRY_EVERY).seconds.do(self._guarded, self.fire_plugs).tag("plugs")
        schedule_generators(self.scheduler, self.settings, self.store, self.clock)
        schedule_feeds(self.scheduler, self.settings, self.store, self.clock)

    def _guarded(self, job: Callable[[], Any]) -> None:
        """Run a job; its exception is logged, and the loop goes on.

        A damaged store or a wrong TOKEN_KEY is different: carrying on would fail the
        same way every second, so the worker says so in one line and exits 2.
        """
        if self._stop.is_set():
            return
        try:
            job()
        except BROKEN as exc:
            log.error("tweetbot: %s", one_line(exc))
            self.exit_code = 2
            self._stop.set()
        except StoreUnreachable:  # the store says so once a minute; the next round tries again
            pass
        except StoreError as exc:
            log.error("job %s failed: %s", job.__name__, one_line(exc))
        except Exception:
            log.exception("job %s failed; the worker carries on", job.__name__)

    # -- loop ----------------------------------------------------------------------------

    def run(self) -> int:
        """Run until a signal asks us to stop; the exit code."""
        self._install_signal_handlers()
        if not self._store_ready():
            return self.exit_code
        self._warn_if_restored()
        self._wait_for_sandbox()
        self.schedule_jobs()
        log.info("started (refresh every %ss, margin %ss)", self.settings.refresh_every,
                 self.settings.refresh_margin)
        try:
            self.scheduler.run_all()  # a fresh start checks everything at once
            while not self._stop.is_set():
                self.scheduler.run_pending()
                self._stop.wait(self._idle_seconds())
        finally:
            self.dispatcher.shutdown()
            self.webhooks.shutdown()
            self.scheduler.clear()
            log.info("stopped")
        if self.exit_code:
            return self.exit_code
        return 0 if self._signals < 2 else 1  # a second signal is an interrupted stop, however it ends

    def _store_ready(self) -> bool:
        """Whether the store can be used: wait while the database cannot be reached (the store says so
        once a minute) or until a signal; a store no wait mends (damaged, a wrong key) exits 2."""
        while not self._stop.is_set():
            try:
                self.store.verify()
                return True
            except BROKEN as exc:
                log.error("tweetbot: %s", one_line(exc))
                self.exit_code = 2
                return False
            except StoreError:
                self._stop.wait(STORE_WAIT_EVERY)
        return False

    def _warn_if_restored(self) -> None:
        """The first worker on a restored copy says what it risks if the original still runs (see heartbeats)."""
        try:
            warning = heartbeats.restored_copy_warning(self.store)
        except StoreError:
            return  # the jobs will say what is wrong with the store
        if warning:
            log.warning("tweetbot: %s", warning)

    def _wait_for_sandbox(self) -> None:
        """With the sandbox as X, wait (at most SANDBOX_WAIT s) until it listens: `tweetbot run` starts it
        beside this worker, and a first refresh refused for a closed port is noise on a new user's first
        screen. Real X is not waited for; a sandbox that never comes is the jobs' to report."""
        if not self.settings.sandbox:
            return
        address = urlsplit(self.settings.api_base)
        host, port = address.hostname or "127.0.0.1", address.port or 80
        deadline = time.monotonic() + SANDBOX_WAIT
        said = False
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                socket.create_connection((host, port), timeout=1).close()
                return
            except OSError:
                if not said:
                    log.info("waiting for the sandbox at %s before the first refresh", self.settings.api_base)
                    said = True
                self._stop.wait(0.2)
        if not self._stop.is_set():
            log.warning("the sandbox at %s does not answer after %s s; carrying on", self.settings.api_base,
                        SANDBOX_WAIT)

    def _idle_seconds(self) -> float:
        idle = self.scheduler.idle_seconds
        return 1.0 if idle is None else min(max(idle, 0.0), 60.0)

    def stop(self) -> None:
        """Finish the job in hand, then leave the loop."""
        self._stop.set()

    def _exit_now(self) -> None:
        self.tokens.wait_for_refreshes(timeout=self.settings.http_timeout + 5)
        os._exit(1)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded (tests, a host program): the owner calls stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            log.warning("second %s: exiting now (after storing any refresh X has answered)", name)
            # Not from this handler: the main thread may be the one holding that refresh.
            threading.Thread(target=self._exit_now, daemon=True).start()
            return
        log.info("%s received: finishing the job in hand, then exiting", name)
        self._stop.set()


