"""Editing a queued post from the dashboard: `/posts/<id>/edit`.

The real app (Flask's test client) and store, the sandbox process over HTTP. An edit
is checked as compose checks a new post (bot.queue's `draft`), with compose's reasons;
a post being sent, or finished, cannot be edited; its media stay on it.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from bot import queue
from bot.media_checks import MediaFile
from bot.models import POSTED, SCHEDULED, SENDING, Post, utcnow
from bot.schedules import parse_slots, save_slots
from bot.store.file import TinyStore

from media_support import image_bytes
from sandbox_helpers import SandboxControl
from web_support import Browser, account, app, browser, open_store, text  # noqa: F401 (shared fixtures)


def local_input(moment_days: int = 2, hour: int = 10) -> str:
    return (utcnow() + timedelta(days=moment_days)).strftime(f"%Y-%m-%dT{hour:02d}:15")


def two_accounts(app: Flask, browser: Browser) -> tuple[str, str]:
    browser.connect("sandbox_alice")
    browser.connect("sandbox_bob")
    settings = app.config["TWEETBOT_SETTINGS"]
    return account(settings, "sandbox_alice").user_id, account(settings, "sandbox_bob").user_id


def queued(app: Flask, user_id: str, parts: tuple[str, ...] = ("the first words",),
           media: Sequence[Sequence[MediaFile]] = ()) -> int:
    store = open_store(app.config["TWEETBOT_SETTINGS"])
    return queue.queue_post(store, user_id, parts, utcnow() + timedelta(days=1), source="web", media=media).id


def test_the_form_shows_the_post_and_saving_changes_text_parts_time_and_account(app: Flask,
                                                                              browser: Browser) -> None:
    alice, bob = two_accounts(app, browser)
    post_id = queued(app, alice)

    form = text(browser.get(f"/posts/{post_id}/edit"))
    assert "the first words" in form and f'<option value="{alice}" selected>' in form
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", form)  # no raw ISO time shown

    due = local_input()
    answer = browser.post(f"/posts/{post_id}/edit", {"account": bob, "part": ["new words", "and a second part", ""],
                                                     "when": "at", "due_at": due})
    assert answer.status_code == 303
    post = open_store(app.config["TWEETBOT_SETTINGS"]).get_post(post_id)
    assert post is not None and post.status == SCHEDULED
    assert post.account_id == bob and post.parts == ("new words", "and a second part")
    assert post.due_at.strftime("%Y-%m-%dT%H:%M") == due  # the test operator's zone is UTC
    events = [e for e in open_store(app.config["TWEETBOT_SETTINGS"]).events() if e.post_id == post_id]
    assert [e.kind for e in events] == ["edited"]
    page = text(browser.get("/"))
    assert f"Saved post {post_id}: @sandbox_bob" in page and "new words" in page


def stored(store: TinyStore, post_id: int) -> Post:
    post = store.get_post(post_id)
    assert post is not None, f"no post {post_id}"
    return post


REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "too long": ({"part": ["fine", "x" * 281]}, "Not saved: part 2 of the thread is too long or invalid"),
    "in the past": ({"due_at": "2020-01-01T09:00"}, "Not saved: Wed 2020-01-01 09:00 UTC is in the past."),
    "not a time": ({"due_at": "someday"}, "Not saved: 'someday'"),
    "empty": ({"part": ["", "  "]}, "Not saved: the post is empty"),
    "no account": ({"account": "12345"}, "Not saved: no account 12345"),
    "no slots": ({"when": "slot"}, "Not saved: @sandbox_alice has no slots"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_an_edit_is_refused_as_compose_refuses_and_changes_nothing(app: Flask, browser: Browser, case: str) -> None:
    alice, _ = two_accounts(app, browser)
    post_id = queued(app, alice)
    before = open_store(app.config["TWEETBOT_SETTINGS"]).get_post(post_id)
    fields, reason = REFUSALS[case]
    form = {"account": alice, "part": ["kept text"], "when": "at", "due_at": local_input(), **fields}

    answer = browser.post(f"/posts/{post_id}/edit", form)

    assert answer.status_code == 400
    page = text(answer)
    assert reason in page
    assert "kept text" in page or case in ("too long", "empty")  # what was typed comes back
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", page.split('type="datetime-local"')[0])
    assert open_store(app.config["TWEETBOT_SETTINGS"]).get_post(post_id) == before


def test_the_past_is_said_on_the_operators_clock_not_in_iso(app: Flask, browser: Browser) -> None:
    alice, _ = two_accounts(app, browser)
    post_id = queued(app, alice)
    page = text(browser.post(f"/posts/{post_id}/edit", {"account": alice, "part": ["x"], "when": "at",
                                                        "due_at": "2020-01-01T09:00"}))
    assert "Not saved: Wed 2020-01-01 09:00 UTC is in the past." in page
    assert "2020-01-01T09:00:00+00:00" not in page


PARTLY_AT_X = "partly at X"  # a thread whose first part X has, waiting to retry the second


@pytest.mark.parametrize("status", [SENDING, POSTED, PARTLY_AT_X])
def test_a_post_being_sent_or_finished_cannot_be_edited(app: Flask, browser: Browser, status: str) -> None:
    alice, _ = two_accounts(app, browser)
    post_id = queued(app, alice, ("the first words", "and the rest"))
    store = open_store(app.config["TWEETBOT_SETTINGS"])
    store.update_post(post_id, **{SENDING: {"status": SENDING, "sending_since": utcnow()},
                                  POSTED: {"status": POSTED, "tweet_ids": ("186", "187"), "posted_at": utcnow()},
                                  PARTLY_AT_X: {"tweet_ids": ("186",), "attempts": 1}}[status])
    why = {SENDING: "is being sent right now", POSTED: "is already posted",
           PARTLY_AT_X: "is partly at X already: it cannot be edited"}[status]

    shown = browser.get(f"/posts/{post_id}/edit")
    assert shown.status_code == 303
    assert f"Not edited: post {post_id} {why}." in text(browser.get("/"))
    saved = browser.post(f"/posts/{post_id}/edit", {"account": alice, "part": ["changed"], "when": "at",
                                                    "due_at": local_input()})
    assert saved.status_code == 400 and why.replace("is ", "", 1) in text(saved)
    after = open_store(app.config["TWEETBOT_SETTINGS"]).get_post(post_id)
    assert after is None or after.parts == ("the first words", "and the rest")
    if status == POSTED:
        assert store.history(1)[0].parts == ("the first words", "and the rest")
    for page in ("/", "/calendar"):  # and no Edit is offered for it
        assert f"/posts/{post_id}/edit" not in text(browser.get(page)), page


def test_an_edited_post_keeps_its_media_and_shows_them(app: Flask, browser: Browser) -> None:
    alice, _ = two_accounts(app, browser)
    picture = image_bytes(seed=3)
    post_id = queued(app, alice, ("with a picture",), [[MediaFile("chart.png", picture, "A chart")]])
    form = text(browser.get(f"/posts/{post_id}/edit"))
    assert 'class="kept-media"' in form and 'alt="A chart"' in form

    assert browser.post(f"/posts/{post_id}/edit", {"account": alice, "part": ["new text, same picture"],
                                                   "when": "at", "due_at": local_input()}).status_code == 303
    post = open_store(app.config["TWEETBOT_SETTINGS"]).get_post(post_id)
    assert post is not None and post.parts == ("new text, same picture",)
    assert [(ref.name, ref.alt) for ref in post.media[0]] == [("chart.png", "A chart")]

    dropped = browser.post(f"/posts/{post_id}/edit", {"account": alice, "part": ["", "only a second part"],
                                                      "when": "at", "due_at": local_input()})
    assert dropped.status_code == 400
    assert "Not saved: part 1 carries media: keep its text, or cancel the post." in text(dropped)
    kept = open_store(app.config["TWEETBOT_SETTINGS"]).get_post(post_id)
    assert kept is not None and kept.parts == ("new text, same picture",) and kept.media == post.media


def test_the_next_free_slot_is_the_posts_own_when_it_holds_one(tmp_path: Path, sandbox: SandboxControl,
                                                                app: Flask, browser: Browser) -> None:
    alice, _ = two_accounts(app, browser)
    store = open_store(app.config["TWEETBOT_SETTINGS"])
    save_slots(store, alice, parse_slots("daily 09:00", "UTC"))
    post_id = queued(app, alice)

    assert browser.post(f"/posts/{post_id}/edit", {"account": alice, "part": ["slotted"], "when": "slot",
                                                   "due_at": ""}).status_code == 303
    first = stored(store, post_id).due_at
    assert (first.hour, first.minute) == (9, 0) and first > utcnow()
    other = queued(app, alice, ("another",))
    assert browser.post(f"/posts/{other}/edit", {"account": alice, "part": ["another"], "when": "slot",
                                                 "due_at": ""}).status_code == 303
    assert stored(store, other).due_at == first + timedelta(days=1)  # the first slot is held
