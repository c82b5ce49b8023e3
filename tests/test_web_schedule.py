"""The dashboard's slot editor, "next free slot" in compose, costs and cap warnings, Post now, Retry,
and generators' failures.

The real app (Flask's test client) with a real store in tmp_path, against the sandbox
process over HTTP. Where a post must fail or be held, it is for real: the worker's own
dispatcher (in this process) sends it to the sandbox, which answers as X does. After
"Post now" and "Retry" the same dispatcher sends what the page made due, while the
page itself never calls X. Figures are checked against `tweetbot queue`, run as a
real process on the same store.
"""
from __future__ import annotations

import html
import re
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from bot.generators import load_generators, run_generator
from bot.models import FAILED, POSTED, SCHEDULED, SENDING, Post, utcnow
from bot.posting.dispatcher import Dispatcher
from bot.queue import cancel
from bot.schedules import load_slots, parse_slots, save_slots
from bot.settings import Settings, load_settings
from bot.when import format_local
from bot.worker import Worker
from bot.xclient import XClient
from web import create_app

from sandbox_helpers import SandboxControl
from web_support import Browser, account, open_store, store_files, text, web_env
from worker_support import TWEETBOT

TWEETS = "POST /2/tweets"
CSRF_REFUSED = "This form cannot be accepted"


# -- helpers ---------------------------------------------------------------------------------


def app_and_env(tmp_path: Path, sandbox: SandboxControl, **overrides: str) -> tuple[Flask, dict[str, str]]:
    """The real app and the environment it was built from, so a `tweetbot` process can share its store."""
    env = web_env(tmp_path, sandbox, **overrides)
    return create_app({"SETTINGS": load_settings(None, env), "TESTING": True}), env


def signed_in(app: Flask, *usernames: str) -> Browser:
    browser = Browser(app)
    browser.sign_in()
    for username in usernames:
        browser.connect(username)
    return browser


def settings_of(app: Flask) -> Settings:
    return app.config["TWEETBOT_SETTINGS"]


def section(page: str, name: str) -> str:
    """The HTML of `<section id="name">`."""
    found = re.search(rf'<section class="card" id="{name}">(.*?)</section>', page, re.S)
    assert found, f"no section {name}"
    return found.group(1)


def slot_editor(page: str, handle: str) -> str:
    found = re.search(rf'<div class="slot-editor" id="slots-\d+" data-account="{handle}">(.*?)</div>', page, re.S)
    assert found, f"no slot editor for {handle}"
    return found.group(1)


def post_row(page: str, post_id: int) -> str:
    """The row of post `post_id` in the queue or the history."""
    found = re.search(rf'<tr class="post[^"]*" data-post="{post_id}">(.*?)</tr>', page, re.S)
    assert found, f"no row for post {post_id}"
    return found.group(1)


def flashes(page: str) -> list[str]:
    return re.findall(r'<p class="flash \w+" role="status">(.*?)</p>', page, re.S)


@contextmanager
def worker_of(settings: Settings) -> Iterator[Dispatcher]:
    """The worker's dispatcher on the app's store (its own handle, as the worker process has)."""
    worker = Worker(settings, open_store(settings), XClient(settings))
    try:
        yield worker.dispatcher
    finally:
        worker.dispatcher.shutdown()


def send(settings: Settings, post: Post) -> Post:
    """What the worker does with one post: claim it, call X (the sandbox), record the outcome."""
    with worker_of(settings) as dispatcher:
        return dispatcher.send(open_store(settings).get_post(post.id))  # type: ignore[arg-type]


def dispatch(settings: Settings) -> int:
    """One round of the worker's dispatch job, waited for; how many accounts it sent for."""
    with worker_of(settings) as dispatcher:
        started = dispatcher.dispatch_due()
        for task in dispatcher.pending():
            task.result()
    return started


def queue_now(settings: Settings, username: str, *parts: str) -> Post:
    """A post due now, put in the store as `bot.queue` does after its checks."""
    owner = account(settings, username)
    return open_store(settings).add_posts([Post(id=0, account_id=owner.user_id, parts=parts, due_at=utcnow())])[0]


def failed_post(settings: Settings, sandbox: SandboxControl, text_: str = "X said no") -> Post:
    """A post X refused for good (403, not a duplicate), recorded by the worker."""
    sandbox.fault(TWEETS, "status", status=403, times=1)
    failed = send(settings, queue_now(settings, "sandbox_alice", text_))
    assert failed.status == FAILED and "(403): Forbidden" in failed.last_error
    return failed


def duplicate_post(settings: Settings, text_: str = "said twice") -> Post:
    """A post X refused as duplicate content, recorded by the worker."""
    assert send(settings, queue_now(settings, "sandbox_alice", text_)).status == POSTED
    failed = send(settings, queue_now(settings, "sandbox_alice", text_))
    assert failed.status == FAILED and "duplicate content" in failed.last_error
    return failed


def next_times(clock: time, zone: str, now: datetime, count: int = 5) -> list[datetime]:
    """The next `count` daily `clock` times on `zone`'s wall after `now` (worked out here, not by bot.schedules)."""
    tz = ZoneInfo(zone)
    day: date = now.astimezone(tz).date()
    found: list[datetime] = []
    while len(found) < count:
        moment = datetime.combine(day, clock, tzinfo=tz)
        if moment > now:
            found.append(moment)
        day += timedelta(days=1)
    return found


def shown(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def cli_queue(env: dict[str, str], tmp_path: Path) -> str:
    """`tweetbot queue` as a real process on the app's store."""
    result = subprocess.run([TWEETBOT, "queue"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def app(tmp_path: Path, sandbox: SandboxControl) -> Flask:
    return app_and_env(tmp_path, sandbox)[0]


@pytest.fixture
def browser(app: Flask) -> Browser:
    return signed_in(app, "sandbox_alice")


# -- the slot editor ---------------------------------------------------------------------------


def test_setting_slots_shows_them_and_the_next_free_times_on_the_operators_clock(app: Flask,
                                                                              browser: Browser) -> None:
    settings = settings_of(app)
    alice = account(settings, "sandbox_alice")
    page = text(browser.get("/"))
    assert "No slots: its posts go out at the time given." in slot_editor(page, "@sandbox_alice")
    now = utcnow()

    answer = browser.post(f"/accounts/{alice.user_id}/slots", {"spec": "daily 09:00", "tz": "Europe/Berlin"})

    assert answer.status_code == 303
    saved = load_slots(open_store(settings), alice.user_id)
    assert saved is not None and (saved.spec, saved.zone) == ("daily 09:00", "Europe/Berlin")
    page = text(browser.get("/"))
    assert "@sandbox_alice posts at daily 09:00 (Europe/Berlin)." in flashes(page)
    editor = slot_editor(page, "@sandbox_alice")
    assert "<code>daily 09:00</code> (Europe/Berlin)" in editor
    assert "Next free slots (UTC):" in editor
    expected = [f"{shown(m, 'UTC')} ({shown(m, 'Europe/Berlin')})" for m in next_times(time(9), "Europe/Berlin", now)]
    assert re.findall(r"<li>(.*?)</li>", editor) == expected  # 08:00 UTC in winter, 07:00 UTC in summer
    assert 'value="daily 09:00"' in editor and 'value="Europe/Berlin"' in editor  # the form shows what is set


def test_slots_without_a_zone_take_the_operators(tmp_path: Path, sandbox: SandboxControl) -> None:
    app, _ = app_and_env(tmp_path, sandbox, TIMEZONE="Europe/Berlin")
    browser = signed_in(app, "sandbox_alice")
    alice = account(settings_of(app), "sandbox_alice")
    now = utcnow()

    browser.post(f"/accounts/{alice.user_id}/slots", {"spec": "mon-fri 09:00,13:00; sat 11:00", "tz": ""})

    saved = load_slots(open_store(settings_of(app)), alice.user_id)
    assert saved is not None and (saved.spec, saved.zone) == ("mon-fri 09:00,13:00; sat 11:00", "Europe/Berlin")
    editor = slot_editor(text(browser.get("/")), "@sandbox_alice")
    berlin = ZoneInfo("Europe/Berlin")
    items = re.findall(r"<li>(.*?)</li>", editor)
    assert len(items) == 5
    for item in items:  # on the operator's clock only (the slots' zone is the operator's)
        moment = datetime.strptime(item[:16], "%Y-%m-%d %H:%M").replace(tzinfo=berlin)
        assert moment > now and "(" not in item
        assert (moment.weekday(), moment.strftime("%H:%M")) in (
            {(d, c) for d in range(5) for c in ("09:00", "13:00")} | {(5, "11:00")})


@pytest.mark.parametrize(("spec", "tz", "reason"), [
    ("mon-fri 25:00", "", "in 'mon-fri 25:00': '25:00' is not a time of day (00:00 to 23:59)"),
    ("funday 09:00", "", "in 'funday 09:00': 'funday' is not a day"),
    ("09:00 mon", "", "days come before times ('mon' follows a time)"),
    ("", "", 'no slots given: expected e.g. "mon-fri 09:00,13:00; sat 11:00"'),
    ("daily 09:00", "Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not a named time zone"),
    ("daily 09:00", "+02:00", "'+02:00' is not a named time zone"),
    ("daily 09:00 Europe/Paris", "Europe/Berlin",
     "the text says Europe/Paris but the time zone field says Europe/Berlin: give one zone"),
    ('<b>"mon"</b> 09:00', "", "is not a day"),
])
def test_a_malformed_slot_spec_is_refused_with_the_parsers_reason_and_keeps_what_was_typed(
        tmp_path: Path, app: Flask, browser: Browser, spec: str, tz: str, reason: str) -> None:
    settings = settings_of(app)
    alice = account(settings, "sandbox_alice")
    save_slots(open_store(settings), alice.user_id, parse_slots("sat 11:00", "UTC"))
    before = store_files(tmp_path)

    answer = browser.post(f"/accounts/{alice.user_id}/slots", {"spec": spec, "tz": tz})

    assert answer.status_code == 400
    raw = answer.get_data(as_text=True)
    editor = slot_editor(html.unescape(raw), "@sandbox_alice")
    assert "Slots not saved: " in editor and reason in editor
    assert f'value="{spec}"' in editor and f'value="{tz}"' in editor  # nothing typed is lost
    assert "<code>sat 11:00</code>" in editor  # the slots in force are still the ones shown
    assert "<b>" not in raw  # what was typed is escaped, in the field and in the reason
    assert store_files(tmp_path) == before


def test_clearing_slots_forgets_them_and_keeps_the_queue(tmp_path: Path, app: Flask, browser: Browser) -> None:
    settings = settings_of(app)
    alice = account(settings, "sandbox_alice")
    browser.post(f"/accounts/{alice.user_id}/slots", {"spec": "daily 09:00", "tz": "UTC"})
    browser.post("/posts", {"account": alice.user_id, "part": "in a slot", "when": "slot"})
    [queued] = open_store(settings).queued_posts()

    assert browser.post(f"/accounts/{alice.user_id}/slots/clear").status_code == 303

    assert load_slots(open_store(settings), alice.user_id) is None
    assert open_store(settings).queued_posts() == [queued]
    page = text(browser.get("/"))
    assert "@sandbox_alice has no slots now; its queued posts keep their times." in flashes(page)
    editor = slot_editor(page, "@sandbox_alice")
    assert "No slots: its posts go out at the time given." in editor and "Clear slots" not in editor
    before = store_files(tmp_path)
    browser.post(f"/accounts/{alice.user_id}/slots/clear")
    assert "@sandbox_alice has no slots." in flashes(text(browser.get("/")))
    assert store_files(tmp_path) == before  # nothing to clear: nothing written


def test_slots_of_an_unknown_account_are_refused(tmp_path: Path, browser: Browser) -> None:
    before = store_files(tmp_path)

    for path in ("/accounts/1234567/slots", "/accounts/1234567/slots/clear"):
        assert browser.post(path, {"spec": "daily 09:00", "tz": ""}).status_code == 303
        assert "No such account." in text(browser.get("/"))

    assert store_files(tmp_path) == before


# -- compose at the next free slot ------------------------------------------------------------


def test_compose_can_take_the_accounts_next_free_slot(app: Flask) -> None:
    browser = signed_in(app, "sandbox_alice", "sandbox_bob")
    settings = settings_of(app)
    alice = account(settings, "sandbox_alice")
    assert 'id="when-slot"' not in text(browser.get("/"))  # no account has slots: only a time
    browser.post(f"/accounts/{alice.user_id}/slots", {"spec": "daily 09:00", "tz": "UTC"})
    now = utcnow()
    first, second, third = next_times(time(9), "UTC", now, 3)
    compose = section(text(browser.get("/")), "compose")
    assert 'id="when-slot"' in compose and f"Next free slot: @sandbox_alice {shown(first, 'UTC')}." in compose

    answers = [browser.post("/posts", {"account": alice.user_id, "part": f"slot post {n}", "when": "slot",
                                       "due_at": ""}) for n in (1, 2)]

    assert [a.status_code for a in answers] == [303, 303]
    queued = open_store(settings).queued_posts()
    assert [(p.parts, p.due_at, p.source) for p in queued] == [
        (("slot post 1",), first, "web"), (("slot post 2",), second, "web")]
    page = text(browser.get("/"))
    assert f"Queued a post for {shown(second, 'UTC')} (the account's next free slot)." in flashes(page)
    assert re.findall(r"<li>(.*?)</li>", slot_editor(page, "@sandbox_alice"))[0] == shown(third, "UTC")


def test_compose_at_the_next_slot_of_an_account_without_slots_is_refused(tmp_path: Path, app: Flask) -> None:
    browser = signed_in(app, "sandbox_alice", "sandbox_bob")
    settings = settings_of(app)
    browser.post(f"/accounts/{account(settings, 'sandbox_alice').user_id}/slots", {"spec": "daily 09:00", "tz": ""})
    bob = account(settings, "sandbox_bob")
    before = store_files(tmp_path)

    answer = browser.post("/posts", {"account": bob.user_id, "part": "bob has no slots", "when": "slot",
                                     "due_at": "2031-01-15T09:00"})

    assert answer.status_code == 400
    page = text(answer)
    assert "Not queued: @sandbox_bob has no slots: set them under Slots, or give a time." in page
    assert ">bob has no slots</textarea>" in page and 'value="2031-01-15T09:00"' in page
    assert 'value="slot" id="when-slot" checked' in page  # the choice made is kept too
    assert store_files(tmp_path) == before


# -- costs, tier warnings, holds -----------------------------------------------------------------


def test_the_queue_shows_each_posts_cost_and_the_next_30_days_as_tweetbot_queue_does(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    app, env = app_and_env(tmp_path, sandbox)
    browser = signed_in(app, "sandbox_alice")
    settings = settings_of(app)
    alice = account(settings, "sandbox_alice")
    start = utcnow() + timedelta(days=1)
    posts = open_store(settings).add_posts([
        Post(id=0, account_id=alice.user_id, parts=("plain words",), due_at=start),
        Post(id=0, account_id=alice.user_id, parts=("read https://example.com/a",), due_at=start + timedelta(days=1)),
        Post(id=0, account_id=alice.user_id, parts=("a thread", "with example.org"), due_at=start + timedelta(days=2)),
        Post(id=0, account_id=alice.user_id, parts=("after the horizon",), due_at=start + timedelta(days=40)),
    ])

    page = text(browser.get("/"))
    cli = cli_queue(env, tmp_path)

    costs = {post.id: re.search(r'<td[^>]*class="cost">(.*?)</td>', post_row(page, post.id)).group(1) for post in posts}
    assert list(costs.values()) == ["$0.015", "$0.20", "$0.215", "$0.015"]
    total = re.search(r'<p class="cost-total" id="queue-cost">(.*?)</p>', page).group(1)
    assert total == "Next 30 days: 3 posts (4 parts, each billed), $0.43."
    assert total in cli.splitlines()  # the command line's words and figures
    for post in posts:
        [line] = [ln for ln in cli.splitlines() if ln.split()[:1] == [str(post.id)]]
        assert re.findall(r"\$[\d.]+", line) == [costs[post.id]]
    assert "Pay-per-use prices: $0.015 a post, $0.20 a post with a link" in page


def test_the_tier_warnings_are_the_ones_tweetbot_queue_prints(tmp_path: Path, sandbox: SandboxControl) -> None:
    app, env = app_and_env(tmp_path, sandbox, X_TIER="free")
    browser = signed_in(app, "sandbox_alice")
    settings = settings_of(app)
    alice = account(settings, "sandbox_alice")
    start = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    open_store(settings).add_posts([Post(id=0, account_id=alice.user_id, parts=(f"busy day {n}",),
                                         due_at=start + timedelta(minutes=n)) for n in range(18)])

    page = text(browser.get("/"))
    cli = cli_queue(env, tmp_path)

    warnings = re.findall(r'<li class="warning">(.*?)</li>', page)
    assert warnings == [line.removeprefix("warning: ") for line in cli.splitlines() if line.startswith("warning: ")]
    assert warnings[0] == (f"@sandbox_alice: 18 posts due in the 24 h from {format_local(start, 'UTC')}; "
                           "X_TIER=free allows 17 per 24 h per user, so some will go out late")
    assert "all accounts together: 18 posts" in warnings[1]
    total = re.search(r'<p class="cost-total" id="queue-cost">(.*?)</p>', page).group(1)
    assert total == "Next 30 days: 18 posts, $0.27 if billed per use (X_TIER=free is a subscription)."
    assert total in cli.splitlines()


@pytest.mark.parametrize("cause", ["usage cap", "rate limit"])
def test_an_account_x_has_stopped_shows_why_and_until_when(sandbox: SandboxControl, app: Flask, browser: Browser,
                                                           cause: str) -> None:
    settings = settings_of(app)
    if cause == "usage cap":
        sandbox.configure(usage_capped=True)
    else:
        sandbox.limit(TWEETS, {"scope": "user", "window": 900, "limit": 1})
        assert send(settings, queue_now(settings, "sandbox_alice", "the one the window allows")).status == POSTED
    held = send(settings, queue_now(settings, "sandbox_alice", "held back by X"))
    assert held.status == SCHEDULED
    alice = account(settings, "sandbox_alice")
    assert alice.hold_until is not None and alice.hold_reason
    why = f"held until {format_local(alice.hold_until, 'UTC')} ({alice.hold_reason})"

    page = text(browser.get("/"))

    words = {"usage cap": "X usage cap: Usage cap exceeded: Monthly product cap",
             "rate limit": "rate limited by X until"}
    assert words[cause] in alice.hold_reason
    accounts_row = re.search(r'data-account="@sandbox_alice">(.*?)</tr>', page, re.S).group(1)
    assert f'<span class="hint held">{why}</span>' in accounts_row
    assert f'<li class="warning">@sandbox_alice: {why}</li>' in page
    assert why in post_row(page, held.id)


# -- post now -------------------------------------------------------------------------------------


def test_post_now_makes_the_post_due_and_the_worker_sends_it(sandbox: SandboxControl, app: Flask,
                                                               browser: Browser) -> None:
    settings = settings_of(app)
    alice = account(settings, "sandbox_alice")
    due = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    browser.post("/posts", {"account": alice.user_id, "part": "sooner than planned", "due_at": due})
    [post] = open_store(settings).queued_posts()
    assert "Post now" in post_row(text(browser.get("/")), post.id)
    assert dispatch(settings) == 0
    before = utcnow()

    answer = browser.post(f"/posts/{post.id}/now")

    assert answer.status_code == 303
    [moved] = open_store(settings).queued_posts()
    assert moved.id == post.id and before <= moved.due_at <= utcnow() and moved.next_attempt_at is None
    page = text(browser.get("/"))
    assert f"Post {post.id} is due now: the worker sends it on its next round." in flashes(page)
    assert sandbox.posts("sandbox_alice") == []  # the page called no X: the worker is the only sender
    assert dispatch(settings) == 1
    assert [p["text"] for p in sandbox.posts("sandbox_alice")] == ["sooner than planned"]
    assert "posted" in post_row(text(browser.get("/")), post.id)


def test_post_now_of_a_held_account_says_it_waits(sandbox: SandboxControl, app: Flask, browser: Browser) -> None:
    settings = settings_of(app)
    sandbox.configure(usage_capped=True)
    held = send(settings, queue_now(settings, "sandbox_alice", "capped"))
    alice = account(settings, "sandbox_alice")

    browser.post(f"/posts/{held.id}/now")

    assert (f"Post {held.id} is due now: the worker sends it on its next round. It waits: held until "
            f"{format_local(alice.hold_until, 'UTC')} ({alice.hold_reason}).") in flashes(text(browser.get("/")))


@pytest.mark.parametrize(("state", "reason"), [
    ("posted", "post {id} is already posted"),
    ("failed", "post {id} has failed: retry it instead"),
    ("canceled", "post {id} is already canceled"),
    ("sending", "post {id} is being sent right now"),
])
def test_post_now_of_a_post_that_is_not_scheduled_is_refused(tmp_path: Path, sandbox: SandboxControl, app: Flask,
                                                             browser: Browser, state: str, reason: str) -> None:
    settings = settings_of(app)
    if state == "posted":
        post = send(settings, queue_now(settings, "sandbox_alice", "out already"))
    elif state == "failed":
        post = failed_post(settings, sandbox)
    elif state == "canceled":
        post = cancel(open_store(settings), queue_now(settings, "sandbox_alice", "called off").id)
    else:
        post = queue_now(settings, "sandbox_alice", "on its way")
        post = open_store(settings).update_post(post.id, status=SENDING, sending_since=utcnow())
    assert "Post now" not in post_row(text(browser.get("/")), post.id)
    before = store_files(tmp_path)

    answer = browser.post(f"/posts/{post.id}/now")

    assert answer.status_code == 303
    assert f"Not moved: {reason.format(id=post.id)}." in flashes(text(browser.get("/")))
    assert store_files(tmp_path) == before


# -- retry ----------------------------------------------------------------------------------------


def test_retry_queues_a_failed_post_again_due_now(sandbox: SandboxControl, tmp_path: Path, app: Flask,
                                                  browser: Browser) -> None:
    settings = settings_of(app)
    failed = failed_post(settings, sandbox, "worth another go")
    assert "Retry</button>" in post_row(text(browser.get("/")), failed.id)
    before = utcnow()

    answer = browser.post(f"/posts/{failed.id}/retry")

    assert answer.status_code == 303
    [again] = open_store(settings).queued_posts()
    assert again.id != failed.id and again.parts == failed.parts and again.status == SCHEDULED
    assert before <= again.due_at <= utcnow() and again.source == "web"
    # the failure stays in the history as it was, now saying what it was queued again as
    assert open_store(settings).get_post(failed.id) == replace(failed, requeued_as=again.id)
    page = text(browser.get("/"))
    assert f"Queued failed post {failed.id} again as post {again.id}, due now." in flashes(page)
    history_row = post_row(section(page, "history"), failed.id)
    assert f"queued again as post {again.id}" in history_row and "Retry</button>" not in history_row
    assert "worth another go" in post_row(section(page, "queue"), again.id)

    snapshot = store_files(tmp_path)
    browser.post(f"/posts/{failed.id}/retry")  # a second click
    assert (f"Not retried: post {failed.id} was already queued again as post {again.id}."
            in flashes(text(browser.get("/"))))
    assert store_files(tmp_path) == snapshot

    assert dispatch(settings) == 1
    assert [p["text"] for p in sandbox.posts("sandbox_alice")] == ["worth another go"]


def test_a_duplicate_has_no_retry_and_a_retry_of_it_is_refused(tmp_path: Path, sandbox: SandboxControl,
                                                                app: Flask, browser: Browser) -> None:
    settings = settings_of(app)
    duplicate = duplicate_post(settings)
    page = text(browser.get("/"))
    row = post_row(section(page, "history"), duplicate.id)
    assert "Retry</button>" not in row
    assert "duplicate content" in row and "X refuses the same text again, so it cannot be retried" in row
    before = store_files(tmp_path)

    answer = browser.post(f"/posts/{duplicate.id}/retry")

    assert answer.status_code == 303
    assert (f"Not retried: post {duplicate.id} was refused by X as duplicate content, and X refuses the same text "
            "again, so it is not retried.") in flashes(text(browser.get("/")))
    assert store_files(tmp_path) == before
    assert len(sandbox.posts("sandbox_alice")) == 1


def test_retry_of_a_post_that_did_not_fail_is_refused(tmp_path: Path, app: Flask, browser: Browser) -> None:
    settings = settings_of(app)
    posted = send(settings, queue_now(settings, "sandbox_alice", "went fine"))
    assert "Retry</button>" not in post_row(text(browser.get("/")), posted.id)
    before = store_files(tmp_path)

    browser.post(f"/posts/{posted.id}/retry")

    assert (f"Not retried: post {posted.id} is posted, not failed: only a failed post can be retried."
            in flashes(text(browser.get("/"))))
    assert store_files(tmp_path) == before


# -- CSRF on every new form -------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["set slots", "clear slots", "post now", "retry"])
def test_each_new_form_needs_its_csrf_token(tmp_path: Path, sandbox: SandboxControl, app: Flask,
                                            browser: Browser, form: str) -> None:
    settings = settings_of(app)
    alice = account(settings, "sandbox_alice")
    if form == "set slots":
        path, data = f"/accounts/{alice.user_id}/slots", {"spec": "daily 09:00", "tz": "UTC"}
    elif form == "clear slots":
        save_slots(open_store(settings), alice.user_id, parse_slots("daily 09:00", "UTC"))
        path, data = f"/accounts/{alice.user_id}/slots/clear", {}
    elif form == "post now":
        later = open_store(settings).add_posts([Post(id=0, account_id=alice.user_id, parts=("later",),
                                                     due_at=utcnow() + timedelta(days=1))])[0]
        path, data = f"/posts/{later.id}/now", {}
    else:
        path, data = f"/posts/{failed_post(settings, sandbox).id}/retry", {}
    before = store_files(tmp_path)

    for token in (None, "forged-token"):
        answer = browser.post(path, data if token is None else {**data, "csrf_token": token}, csrf=False)
        assert answer.status_code == 400
        assert CSRF_REFUSED in text(answer)
    assert store_files(tmp_path) == before

    assert browser.post(path, data).status_code == 303  # the same form with the page's token goes through
    assert store_files(tmp_path) != before


# -- generators' failures ----------------------------------------------------------------------------


def test_the_last_generator_failures_are_shown(tmp_path: Path, app: Flask, browser: Browser) -> None:
    assert 'id="generator-failures"' not in text(browser.get("/"))
    folder = tmp_path / "generators"
    folder.mkdir()
    (folder / "dashboard_quotes.py").write_text(textwrap.dedent('''
        runs = []

        def flaky():
            runs.append(1)
            raise RuntimeError(f"the quote service is down (run {len(runs)})")
    '''))
    (folder / "tweetbot.toml").write_text(textwrap.dedent('''
        [[generator]]
        name = "quotes"
        account = "@sandbox_alice"
        every = "day at 09:00"
        call = "dashboard_quotes:flaky"
    '''))
    [spec], problems = load_generators(folder / "tweetbot.toml")
    assert problems == []
    repo = open_store(settings_of(app))
    for _ in range(6):
        assert run_generator(spec, repo) is None  # what the worker's job does when the function raises

    page = text(browser.get("/"))

    failures = section(page, "generator-failures")
    rows = re.findall(r'<tr class="failure"><td>(.*?)</td><td>(.*?)</td><td class="text"><p>(.*?)</p></td></tr>',
                      failures)
    assert [int(re.search(r"\(run (\d+)\)", detail).group(1)) for _, _, detail in rows] == [6, 5, 4, 3, 2]
    when, handle, detail = rows[0]
    assert handle == "@sandbox_alice"
    assert detail.startswith("quotes (dashboard_quotes:flaky): RuntimeError: the quote service is down (run 6)")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", when)


# -- the page stays clean ----------------------------------------------------------------------------


def test_the_new_parts_of_the_page_carry_no_inline_script_style_or_secret(tmp_path: Path, sandbox: SandboxControl,
                                                                          app: Flask, browser: Browser) -> None:
    settings = settings_of(app)
    alice = account(settings, "sandbox_alice")
    browser.post(f"/accounts/{alice.user_id}/slots", {"spec": "daily 09:00", "tz": "Europe/Berlin"})
    browser.post(f"/accounts/{alice.user_id}/slots", {"spec": "nonsense", "tz": ""})  # refused page
    browser.post("/posts", {"account": alice.user_id, "part": "in a slot https://example.com", "when": "slot"})
    failed = failed_post(settings, sandbox)
    browser.post(f"/posts/{failed.id}/retry")
    queued = open_store(settings).queued_posts()[0]
    browser.post(f"/posts/{queued.id}/now")
    browser.post(f"/accounts/{alice.user_id}/slots/clear")
    page = browser.get("/").get_data(as_text=True)
    assert 'id="slots"' in page and 'id="queue-cost"' in page and 'class="post-now"' in page
    assert '<option value="Europe/Berlin">' in page  # the zone field's suggestions

    secrets = (alice.access_token, alice.refresh_token, settings.secret_key, settings.token_keys[0])
    for html_page in browser.pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html_page), "inline script"
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html_page), "inline style or handler"
        for secret in secrets:
            assert secret and secret not in html_page
