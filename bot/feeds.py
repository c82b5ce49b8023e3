"""Feeds: `[[feed]]` entries of `tweetbot.toml` whose new entries the worker posts (issue 23).

    [[feed]]
    name = "blog"                      # optional; default: the url
    url = "https://example.org/feed.xml"
    account = "@alice"
    template = "{title} {link}"        # optional; also {summary}, {author}
    every = "hour"                     # the generators' words (the schedule library's); default "hour"
    filter = "release|security"        # optional: a regular expression the title or summary must match
    max_new = 5                        # optional: at most this many entries posted per reading

Each reading is a conditional GET (the feed's ETag and Last-Modified sent back: a 304 costs nothing)
and is not repeated before the feed's own `ttl` (RSS) says, however often `every` comes; a feed is
parsed with `feedparser`, so RSS 0.9x–2.0, RSS 1.0 and Atom all work.

A new subscription never floods: its first reading only notes the entries already there, and later
readings post what is new since, at most `max_new` at a time (the newest, oldest first). Each entry is
posted once, across restarts and any number of workers: its post is queued under a run key naming
the feed and the entry (`Repository.add_posts`), in the same transaction as the post itself, and the
entries seen are kept in the store (meta `feed:<name>`). A title too long for a post is cut at a word,
the link kept whole (X counts every link as 23).

A feed that cannot be read (unreachable, an HTTP error, not a feed) is recorded on its state and as a
`generator_failed` event (the dashboard's failures), and read again at its next scheduled time, never
sooner; `tweetbot feeds` shows each feed's state.
"""
from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import feedparser
import requests
import schedule

from bot.generators import FAILED_EVENT, GeneratorConfigError, file_specs, job_for
from bot.models import Post, from_iso, to_iso, utcnow
from bot.queue import QueueError, draft, save_posts
from bot.settings import Settings
from bot.store import Repository
from xtext import fits

log = logging.getLogger("tweetbot.feeds")

SOURCE = "feed"
TAG = "feed"
_KEYS = {"name", "url", "account", "template", "every", "tz", "filter", "max_new"}
DEFAULT_TEMPLATE = "{title} {link}"
SEEN_KEPT = 1000  # entry ids kept per feed: far more than any feed lists at once
FETCH_TIMEOUT = 15.0
USER_AGENT = "tweetbot feed reader"
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class FeedSpec:
    """One `[[feed]]` entry, checked."""

    name: str
    url: str
    account: str
    template: str
    every: str
    tz: str
    filter: str | None
    max_new: int

    def describe(self) -> str:
        return f"feed {self.name!r} ({self.url}, every {self.every}, for {self.account})"

    @property
    def state_key(self) -> str:
        return f"feed:{self.name}"


def load_feeds(path: Path, default_tz: str = "UTC") -> tuple[list[FeedSpec], list[str]]:
    """The usable `[[feed]]` entries of the file and a message for each unusable one (no file: none)."""
    specs, problems = file_specs(path, "feed", "feeds", lambda entry: feed_spec(entry, default_tz),
                                 lambda entry: entry.get("name") or entry.get("url") or "")
    names = [spec.name for spec in specs]
    problems.extend(f"{path}: two feeds are named {name!r}: name them apart" for name in set(names)
                    if names.count(name) > 1)
    return [spec for spec in specs if names.count(spec.name) == 1], problems


def feed_spec(entry: Mapping[str, Any], default_tz: str) -> FeedSpec:
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise GeneratorConfigError(f"unknown key(s) {', '.join(unknown)} (expected {', '.join(sorted(_KEYS))})")
    for key in ("url", "account"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise GeneratorConfigError(f"{key!r} is missing (a string)")
    url = entry["url"].strip()
    if not url.startswith(("http://", "https://")):
        raise GeneratorConfigError(f"url = {url!r} is not an http(s) URL")
    template = str(entry.get("template") or DEFAULT_TEMPLATE)
    try:
        template.format_map(_Fields({}))
    except (ValueError, IndexError) as exc:
        raise GeneratorConfigError(f"template = {template!r}: {exc}") from None
    if entry.get("filter"):
        try:
            re.compile(str(entry["filter"]))
        except re.error as exc:
            raise GeneratorConfigError(f"filter = {entry['filter']!r} is not a regular expression: {exc}") from None
    max_new = entry.get("max_new", 5)
    if not isinstance(max_new, int) or isinstance(max_new, bool) or not 1 <= max_new <= 100:
        raise GeneratorConfigError(f"max_new = {max_new!r} is not a whole number from 1 to 100")
    tz = str(entry.get("tz") or default_tz)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise GeneratorConfigError(f"tz = {tz!r} is not a time zone (expected e.g. Europe/Berlin)") from None
    spec = FeedSpec(name=str(entry.get("name") or url), url=url, account=entry["account"].strip(), template=template,
                    every=" ".join(str(entry.get("every") or "hour").lower().split()), tz=tz,
                    filter=str(entry["filter"]) if entry.get("filter") else None, max_new=max_new)
    job_for(schedule.Scheduler(), spec)  # the schedule library judges `every`
    return spec


class _Fields(dict[str, str]):
    """A template's fields: an entry's, and "" for any other name (a template may name what a feed lacks)."""

    def __missing__(self, key: str) -> str:
        return ""


def entry_fields(entry: Mapping[str, Any]) -> dict[str, str]:
    """What a template may name, from one feedparser entry, as plain one-line text."""
    def plain(value: Any) -> str:
        return " ".join(html.unescape(_TAGS.sub(" ", str(value or ""))).split())
    return {"title": plain(entry.get("title")), "link": str(entry.get("link") or "").strip(),
            "summary": plain(entry.get("summary")), "author": plain(entry.get("author"))}


def post_text(template: str, fields: Mapping[str, str]) -> str:
    """The template filled in; while too long for a post, the summary (then the title) is cut at a word
    with "…", so the link stays whole. The cut is found by halving, not a word at a time: a feed may put
    a whole article in its summary, and each try counts the whole text."""
    values = dict(fields)

    def fits_with(name: str, words: list[str], kept: int) -> bool:
        values[name] = " ".join(words[:kept]) + "…" if kept else ""
        return fits(template.format_map(_Fields(values)).strip())

    for name in ("summary", "title"):
        if fits(template.format_map(_Fields(values)).strip()) or not values.get(name):
            continue
        words = values[name].split()
        fitting, too_many = 0, len(words)  # words kept: 0 is taken whatever it gives, all of them did not fit
        while too_many - fitting > 1:
            middle = (fitting + too_many) // 2
            fitting, too_many = (middle, too_many) if fits_with(name, words, middle) else (fitting, middle)
        fits_with(name, words, fitting)
    return template.format_map(_Fields(values)).strip()


def entry_id(entry: Mapping[str, Any]) -> str:
    return str(entry.get("id") or entry.get("link") or entry.get("title") or "")


@dataclass
class FeedReading:
    """What one reading of a feed did."""

    status: str  # "new" (first reading: entries noted), "unchanged" (304), "read", "waiting" (ttl), "failed"
    queued: list[Post]
    error: str | None = None


def read_feed(spec: FeedSpec, store: Repository, clock: Callable[[], datetime] = utcnow, tier: str = "payg",
              session: requests.Session | None = None) -> FeedReading:
    """Read the feed once (conditionally) and queue its new entries; never raises for the feed's faults."""
    now = clock()
    state = dict(store.get_meta(spec.state_key) or {})
    waits_until = from_iso(state.get("next_read_at"))
    if waits_until is not None and waits_until > now:
        return FeedReading("waiting", [])
    try:
        if session is not None:
            response = _fetch(spec, state, session)
        else:
            with requests.Session() as own:
                response = _fetch(spec, state, own)
    except FeedUnreadable as exc:
        return _failed(spec, store, state, now, str(exc))
    state.update(read_at=to_iso(now), error=None)
    if response.status_code == 304:
        _keep_state(store, spec, state)
        return FeedReading("unchanged", [])
    parsed = feedparser.parse(response.content)
    if parsed.bozo and not parsed.entries:
        return _failed(spec, store, state, now, f"not a feed ({parsed.bozo_exception})")
    state.update(etag=response.headers.get("ETag"), modified=response.headers.get("Last-Modified"))
    ttl = str(parsed.feed.get("ttl") or "").strip()
    state["next_read_at"] = to_iso(now + timedelta(minutes=int(ttl))) if ttl.isdigit() else None
    first = "subscribed_at" not in state
    seen = list(state.get("seen") or [])
    ids = [entry_id(entry) for entry in parsed.entries]
    queued = [] if first else _queue_new(spec, store, [e for e in parsed.entries if entry_id(e) not in seen],
                                         now, tier)
    state.setdefault("subscribed_at", to_iso(now))
    state["seen"] = (seen + [i for i in ids if i not in seen])[-SEEN_KEPT:]
    _keep_state(store, spec, state)
    return FeedReading("new" if first else "read", queued)


class FeedUnreadable(Exception):
    """The feed could not be fetched: unreachable, or an HTTP error."""


def _fetch(spec: FeedSpec, state: Mapping[str, Any], session: requests.Session) -> requests.Response:
    headers = {"User-Agent": USER_AGENT}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("modified"):
        headers["If-Modified-Since"] = state["modified"]
    try:
        response = session.get(spec.url, headers=headers, timeout=FETCH_TIMEOUT)
    except requests.RequestException as exc:
        raise FeedUnreadable(f"cannot be reached ({type(exc).__name__})") from exc
    if response.status_code >= 400:
        raise FeedUnreadable(f"answered HTTP {response.status_code}")
    return response


def _queue_new(spec: FeedSpec, store: Repository, new: list[Any], now: datetime, tier: str) -> list[Post]:
    """The new entries that pass the filter, the newest `max_new` of them, queued oldest first, each once."""
    pattern = re.compile(spec.filter, re.IGNORECASE) if spec.filter else None
    fields = [(entry, entry_fields(entry)) for entry in new]
    wanted = [(entry, found) for entry, found in fields
              if pattern is None or pattern.search(f"{found['title']} {found['summary']}")]
    queued: list[Post] = []
    for entry, found in reversed(wanted[:spec.max_new]):  # a feed lists its newest first
        text = post_text(spec.template, found)
        try:
            drafted = draft(store, spec.account, [text], due_at=now, now=now, source=SOURCE, tier=tier)
            queued.extend(save_posts(store, [drafted], run_key=f"feed|{spec.name}|{entry_id(entry)}"))
        except QueueError as exc:
            _record(store, spec, f"entry {entry_id(entry)!r} was not queued: {exc}", now)
    if queued:
        log.info("%s queued %s new entr%s", spec.describe(), len(queued), "y" if len(queued) == 1 else "ies")
    return queued


def _failed(spec: FeedSpec, store: Repository, state: dict[str, Any], now: datetime, why: str) -> FeedReading:
    state.update(error=why, failed_at=to_iso(now))
    _keep_state(store, spec, state)
    _record(store, spec, why, now)
    return FeedReading("failed", [], why)


def _record(store: Repository, spec: FeedSpec, why: str, now: datetime) -> None:
    log.error("%s: %s; read again at its next time", spec.describe(), why)
    found = store.find_account(spec.account)
    store.record_event(FAILED_EVENT, found.user_id if found else None, detail=f"feed {spec.name}: {why}", at=now)


def _keep_state(store: Repository, spec: FeedSpec, state: dict[str, Any]) -> None:
    with store.transaction():
        store.set_meta(spec.state_key, state)


def feed_state(store: Repository, spec: FeedSpec) -> dict[str, Any]:
    """What the store knows of a feed: when it was read, its error, entries seen (`tweetbot feeds`)."""
    return dict(store.get_meta(spec.state_key) or {})


def schedule_feeds(scheduler: schedule.Scheduler, settings: Settings, store: Repository,
                   clock: Callable[[], datetime] = utcnow) -> list[schedule.Job]:
    """Register every usable feed of the generators file on the worker's scheduler (never raises)."""
    specs, problems = load_feeds(settings.generators_file, settings.timezone)
    for problem in problems:
        log.error("%s; this feed is skipped", problem)
    return [job_for(scheduler, spec).do(_guarded_read, spec, store, clock, settings.x_tier).tag(TAG, spec.name)
            for spec in specs]


def _guarded_read(spec: FeedSpec, store: Repository, clock: Callable[[], datetime], tier: str) -> None:
    try:
        read_feed(spec, store, clock, tier)
    except Exception:
        log.exception("%s: reading it failed; read again at its next time", spec.describe())
