"""Slots: the times in a week an account posts at, as in Buffer.

An operator writes them once (`tweetbot slots set @u "mon-fri 09:00,13:00; sat 11:00"
--tz Europe/Berlin`); a post queued without a time then takes the account's next
slot that no queued post holds. Slots are wall-clock times in the schedule's own
zone, so a 09:00 slot stays at 09:00 on the account's clock when daylight saving
starts or ends: 08:00 UTC in Berlin's winter, 07:00 UTC in its summer. A slot in
the hour the clocks skip moves forward by the gap (02:30 becomes 03:30); a slot
in the hour that happens twice is the first of the two.

The store keeps, per account, `{"spec": text, "tz": zone, "slots": [[day, "HH:MM"], …]}`:
`spec` and `tz` are what the operator wrote (and what is parsed back), `slots`
lets a page show the week without parsing.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from bot.models import to_iso, utcnow
from bot.refusals import NoSlots, QueueError
from bot.store import Repository
from bot.when import WEEKDAYS, clock_expected, local_wall_time, zone_label, zone_named

_DAY_NAMES = {name: index for index, name in enumerate(WEEKDAYS)}
_DAY_NAMES.update({full: index for index, full in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))})
_DAY_SETS = {"daily": range(7), "everyday": range(7), "weekdays": range(5), "weekends": range(5, 7)}
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


class SlotSpecError(QueueError):
    """The slot text cannot be read; the message points at the part that is wrong."""

    kind = "slots"


class NextSlot:
    """A post's time asked as "the account's next free slot" (`NEXT_SLOT`), found when it is queued."""

    def __repr__(self) -> str:
        return "NEXT_SLOT"


NEXT_SLOT = NextSlot()


@dataclass(frozen=True, order=True)
class Slot:
    """One weekly time: `weekday` (Monday = 0) at `clock` on the schedule's zone's wall."""

    weekday: int
    clock: time

    def label(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {self.clock.strftime('%H:%M')}"


@dataclass(frozen=True)
class SlotSchedule:
    """An account's weekly slots in one time zone."""

    spec: str
    zone: str
    slots: tuple[Slot, ...]

    def times_after(self, after: datetime) -> Iterator[datetime]:
        """Every slot time strictly after `after`, earliest first, as aware UTC datetimes (endless)."""
        zone = ZoneInfo(self.zone)
        day = after.astimezone(zone).date() - timedelta(days=1)  # a slot late yesterday may still be ahead in UTC
        while True:
            todays = sorted({local_wall_time(day, slot.clock, zone, strict=False).astimezone(timezone.utc)
                             for slot in self.slots if slot.weekday == day.weekday()})
            yield from (moment for moment in todays if moment > after)
            day += timedelta(days=1)

    def to_doc(self) -> dict[str, Any]:
        return {"spec": self.spec, "tz": self.zone,
                "slots": [[WEEKDAYS[s.weekday], s.clock.strftime("%H:%M")] for s in self.slots]}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> SlotSchedule:
        return parse_slots(doc["spec"], doc["tz"])


def parse_slots(text: str, tz: str | None = None, default_tz: str = "UTC") -> SlotSchedule:
    """Read `"mon-fri 09:00,13:00; sat 11:00"` (groups split by `;`) into a schedule.

    Days are `mon`…`sun` or full names, ranges (`mon-fri`, `fri-mon` wraps),
    lists (`mon,wed`), `daily`, `weekdays`, `weekends`; a group without days
    means every day. The zone is `tz`, or one the text ends with
    (`… 13:00 Europe/Berlin`), or `default_tz`; `tz` and a different zone in
    the text is refused rather than one silently winning.
    """
    words = text.split()
    named = zone_named(words[-1]) if words else None
    if named is not None:
        words = words[:-1]
        text_zone = zone_label(named)
        if tz is not None and tz != text_zone:
            raise SlotSpecError(f"the text says {text_zone} but --tz says {tz}: give one zone")
        tz = text_zone
    zone = tz or default_tz
    if zone.upper() in ("UTC", "Z", "GMT"):
        zone = "UTC"
    if not isinstance(zone_named(zone), ZoneInfo) and zone != "UTC":
        # A fixed offset follows no daylight-saving rule, so "09:00" would drift on the owner's clock.
        raise SlotSpecError(f"{zone!r} is not a named time zone (expected e.g. Europe/Berlin or UTC)")
    spec = " ".join(words)
    slots: set[Slot] = set()
    for group in (g.strip() for g in spec.split(";")):
        if group:
            slots.update(_parse_group(group))
    if not slots:
        raise SlotSpecError('no slots given: expected e.g. "mon-fri 09:00,13:00; sat 11:00"')
    return SlotSchedule(spec=spec, zone=zone, slots=tuple(sorted(slots)))


def _parse_group(group: str) -> list[Slot]:
    """`mon-fri 09:00, 13:00` → a slot for each day and time."""
    tokens = [t for t in re.split(r"[\s,]+", group.lower()) if t]
    days: set[int] = set()
    clocks: list[time] = []
    for token in tokens:
        if _CLOCK.match(token):
            clocks.append(_clock(token, group))
        elif token[:1].isdigit():  # "9am", "9", "9.30": a time written another way, not a day
            raise SlotSpecError(f"in {group!r}: {token!r} is not a time we understand "
                                f"(expected {clock_expected(token)})")
        elif clocks:
            raise SlotSpecError(f"in {group!r}: days come before times ({token!r} follows a time)")
        else:
            days.update(_days(token, group))
    if not clocks:
        raise SlotSpecError(f"in {group!r}: no time of day (expected HH:MM, e.g. 09:00)")
    return [Slot(day, clock) for day in sorted(days or range(7)) for clock in clocks]


def _days(token: str, group: str) -> Sequence[int]:
    if token in _DAY_SETS:
        return list(_DAY_SETS[token])
    if "-" in token:
        first, _, last = token.partition("-")
        start, end = _day(first, group), _day(last, group)
        return [(start + step) % 7 for step in range((end - start) % 7 + 1)]
    return [_day(token, group)]


def _day(word: str, group: str) -> int:
    if word not in _DAY_NAMES:
        raise SlotSpecError(f"in {group!r}: {word!r} is not a day "
                            "(expected mon…sun, mon-fri, daily, weekdays, weekends)")
    return _DAY_NAMES[word]


def _clock(token: str, group: str) -> time:
    hour, minute = (int(part) for part in _CLOCK.match(token).groups())  # type: ignore[union-attr]
    if hour > 23 or minute > 59:
        raise SlotSpecError(f"in {group!r}: {token!r} is not a time of day (00:00 to 23:59)")
    return time(hour, minute)


# -- the store ------------------------------------------------------------------------


def load_slots(store: Repository, account_id: str) -> SlotSchedule | None:
    """The account's slots, or None when it has none (never set, or cleared)."""
    doc = store.get_schedule(account_id)
    if not doc or not doc.get("spec"):
        return None
    return SlotSchedule.from_doc(doc)


def save_slots(store: Repository, account_id: str, schedule: SlotSchedule) -> None:
    store.save_schedule(account_id, {**schedule.to_doc(), "updated_at": to_iso(utcnow())})


def clear_slots(store: Repository, account_id: str) -> None:
    """Forget the account's slots (the contract has no delete: an empty spec means none)."""
    store.save_schedule(account_id, {"spec": "", "tz": "UTC", "slots": [], "updated_at": to_iso(utcnow())})


def free_slots(store: Repository, account_id: str, now: datetime,
               also_taken: Collection[datetime] = (), ignoring: int | None = None) -> Iterator[datetime]:
    """The account's slot times after `now` that no queued post of the account holds, earliest first.

    `also_taken` are times a caller is about to fill (a CSV being imported), so
    one batch does not put two posts in one slot; the post `ignoring` (one being edited)
    holds none. `NoSlots` when the account has no slots.
    """
    schedule = load_slots(store, account_id)
    if schedule is None:
        account = store.get_account(account_id)
        return open_slots(None, account.handle if account else account_id, now, ())
    taken = {post.due_at for post in store.queued_posts(account_id) if post.id != ignoring}
    return open_slots(schedule, account_id, now, taken | set(also_taken))


def open_slots(schedule: SlotSchedule | None, handle: str, now: datetime,
               taken: Collection[datetime]) -> Iterator[datetime]:
    """`schedule`'s times after `now` but those `taken`, earliest first; `NoSlots` (naming `handle`) without
    a schedule. The rule itself, apart from the store: the remote CLI applies it to what the API answers."""
    if schedule is None:
        raise no_slots(handle)
    return (moment for moment in schedule.times_after(now) if moment not in taken)


def no_slots(handle: str) -> NoSlots:
    """The refusal of a post asked for the next free slot of an account (`handle`) without slots."""
    return NoSlots(f"{handle} has no slots: set them with `tweetbot slots set {handle} \"mon-fri 09:00\"`")


def next_free_slot(store: Repository, account_id: str, now: datetime) -> datetime:
    """The earliest slot time after `now` not already taken by a queued post of the account."""
    return next(free_slots(store, account_id, now))


__all__ = ["Slot", "SlotSchedule", "SlotSpecError", "NoSlots", "parse_slots", "load_slots",
           "save_slots", "clear_slots", "free_slots", "open_slots", "next_free_slot", "NEXT_SLOT", "NextSlot"]
