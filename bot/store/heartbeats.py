"""Worker heartbeats, kept in the store's meta: each worker's own beat, and the newest of any.

A worker beats every 30 s. `/healthz` and a restore judge a worker alive while the
newest beat is younger than `ALIVE_WITHIN`; `tweetbot accounts` lists every worker
heard from within `FORGOTTEN_AFTER`. A restore never carries the beats of the store
it came from: no worker has run on the restored copy yet. It notes instead where the copy
came from, so that `tweetbot check` and the first worker started on it can warn that the
original, if its worker still runs, holds the same refresh tokens and the same queue.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.models import from_iso, to_iso, utcnow

NEWEST_KEY = "worker_heartbeat"  # meta: the newest beat of any worker (ISO)
WORKERS_KEY = "workers"  # meta: {worker name: its last beat (ISO)}
ALIVE_WITHIN = timedelta(seconds=120)
FORGOTTEN_AFTER = timedelta(days=1)
BEAT_EVERY = 30  # seconds
RESTORED_KEY = "restored"  # meta: {archive, taken_at, restored_at} when this store is a restored backup


class _Meta(Protocol):
    def get_meta(self, key: str, default: Any = None) -> Any: ...
    def set_meta(self, key: str, value: Any) -> None: ...


def beat(store: _Meta, worker: str, now: datetime) -> None:
    """Record `worker`'s beat at `now` (the caller holds a transaction: read, forget the silent, write)."""
    workers = {name: at for name, at in (store.get_meta(WORKERS_KEY) or {}).items()
               if _within(at, now, FORGOTTEN_AFTER)}
    workers[worker] = to_iso(now)
    store.set_meta(WORKERS_KEY, workers)
    store.set_meta(NEWEST_KEY, to_iso(now))


def newest_beat(store: _Meta) -> datetime | None:
    """The newest beat of any worker, or None if no worker ever beat here."""
    return from_iso(store.get_meta(NEWEST_KEY))


def newest_age(store: _Meta, now: datetime | None = None) -> float | None:
    """Seconds since the newest beat, or None."""
    moment = newest_beat(store)
    return None if moment is None else ((now or utcnow()) - moment).total_seconds()


def known_workers(store: _Meta, now: datetime | None = None) -> dict[str, datetime]:
    """Every worker heard from within `FORGOTTEN_AFTER`, and its last beat."""
    now = now or utcnow()
    beats = store.get_meta(WORKERS_KEY) or {}
    return {name: moment for name, at in sorted(beats.items())
            if (moment := from_iso(at)) is not None and now - moment < FORGOTTEN_AFTER}


def forget_all(store: _Meta) -> None:
    """Drop every beat (a restored copy has had no worker yet); a store without beats is left as it is."""
    if store.get_meta(WORKERS_KEY):
        store.set_meta(WORKERS_KEY, {})
    if store.get_meta(NEWEST_KEY) is not None:
        store.set_meta(NEWEST_KEY, None)


def mark_restored(store: _Meta, archive: str, taken_at: datetime | None, now: datetime) -> None:
    """Note that this store is a restored copy of the backup `archive` (taken at `taken_at`), made `now`."""
    store.set_meta(RESTORED_KEY, {"archive": archive, "taken_at": to_iso(taken_at) if taken_at else None,
                                  "restored_at": to_iso(now)})


def restored_copy_warning(store: _Meta) -> str | None:
    """While no worker has run on a restored copy yet: what starting one risks, in words. The store the
    backup was taken from holds the same refresh tokens and the same queue; if a worker still runs there,
    the two spend the same tokens (X then revokes the chain) and send the same posts. None otherwise."""
    restored = store.get_meta(RESTORED_KEY) or {}
    restored_at, newest = from_iso(restored.get("restored_at")), newest_beat(store)
    if restored_at is None or (newest is not None and newest > restored_at):
        return None
    taken_at = from_iso(restored.get("taken_at"))
    taken = f", taken {taken_at:%Y-%m-%d %H:%M} UTC" if taken_at else ""
    return (f"this store was restored {restored_at:%Y-%m-%d %H:%M} UTC from the backup {restored.get('archive')}"
            f"{taken}: if a worker still runs on the store that backup came from, stop it for good before "
            f"starting one here; both would spend the same refresh tokens (X then revokes the chain) "
            f"and send the same posts")


def _within(at: str, now: datetime, span: timedelta) -> bool:
    moment = from_iso(at)
    return moment is not None and now - moment < span
