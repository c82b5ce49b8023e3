"""Reading the times people type (`--at`, a CSV's `due_at`) and showing times back to them.

A time without a zone is the operator's wall-clock time (TIMEZONE), because that
is the clock on their wall; a time may name its own zone ("… Europe/Berlin", a
trailing `Z`, `UTC` or `+02:00`). Whatever was typed, the result is an aware UTC
datetime, which is what the store keeps.

Accepted, in the given or the operator's zone:

    2026-12-01 09:00          2026-12-01T09:00:00+01:00     2026-12-01T08:00Z
    2026-12-01 09:00 Europe/Berlin                          now
    today 18:30               tomorrow 09:00                mon 09:00 / monday 9:00
    09:00 (the next 09:00)    in 90 minutes / in 2 hours / in 3 days / +90m / +2h

A wall-clock time that does not exist (the hour skipped when clocks go forward)
is refused rather than guessed; one that happens twice (clocks go back) means
the first of the two.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.models import utcnow

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"^(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?$")
_OFFSET = re.compile(r"^(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_IN = re.compile(r"^(?:in\s+|\+\s*)(?P<count>\d+)\s*(?P<unit>[a-z]+)$")  # "in 3 minutes", "+3m"
_UNITS = {"m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
          "h": "hours", "hour": "hours", "hours": "hours", "d": "days", "day": "days", "days": "days"}

MAX_AHEAD_YEARS = 100
MAX_AHEAD = timedelta(days=round(365.25 * MAX_AHEAD_YEARS))  # later is a typo, and near year 9999 sums overflow
EXAMPLES = ('"2026-12-01 09:00", "tomorrow 09:00", "mon 09:00", "now", "in 2 hours" or "+2h", '
            'optionally followed by a zone')


class WhenError(ValueError):
    """The text is not a time we understand; the message says what was expected."""


def parse_when(text: str, zone: tzinfo | str, now: datetime) -> datetime:
    """The moment `text` names, as an aware UTC datetime.

    `zone` is the operator's time zone, used when the text names none; `now`
    (aware) anchors "today", "tomorrow", weekdays and "in …". Whether the moment
    is in the past is for the caller (the queue) to judge.
    """
    home = ZoneInfo(zone) if isinstance(zone, str) else zone
    cleaned = " ".join(text.split())
    if not cleaned:
        raise WhenError(f"no time given: expected {EXAMPLES}")
    words, named = _split_zone(cleaned)
    body = " ".join(words)
    try:
        try:
            moment = _parse_body(body.lower(), body, named or home, now).astimezone(timezone.utc)
        except OverflowError:  # past datetime's year 1 or 9999, or a timedelta beyond its range
            raise WhenError(f"out of range: tweetbot takes times from now to {MAX_AHEAD_YEARS} years ahead") from None
        if named is not None and _names_own_offset(body):
            raise WhenError("it names two time zones")
        if moment - now > MAX_AHEAD:
            raise WhenError(f"too far ahead: tweetbot takes times from now to {MAX_AHEAD_YEARS} years ahead")
    except WhenError as exc:
        raise WhenError(f"{text.strip()!r}: {exc}") from None
    return moment


def zone_named(name: str) -> tzinfo | None:
    """The zone a word names (`Europe/Berlin`, `UTC`, `Z`, `+02:00`, `-0500`), or None."""
    if name.upper() in ("Z", "UTC", "GMT"):
        return timezone.utc
    offset = _OFFSET.match(name)
    if offset:
        span = timedelta(hours=int(offset["hours"]), minutes=int(offset["minutes"]))
        return timezone(span if offset["sign"] == "+" else -span)
    if not re.match(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$", name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_wall_time(day: date, clock: time, zone: tzinfo, strict: bool = True) -> datetime:
    """`clock` on `day` in `zone`, as an aware datetime.

    When the clocks go forward that wall time does not exist: `strict` refuses
    it (a person typed it and should choose), otherwise it moves forward by the
    gap (02:30 becomes 03:30), as alarm clocks do. When the clocks go back it
    exists twice and means the first (fold=0).
    """
    moment = datetime.combine(day, clock, tzinfo=zone)
    round_trip = moment.astimezone(timezone.utc).astimezone(zone)
    if round_trip.replace(tzinfo=None) != moment.replace(tzinfo=None):
        if strict:
            raise WhenError(f"{day.isoformat()} {clock.strftime('%H:%M')} does not exist in {zone_label(zone)} "
                            "(the clocks go forward then)")
        return round_trip
    return moment


def zone_label(zone: tzinfo) -> str:
    """A zone's name as a person would type it."""
    return getattr(zone, "key", None) or str(zone)


def format_local(moment: datetime | None, zone: tzinfo | str) -> str:
    """`moment` on the operator's clock, e.g. "2026-12-01 09:00 CET"; "-" for none."""
    if moment is None:
        return "-"
    local = moment.astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or zone_label(local.tzinfo))  # type: ignore[arg-type]


def format_utc(moment: datetime | None) -> str:
    """`moment` in UTC as a person reads it, "2026-12-02 14:05 UTC", for a message written where the
    operator's zone is not at hand (the worker's hold and retry reasons, kept on the post)."""
    return format_local(moment, timezone.utc)


def relative(moment: datetime | None, now: datetime | None = None) -> str:
    """How far `moment` is from `now` (the clock's, unless given), for people: "in 1 h 42 min", "3 min ago",
    or "never"."""
    if moment is None:
        return "never"
    seconds = (moment - (now or utcnow())).total_seconds()
    if abs(seconds) < 1:
        return "just now"  # not "in 0 s" for a refresh that happened as the line was printed
    span = spoken_span(abs(seconds))
    return f"in {span}" if seconds >= 0 else f"{span} ago"


def spoken_span(seconds: float) -> str:
    """A span as people say it: "40 s", "12 min", "2 h", "1 h 30 min". From a minute up, to the nearest
    minute, not the last whole one: "in 3 minutes", said a moment later, is still "3 min"."""
    if seconds < 60:
        return f"{round(seconds)} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


# -- the parts of the grammar ---------------------------------------------------------


def _split_zone(text: str) -> tuple[list[str], tzinfo | None]:
    """The words before a trailing zone, and that zone (None when the text names none)."""
    words = text.split(" ")
    if len(words) > 1:
        named = zone_named(words[-1])
        if named is not None:
            return words[:-1], named
        if "/" in words[-1]:
            raise WhenError(f"{text!r}: {words[-1]!r} is not a time zone (expected e.g. Europe/Berlin or UTC)")
    return words, None


def _parse_body(lowered: str, body: str, zone: tzinfo, now: datetime) -> datetime:
    if lowered == "now":
        return now
    relative = _IN.match(lowered)
    if relative:
        unit = _UNITS.get(relative["unit"])
        if unit is None:
            raise WhenError(f"{relative['unit']!r} is not a unit (expected minutes, hours or days)")
        return now + timedelta(**{unit: int(relative["count"])})
    if _DATE_ONLY.match(lowered):
        raise WhenError("a date needs a time of day too, e.g. " + f'"{body} 09:00"')
    absolute = _iso(body, zone)
    if absolute is not None:
        return absolute
    words = lowered.split(" ")
    if len(words) == 1 and _CLOCK.match(words[0]):
        return _next_time_of_day(_clock(words[0]), zone, now)
    if len(words) == 2:
        day_word, clock_text = words
        clock = _clock(clock_text)
        today = now.astimezone(zone).date()
        if day_word == "today":
            return local_wall_time(today, clock, zone)
        if day_word == "tomorrow":
            return local_wall_time(today + timedelta(days=1), clock, zone)
        if day_word == "yesterday":  # understood, so that the queue can say it is in the past
            return local_wall_time(today - timedelta(days=1), clock, zone)
        weekday = _weekday(day_word)
        if weekday is not None:
            return _next_weekday(weekday, clock, zone, now)
    raise WhenError(f"not a time we understand: expected {EXAMPLES}")


def _names_own_offset(body: str) -> bool:
    """Whether an ISO date-time carries its own `Z` or offset."""
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}[T ].*(Z|[+-]\d{2}:?\d{2})$", body, re.IGNORECASE))


def _iso(body: str, zone: tzinfo) -> datetime | None:
    """An ISO 8601 date-time (with a space or a T); naive ones are on `zone`'s clock."""
    if not re.match(r"^\d{4}-\d{2}-\d{2}[T ]", body, re.IGNORECASE):
        return None
    try:
        parsed = datetime.fromisoformat(body[:10] + "T" + body[11:].upper())
    except ValueError:
        raise WhenError("not a valid date and time (expected e.g. 2026-12-01 09:00)") from None
    if parsed.tzinfo is not None:
        return parsed
    return local_wall_time(parsed.date(), parsed.time(), zone)


_TWELVE_HOUR = re.compile(r"^(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<half>[ap])\.?m\.?$", re.IGNORECASE)


def clock_expected(text: str) -> str:
    """What a time of day is written as, for a refusal of `text`: "HH:MM on a 24-hour clock, e.g. 09:00";
    a 12-hour time ("9am", "9:30 pm") gets its 24-hour spelling as the example."""
    twelve = _TWELVE_HOUR.match(text.strip())
    if twelve and 1 <= int(twelve["hour"]) <= 12 and int(twelve["minute"] or 0) <= 59:
        hour = int(twelve["hour"]) % 12 + (12 if twelve["half"].lower() == "p" else 0)
        return f"HH:MM on a 24-hour clock: {hour:02d}:{twelve['minute'] or '00'} for {text.strip()}"
    return "HH:MM on a 24-hour clock, e.g. 09:00 or 17:30"


def _clock(text: str) -> time:
    match = _CLOCK.match(text)
    if not match:
        raise WhenError(f"{text!r} is not a time of day (expected {clock_expected(text)})")
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise WhenError(f"{text!r} is not a time of day (expected HH:MM, 00:00 to 23:59)")
    return time(hour, minute, second)


def _weekday(word: str) -> int | None:
    """Monday = 0; "mon", "monday" (and "tues", "thurs"…) all name one."""
    for index, (short, full) in enumerate(zip(WEEKDAYS, _FULL_WEEKDAYS, strict=True)):
        if word == short or (len(word) >= 3 and full.startswith(word)):
            return index
    return None


def _next_time_of_day(clock: time, zone: tzinfo, now: datetime) -> datetime:
    """The first `clock` on `zone`'s wall after `now` (today if still ahead, else tomorrow)."""
    today = now.astimezone(zone).date()
    for day in (today, today + timedelta(days=1)):
        moment = local_wall_time(day, clock, zone)
        if moment > now:
            return moment
    raise AssertionError("unreachable: tomorrow's time is always ahead")


def _next_weekday(weekday: int, clock: time, zone: tzinfo, now: datetime) -> datetime:
    """The first `clock` on that weekday after `now`: today when today is that day and the time is ahead."""
    today = now.astimezone(zone).date()
    for ahead in range(8):
        day = today + timedelta(days=ahead)
        if day.weekday() == weekday:
            moment = local_wall_time(day, clock, zone)
            if moment > now:
                return moment
    raise AssertionError("unreachable: a weekday comes round within 8 days")
