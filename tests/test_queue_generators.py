"""Generators: the operator's function, called on the worker's scheduler, its result queued."""
from __future__ import annotations

import logging
import textwrap
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import schedule
from test_queue_support import BotFolder, make_folder, utc

from bot.generators import FAILED_EVENT, schedule_generators

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


def test_a_job_run_twice_queues_twice_and_none_queues_nothing(folder: BotFolder) -> None:
    store = folder.store()
    jobs = by_name(schedule_generators(schedule.Scheduler(), folder.settings(), store, lambda: CLOCK_NOW))
    jobs["quote"].run()
    jobs["quote"].run()
    next(job for name, job in jobs.items() if name.endswith(":nothing")).run()
    assert [p.text for p in store.queued_posts()] == ["Simplicity is prerequisite for reliability."] * 2


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
