"""Generators: the operator's function, called on the worker's scheduler, its result queued."""
from __future__ import annotations

import logging
import textwrap
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import schedule
from test_queue_support import BotFolder, make_folder, utc

from bot.generators import FAILED_EVENT, GeneratorSpec, run_key, schedule_generators

CLOCK_NOW = utc(2026, 12, 1, 8, 0)

MODULE = '''
    calls = []

    def quote():
        calls.append("quote")
        return "Simplicity is prerequisite for reliability."

    def thread():
        return ["one", "two", "three"]

    def nothing():
        calls.append("nothing")
        return None

    def broken():
        raise RuntimeError("the quote service is down")

    def too_long():
        return "x" * 300

    def a_number():
        return 42
'''

TOML = '''
    [[generator]]
    name = "quote"
    account = "@alice"
    every = "day at 09:00"
    tz = "Europe/Berlin"
    call = "{module}:quote"

    [[generator]]
    account = "@alice"
    every = "monday at 08:30"
    call = "{module}:thread"

    [[generator]]
    account = "alice"
    every = "3 hours"
    call = "{module}:nothing"

    [[generator]]
    name = "broken"
    account = "@alice"
    every = "hour at :15"
    call = "{module}:broken"

    [[generator]]
    name = "too long"
    account = "@alice"
    every = "10 minutes"
    call = "{module}:too_long"

    [[generator]]
    name = "number"
    account = "@alice"
    every = "day at 12:00"
    call = "{module}:a_number"

    [[generator]]
    name = "stranger"
    account = "@carol"
    every = "day at 10:00"
    call = "{module}:quote"
'''


@pytest.fixture
def folder(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> BotFolder:
    """A folder with a generators module (a name unique to the test) and a tweetbot.toml calling it."""
    module = f"gen_{request.node.name.replace('[', '_').replace(']', '_').replace('-', '_')}"
    folder = make_folder(tmp_path, "Europe/Berlin", GENERATORS_FILE=str(tmp_path / "tweetbot.toml"))
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    (tmp_path / "tweetbot.toml").write_text(textwrap.dedent(TOML.format(module=module)), encoding="utf-8")
    folder.connect("alice", "101")
    monkeypatch.syspath_prepend(str(tmp_path))
    return folder


def by_name(jobs: list[schedule.Job]) -> dict[str, schedule.Job]:
    return {str(next(tag for tag in job.tags if tag != "generator")): job for job in jobs}


def test_each_generator_becomes_a_job_in_its_own_words_and_zone(folder: BotFolder) -> None:
    scheduler = schedule.Scheduler()
    jobs = by_name(schedule_generators(scheduler, folder.settings(), folder.store(), lambda: CLOCK_NOW))
    assert scheduler.jobs == list(jobs.values()) and len(jobs) == 7
    quote = jobs["quote"]
    assert (quote.interval, quote.unit, quote.at_time) == (1, "days", time(9, 0))
    assert quote.next_run is not None
    next_in_berlin = quote.next_run.astimezone(ZoneInfo("Europe/Berlin"))  # the library keeps naive local time
    assert (next_in_berlin.hour, next_in_berlin.minute) == (9, 0)
    weekly = next(job for name, job in jobs.items() if name.endswith(":thread"))
    assert (weekly.unit, weekly.start_day, weekly.at_time) == ("weeks", "monday", time(8, 30))
    assert str(weekly.at_time_zone) == "Europe/Berlin"  # no tz given: the operator's TIMEZONE
    every_three = next(job for name, job in jobs.items() if name.endswith(":nothing"))
    assert (every_three.interval, every_three.unit) == (3, "hours")


def test_what_the_functions_return_is_queued_and_failures_are_recorded(
        folder: BotFolder, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = schedule.Scheduler()
    store = folder.store()
    schedule_generators(scheduler, folder.settings(), store, lambda: CLOCK_NOW)
    with caplog.at_level(logging.INFO, logger="tweetbot.generators"):
        scheduler.run_all()  # every job once, now; none is waited for

    queued = sorted(store.queued_posts(), key=lambda p: p.id)
    assert [p.parts for p in queued] == [("Simplicity is prerequisite for reliability.",), ("one", "two", "three")]
    assert all(p.source == "generator" and p.due_at == CLOCK_NOW and p.account_id == "101" for p in queued)

    failures = {event.detail.split(" ")[0]: event for event in store.events(kind=FAILED_EVENT)}
    assert set(failures) == {"broken", "too", "number", "stranger"}
    assert "RuntimeError: the quote service is down at gen_" in failures["broken"].detail
    assert failures["broken"].account_id == "101"
    assert "too long or invalid" in failures["too"].detail
    assert "returned int; expected a string, a list of strings, or None" in failures["number"].detail
    assert "no account @carol" in failures["stranger"].detail
    assert failures["stranger"].account_id is None

    broken_logs = [r for r in caplog.records if "'broken'" in r.getMessage() and r.levelno == logging.ERROR]
    assert broken_logs and broken_logs[0].exc_info is not None  # logged with its traceback
    assert any("returned nothing to post" in r.getMessage() for r in caplog.records)


def test_a_job_run_twice_in_one_period_queues_once_and_none_queues_nothing(folder: BotFolder) -> None:
    store = folder.store()
    clock = [CLOCK_NOW]
    jobs = by_name(schedule_generators(schedule.Scheduler(), folder.settings(), store, lambda: clock[0]))
    jobs["quote"].run()
    jobs["quote"].run()  # a second worker, or a restart, on the same day: its period's post is queued already
    assert [p.text for p in store.queued_posts()] == ["Simplicity is prerequisite for reliability."]
    clock[0] = CLOCK_NOW + timedelta(days=1)
    jobs["quote"].run()
    next(job for name, job in jobs.items() if name.endswith(":nothing")).run()
    assert [p.text for p in store.queued_posts()] == ["Simplicity is prerequisite for reliability."] * 2


@pytest.mark.parametrize(("every", "tz", "same", "next_period"), [
    # a day in its own zone: after the clocks go forward (30 March 2025 in London), 00:30 on the 31st is
    # 23:30 UTC on the 30th, the same UTC day as the run before it, and still the next period
    ("day at 00:30", "Europe/London", [utc(2025, 3, 30, 0, 30), utc(2025, 3, 30, 22, 0)], utc(2025, 3, 30, 23, 30)),
    ("3 hours", "UTC", [utc(2026, 12, 1, 9, 0), utc(2026, 12, 1, 11, 59)], utc(2026, 12, 1, 12, 0)),
    ("monday at 08:30", "Europe/Berlin", [utc(2026, 11, 30, 7, 30), utc(2026, 12, 6, 22, 0)], utc(2026, 12, 6, 23, 0)),
    ("10 seconds", "UTC", [utc(2026, 12, 1, 9, 0), datetime(2026, 12, 1, 9, 0, 9, tzinfo=ZoneInfo("UTC"))],
     datetime(2026, 12, 1, 9, 0, 10, tzinfo=ZoneInfo("UTC"))),
])
def test_a_run_key_names_the_period_of_the_schedule_a_run_falls_in(
        every: str, tz: str, same: list[datetime], next_period: datetime) -> None:
    spec = GeneratorSpec(name="g", account="@alice", every=every, tz=tz, call="m:f", folder=Path("."))
    keys = {run_key(spec, moment) for moment in same}
    assert len(keys) == 1
    assert run_key(spec, next_period) not in keys
    other = GeneratorSpec(name="g", account="@alice", every="2 " + every.split(" ", 1)[-1] if every[0].isdigit()
                          else "day at 10:00", tz=tz, call="m:f", folder=Path("."))
    assert run_key(other, same[0]) not in keys  # another schedule: another key, never a collision


def test_unusable_entries_are_reported_and_skipped_not_raised(folder: BotFolder) -> None:
    toml = folder.path / "tweetbot.toml"
    toml.write_text(textwrap.dedent('''
        [[generator]]
        account = "@alice"
        every = "3 day"
        call = "anything:quote"

        [[generator]]
        account = "@alice"
        every = "day at 9am"
        call = "anything:quote"

        [[generator]]
        account = "@alice"
        every = "day at 09:00"
        tz = "Mars/Olympus"
        call = "anything:quote"

        [[generator]]
        account = "@alice"
        every = "day at 09:00"
        call = "no_such_module_here:quote"
    '''), encoding="utf-8")
    store = folder.store()
    jobs = schedule_generators(schedule.Scheduler(), folder.settings(), store, lambda: CLOCK_NOW)
    assert len(jobs) == 1  # only the last entry is usable; its module may appear later
    details = [event.detail for event in store.events(kind=FAILED_EVENT)]
    assert any("generator 1" in d and "Use days instead of day" in d for d in details)
    assert any("generator 2" in d and "Invalid time format" in d for d in details)
    assert any("generator 3" in d and "'Mars/Olympus' is not a time zone" in d for d in details)
    assert any("at start-up" in d and "No module named 'no_such_module_here'" in d for d in details)
    jobs[0].run()  # still failing when due: recorded again, never raised
    assert len(store.events(kind=FAILED_EVENT)) == 5

    checked = folder.run("generators")
    assert checked.returncode == 1
    assert "Use days instead of day" in checked.stderr


def test_without_a_generators_file_there_are_no_jobs(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, GENERATORS_FILE=str(tmp_path / "absent.toml"))
    assert schedule_generators(schedule.Scheduler(), folder.settings(), folder.store(),
                               lambda: datetime.now(ZoneInfo("UTC"))) == []
