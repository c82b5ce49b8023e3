"""The worker: one `schedule.Scheduler` that keeps tokens fresh and posts what is due.

It sleeps until the next job is due. One job's exception is logged with its
traceback and never stops the loop. SIGTERM or SIGINT only sets a flag: the
job in hand finishes (a refresh is stored, not abandoned) and the loop exits 0;
a second signal exits at once. A PaaS sends SIGTERM and kills 30 s later.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import schedule

from bot import alerts
from bot.generators import schedule_generators
from bot.models import from_iso, to_iso, utcnow
from bot.posting import Dispatcher, this_worker
from bot.retention import forget_finished_media
from bot.settings import Settings
from bot.store import BROKEN, Repository, StoreError
from bot.tokens import TokenKeeper
from bot.xclient import XClient

log = logging.getLogger("tweetbot.worker")


def one_line(exc: BaseException) -> str:
    """An error's message on one line, for a log or a terminal."""
    return " ".join(str(exc).split()) or type(exc).__name__

HEARTBEAT_EVERY = 30  # seconds; the web's /healthz alarms after 120
WORKERS_KEY = "workers"  # meta: {worker name: its last heartbeat}
FORGET_WORKER_AFTER = timedelta(days=1)
DISPATCH_EVERY = 1
MEDIA_CLEANUP_EVERY = 60  # minutes: retention is counted in days, so an hour late is never late


class Worker:
    """The long-running process behind `tweetbot worker`."""

    def __init__(self, settings: Settings, store: Repository, x: XClient,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.tokens = TokenKeeper(store, x, timedelta(seconds=settings.refresh_margin), clock)
        self._stop = threading.Event()
        self.worker_id = this_worker()
        self.dispatcher = Dispatcher(settings, store, x, self.tokens, clock, should_stop=self._stop.is_set,
                                     worker_id=self.worker_id)
        self.scheduler = schedule.Scheduler()
        self._signals = 0
        self.exit_code = 0

    # -- jobs ------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Say this worker is alive: its own beat (`tweetbot accounts` lists the workers) and the
        newest beat of any worker (what `/healthz` reads)."""
        now = self.clock()
        with self.store.transaction():
            workers = {name: beat for name, beat in (self.store.get_meta(WORKERS_KEY) or {}).items()
                       if _within(beat, now, FORGET_WORKER_AFTER)}
            workers[self.worker_id] = to_iso(now)
            self.store.set_meta(WORKERS_KEY, workers)
            self.store.set_meta("worker_heartbeat", to_iso(now))

    def refresh_due_tokens(self) -> None:
        self.tokens.refresh_all_due(should_stop=self._stop.is_set)
        alerts.notify_changes(self.store, self.settings.alert_webhook_url, self.settings.http_timeout)

    def dispatch(self) -> None:
        self.dispatcher.dispatch_due()

    def forget_media(self) -> None:
        """Delete the stored media no post needs any more (MEDIA_RETENTION_DAYS after it finished)."""
        retention = timedelta(days=self.settings.media_retention_days)
        deleted = forget_finished_media(self.store, self.clock(), retention)
        if deleted:
            log.info("deleted %s media file(s) of posts finished over %s day(s) ago", deleted,
                     self.settings.media_retention_days)

    def schedule_jobs(self) -> None:
        every = self.settings.refresh_every
        self.scheduler.every(DISPATCH_EVERY).seconds.do(self._guarded, self.dispatch).tag("dispatch")
        self.scheduler.every(every).seconds.do(self._guarded, self.refresh_due_tokens).tag("refresh")
        self.scheduler.every(HEARTBEAT_EVERY).seconds.do(self._guarded, self.heartbeat).tag("heartbeat")
        self.scheduler.every(MEDIA_CLEANUP_EVERY).minutes.do(self._guarded, self.forget_media).tag("media")
        schedule_generators(self.scheduler, self.settings, self.store, self.clock)

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
        except StoreError as exc:  # the database unreachable for a moment: the next round tries again
            log.error("job %s failed: %s", job.__name__, one_line(exc))
        except Exception:
            log.exception("job %s failed; the worker carries on", job.__name__)

    # -- loop ----------------------------------------------------------------------------

    def run(self) -> int:
        """Run until a signal asks us to stop; the exit code."""
        self._install_signal_handlers()
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
            self.scheduler.clear()
            log.info("stopped")
        if self.exit_code:
            return self.exit_code
        return 0 if self._signals < 2 else 1  # a second signal is an interrupted stop, however it ends

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


def _within(beat: str, now: datetime, span: timedelta) -> bool:
    moment = from_iso(beat)
    return moment is not None and now - moment < span


def known_workers(store: Repository) -> dict[str, datetime]:
    """Every worker heard from in the last day, and its last heartbeat."""
    beats = store.get_meta(WORKERS_KEY) or {}
    return {name: moment for name, beat in sorted(beats.items()) if (moment := from_iso(beat)) is not None}
