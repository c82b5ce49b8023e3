"""Generators: recurring jobs that call the operator's Python function and queue what it returns.

They live in `tweetbot.toml` (or the file GENERATORS_FILE names), beside the
module they call:

    [[generator]]
    name = "quote"                 # optional; default: the call
    account = "@alice"
    every = "day at 09:00"         # the schedule library's words: "monday at 08:30", "3 hours", "hour at :15"
    tz = "Europe/Berlin"           # optional; default: TIMEZONE
    call = "myposts:daily_quote"   # module:function, the module found beside the file

The function takes no argument and returns a string (one post), a list of
strings (a thread), or None (nothing this time; an empty list means the same).
To attach media it returns a dict: `{"text": str or list of str, "media": [path or
bytes, …], "alt": [str, …]}`; the media go on the first part, a path is read
relative to the file's folder, and the n-th alt text belongs to the n-th file. The
same dict takes the post options under X's names (`bot.post_options`: "poll",
"reply_settings", "community_id", "made_with_ai", "paid_partnership", "reply_to",
"quote_tweet_id").
What it returns goes through `bot.queue` like any other post, due at once.

A generator must never take the worker down: its exception, a refused post
(too long, unknown account) or a return value of the wrong type is logged with
its traceback and recorded as a `generator_failed` event. A broken entry in the
file is reported the same way at start-up and skipped; the other generators and
the rest of the worker go on.

The jobs run on the worker's `schedule.Scheduler`, in the worker's thread, so a
slow function delays the jobs after it.

Every worker runs every generator, and each run has a key: the generator, its
schedule and the period the run belongs to (the day at 09:00 in its zone, the
three-hour stretch of "3 hours"). The key is written in the transaction that queues
the run's post, so however many workers run it, and however often a worker starts
(each start runs every job once), a period's post is queued once; the function may
be called by each worker, and what the later calls return is dropped.
"""
from __future__ import annotations

import importlib
import logging
import re
import sys
import tomllib
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import schedule

from bot.media_checks import MediaFile, read_file
from bot.models import Post, utcnow
from bot.post_options import NAMES as OPTION_NAMES
from bot.queue import QueueError, draft, save_posts
from bot.settings import Settings
from bot.store import Repository

T = TypeVar("T")

log = logging.getLogger("tweetbot.generators")

FAILED_EVENT = "generator_failed"
SOURCE = "generator"
TAG = "generator"
_KEYS = {"name", "account", "every", "tz", "call"}
_CALL = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_EVERY = re.compile(r"^(?:every\s+)?(?:(?P<count>\d+)\s+)?(?P<unit>[a-z]+)(?:\s+at\s+(?P<at>\S+))?$")
_UNITS = {"second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks",
          "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_ELAPSED = {"second": 1, "minute": 60, "hour": 3600}  # units of elapsed time (their plurals too)


class GeneratorConfigError(ValueError):
    """An entry of the generators file cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class GeneratorSpec:
    """One `[[generator]]` entry, checked."""

    name: str
    account: str
    every: str
    tz: str
    call: str
    folder: Path  # where the file is: the called module is looked for there

    def describe(self) -> str:
        return f"generator {self.name!r} ({self.call}, every {self.every} {self.tz}, for {self.account})"


class _WallClockZone(ZoneInfo):
    """A zoneinfo zone the schedule library can use without pytz.

    `Job.at(time, tz)` imports pytz, which tweetbot does not depend on, and then
    calls the zone's `normalize` after each date step to repair pytz's fixed
    offsets. A zoneinfo zone recomputes the offset from the wall time by
    itself, so normalizing is a no-op: 09:00 stays 09:00 across DST changes.
    """

    def normalize(self, moment: datetime) -> datetime:
        return moment


# -- the file ----------------------------------------------------------------------------


def generators_path(settings: Settings) -> Path:
    """The generators file: GENERATORS_FILE, else `tweetbot.toml` in the working folder."""
    return settings.generators_file


def file_entries(path: Path, table: str, what: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The file's `[[table]]` entries, or why there are none to use (`what`: "generators", "feeds"); no
    file: none, and nothing said."""
    if not path.is_file():
        return [], []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        return [], [f"{path}: cannot be read: {exc}"]
    entries = data.get(table, [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        return [], [f"{path}: {what} are written as [[{table}]] tables"]
    return entries, []


def file_specs(path: Path, table: str, what: str, build: Callable[[dict[str, Any]], T],
               label: Callable[[dict[str, Any]], str]) -> tuple[list[T], list[str]]:
    """What `build` makes of each of the file's `[[table]]` entries, and a message naming each entry it
    refused (`GeneratorConfigError`) by its number and `label`, or why the file gives none."""
    entries, unread = file_entries(path, table, what)
    if unread:
        return [], unread
    specs: list[T] = []
    problems: list[str] = []
    for number, entry in enumerate(entries, start=1):
        try:
            specs.append(build(entry))
        except GeneratorConfigError as exc:
            problems.append(f"{path}: {table} {number} ({label(entry) or 'unnamed'}): {exc}")
    return specs, problems


def load_generators(path: Path, default_tz: str = "UTC") -> tuple[list[GeneratorSpec], list[str]]:
    """The usable entries of the file and a message for each unusable one (no file: none of either)."""
    folder = path.resolve().parent
    return file_specs(path, "generator", "generators", lambda entry: _spec(entry, default_tz, folder),
                      lambda entry: entry.get("name") or entry.get("call") or "")


def _spec(entry: dict[str, Any], default_tz: str, folder: Path) -> GeneratorSpec:
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise GeneratorConfigError(f"unknown key(s) {', '.join(unknown)} (expected {', '.join(sorted(_KEYS))})")
    for key in ("account", "every", "call"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise GeneratorConfigError(f"{key!r} is missing (a string)")
    call = entry["call"].strip()
    if not _CALL.match(call):
        raise GeneratorConfigError(f"call = {call!r} is not \"module:function\"")
    tz = entry.get("tz") or default_tz
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise GeneratorConfigError(f"tz = {tz!r} is not a time zone (expected e.g. Europe/Berlin)") from None
    spec = GeneratorSpec(name=str(entry.get("name") or call), account=entry["account"].strip(),
                         every=" ".join(entry["every"].lower().split()), tz=tz, call=call, folder=folder)
    job_for(schedule.Scheduler(), spec)  # a trial on a throwaway scheduler: the library judges `every`
    return spec


class Timed(Protocol):
    """What a job is scheduled by: the schedule library's words and a time zone (a generator, a feed)."""

    @property
    def every(self) -> str: ...
    @property
    def tz(self) -> str: ...


def job_for(scheduler: schedule.Scheduler, spec: Timed) -> schedule.Job:
    """An unstarted job on `scheduler` for `spec.every` in `spec.tz` (no function attached yet)."""
    match = _EVERY.match(spec.every)
    if not match or match["unit"] not in _UNITS:
        raise GeneratorConfigError(f"every = {spec.every!r} is not the schedule library's words "
                                   "(e.g. \"day at 09:00\", \"monday at 08:30\", \"3 hours\", \"hour at :15\")")
    try:
        job: schedule.Job = getattr(scheduler.every(int(match["count"] or 1)), match["unit"])
        if match["at"]:
            job = job.at(match["at"])
    except schedule.ScheduleError as exc:
        raise GeneratorConfigError(f"every = {spec.every!r}: {exc}") from None
    job.at_time_zone = _WallClockZone(spec.tz)  # type: ignore[assignment]  # typed there as pytz-only
    return job


# -- running ---------------------------------------------------------------------------------


def schedule_generators(scheduler: schedule.Scheduler, settings: Settings, store: Repository,
                        clock: Callable[[], datetime] = utcnow) -> list[schedule.Job]:
    """Register every usable generator of the file on the worker's scheduler; the jobs.

    Never raises: an unusable entry is logged and recorded as `generator_failed`
    and left out; a call that cannot be imported yet is reported the same way
    but keeps its job (the module may appear before the job is due).
    """
    path = generators_path(settings)
    specs, problems = load_generators(path, settings.timezone)
    for problem in problems:
        log.error("%s; this generator is skipped", problem)
        _record_failure(store, None, problem, clock)
    jobs: list[schedule.Job] = []
    for spec in specs:
        job = job_for(scheduler, spec).do(run_generator, spec, store, clock, settings.x_tier).tag(TAG, spec.name)
        jobs.append(job)
        try:
            resolve_call(spec.call, spec.folder)
        except Exception as exc:
            report_failure(store, spec, exc, clock, when="at start-up")
        log.info("%s registered; next run %s", spec.describe(), job.next_run)
    return jobs


def run_key(spec: GeneratorSpec, moment: datetime) -> str:
    """The key of the run at `moment`: the generator, its schedule, and the period of its schedule
    that `moment` falls in (a span of elapsed time from the epoch, or days and weeks in its zone)."""
    match = _EVERY.match(spec.every)
    assert match is not None  # checked when the file was loaded
    count, unit = int(match["count"] or 1), match["unit"].rstrip("s")
    if unit in _ELAPSED:
        span = count * _ELAPSED[unit]
        start = datetime.fromtimestamp(moment.timestamp() // span * span, timezone.utc)
        period = start.isoformat(timespec="seconds")
    else:
        day = moment.astimezone(ZoneInfo(spec.tz)).date()
        days = count if unit == "day" else 7 * count
        monday = day - timedelta(days=0 if unit == "day" else day.weekday())
        period = f"day {monday.toordinal() // days * days}"
    return f"{spec.name}|{spec.every}|{spec.tz}|{period}"


def run_generator(spec: GeneratorSpec, store: Repository,
                  clock: Callable[[], datetime] = utcnow, tier: str = "payg") -> Post | None:
    """Call the function and queue what it returns, due now, once per run key (see the module); the
    post, or None (nothing returned, or this period's post queued already). Never raises an Exception."""
    now = clock()
    try:
        produced = resolve_call(spec.call, spec.folder)()
        returned = returned_post(produced, spec.folder or Path("."))
        if returned is None:
            log.info("%s returned nothing to post", spec.describe())
            return None
        parts, media, options = returned
        drafted = draft(store, spec.account, parts, due_at=now, now=now, source=SOURCE, media=media,
                        options=options, tier=tier)
        queued = save_posts(store, [drafted], run_key=run_key(spec, now))
    except Exception as exc:
        report_failure(store, spec, exc, clock)
        return None
    if not queued:
        log.info("%s: this period's post is queued already (by another worker, or before a restart)",
                 spec.describe())
        return None
    post = queued[0]
    log.info("%s queued post %s (%d part%s)", spec.describe(), post.id, len(post.parts),
             "s" if len(post.parts) != 1 else "")
    return post


Returned = tuple[Sequence[str], list[list[MediaFile]], dict[str, Any]]


def returned_post(produced: object, folder: Path) -> Returned | None:
    """A function's result as a post's parts, media and options (a string, a list of strings, a dict
    with media and X's option names, or None for nothing)."""
    if not isinstance(produced, dict):
        parts = returned_parts(produced)
        return None if parts is None else (parts, [], {})
    unknown = sorted(set(produced) - {"text", "media", "alt", *OPTION_NAMES})
    if unknown:
        raise TypeError(f"returned a dict with {', '.join(map(repr, unknown))}; expected text, media, alt and "
                        f"the post options ({', '.join(OPTION_NAMES)})")
    parts = returned_parts(produced.get("text"))
    if parts is None:
        return None
    return (parts, [_returned_media(produced.get("media") or [], produced.get("alt") or [], folder)],
            {name: produced[name] for name in OPTION_NAMES if name in produced})


def _returned_media(media: object, alts: object, folder: Path) -> list[MediaFile]:
    """The dict's `media` (paths or bytes) with its `alt` texts, in order."""
    if not isinstance(media, (list, tuple)) or not isinstance(alts, (list, tuple)):
        raise TypeError("returned media and alt that are not lists")
    if len(alts) > len(media) or not all(isinstance(alt, str) for alt in alts):
        raise TypeError(f"returned {len(alts)} alt texts for {len(media)} media; each alt must be a string")
    files = []
    for number, (item, alt) in enumerate(zip(media, [*alts, *[None] * (len(media) - len(alts))], strict=True), 1):
        if isinstance(item, (bytes, bytearray)):
            files.append(MediaFile(f"media {number}", bytes(item), alt))
        elif isinstance(item, (str, Path)):
            files.append(read_file(folder / item, alt))
        else:
            raise TypeError(f"returned media {number} as {type(item).__name__}; expected a path or bytes")
    return files


def returned_parts(produced: object) -> Sequence[str] | None:
    """A function's result as the parts of a post: a string, a list or tuple of strings, or None for nothing."""
    if produced is None:
        return None
    if isinstance(produced, str):
        return [produced]
    if isinstance(produced, (list, tuple)) and all(isinstance(part, str) for part in produced):
        return list(produced) or None
    raise TypeError(f"returned {type(produced).__name__}; expected a string, a list of strings, or None")


def resolve_call(call: str, folder: Path | None = None) -> Callable[[], object]:
    """The function `module:function` names, importing the module (looked for in `folder` first)."""
    module_name, _, attribute_path = call.partition(":")
    if folder is not None and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    target: Any = importlib.import_module(module_name)
    for attribute in attribute_path.split("."):
        target = getattr(target, attribute)
    if not callable(target):
        raise TypeError(f"{call} is not a function")
    return target


def report_failure(store: Repository, spec: GeneratorSpec, exc: BaseException,
                   clock: Callable[[], datetime] = utcnow, when: str = "") -> None:
    """Log the failure with its traceback and record a `generator_failed` event naming the generator."""
    log.error("%s failed%s", spec.describe(), f" {when}" if when else "", exc_info=exc)
    account = _account_id(store, spec.account)
    where = "" if isinstance(exc, QueueError) else _innermost_frame(exc)  # a refused post's reason says it all
    detail = (f"{spec.name} ({spec.call}){' ' + when if when else ''}: {type(exc).__name__}: {exc}"
              f"{' at ' + where if where else ''}")
    _record_failure(store, account, detail, clock)


def _record_failure(store: Repository, account_id: str | None, detail: str,
                    clock: Callable[[], datetime]) -> None:
    try:
        store.record_event(FAILED_EVENT, account_id, detail=detail, at=clock())
    except Exception:
        log.exception("could not record the generator failure: %s", detail)


def _account_id(store: Repository, handle: str) -> str | None:
    try:
        found = store.find_account(handle)
    except Exception:
        return None
    return found.user_id if found else None


def _innermost_frame(exc: BaseException) -> str:
    """`file:line in function` where the exception was raised, for the event (the log has the whole traceback)."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
              if not frame.filename.startswith("<")]  # importlib's frozen frames say nothing to an operator
    if not frames:
        return ""
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"
