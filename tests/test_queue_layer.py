"""The one layer every front end calls (`bot.queue`): typed refusals a program can act on, and the
operations the CLI, the web form and the API share (issue 20).

Each refusal is its own class, with a stable `kind` and the facts a front end words for itself;
each is asked of the operation itself, as a program would call it."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from test_queue_support import BotFolder, make_folder, utc

from bot import queue
from bot.media_checks import MediaFile
from bot.models import POSTED, Post
from bot.refusals import (
    AccountDisconnected,
    InThePast,
    MediaRefused,
    NoSlots,
    NoSuchAccount,
    NoSuchPost,
    QueueError,
    TextRefused,
    WrongStatus,
)
from bot.schedules import parse_slots, save_slots

from media_support import image_bytes

NOW = utc(2026, 11, 30, 8, 0)  # a Monday


@pytest.fixture
def folder(tmp_path: Path) -> BotFolder:
    folder = make_folder(tmp_path, "Europe/Berlin")
    folder.connect("alice", "101")
    folder.connect("bob", "202")
    return folder


def refusal(call: object, *args: object, **kwargs: object) -> QueueError:
    with pytest.raises(QueueError) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    return refused.value


def test_each_refusal_is_its_own_class_with_a_stable_kind(folder: BotFolder) -> None:
    store = folder.store()
    tomorrow = NOW + timedelta(days=1)
    found = {
        NoSuchAccount: refusal(queue.queue_post, store, "@nobody", ["hi"], tomorrow, NOW),
        TextRefused: refusal(queue.queue_post, store, "@alice", ["x" * 281], tomorrow, NOW),
        InThePast: refusal(queue.queue_post, store, "@alice", ["hi"], NOW - timedelta(hours=2), NOW),
        NoSlots: refusal(queue.queue_post, store, "@alice", ["hi"], queue.NEXT_SLOT, NOW),
        NoSuchPost: refusal(queue.cancel, store, 999),
    }
    posted = store.add_posts([Post(id=0, account_id="101", parts=("out",), due_at=NOW, status=POSTED)])[0]
    found[WrongStatus] = refusal(queue.cancel, store, posted.id)
    for kind, refused in found.items():
        assert type(refused) is kind
    assert {refused.kind for refused in found.values()} == {
        "no-such-account", "text", "in-the-past", "no-slots", "no-such-post", "wrong-status"}
    past = found[InThePast]
    assert isinstance(past, InThePast) and (past.due_at, past.now) == (NOW - timedelta(hours=2), NOW)
    # no slots is said first, before what is wrong with the post itself
    assert type(refusal(queue.queue_post, store, "@alice", ["x" * 281], queue.NEXT_SLOT, NOW)) is NoSlots
    assert store.queued_posts() == []  # every refusal left the queue as it was


def test_a_disconnected_account_and_unusable_media_are_refused_by_kind(folder: BotFolder) -> None:
    store = folder.store()
    store.update_account("202", status="disconnected")
    refused = refusal(queue.queue_post, store, "@bob", ["hi"], NOW + timedelta(hours=1), NOW)
    assert type(refused) is AccountDisconnected and refused.kind == "account-disconnected"
    broken = MediaFile("chart.png", image_bytes()[:40])
    refused = refusal(queue.queue_post, store, "@alice", ["hi"], NOW + timedelta(hours=1), NOW, media=[[broken]])
    assert type(refused) is MediaRefused and refused.kind == "media"


def test_an_account_is_named_by_handle_or_by_its_x_user_id(folder: BotFolder) -> None:
    store = folder.store()
    by_id = queue.queue_post(store, "202", ["by id"], NOW + timedelta(hours=1), NOW)
    by_handle = queue.queue_post(store, "@Bob", ["by handle"], NOW + timedelta(hours=2), NOW)
    assert by_id.account_id == by_handle.account_id == "202"


def test_without_a_time_a_post_takes_the_next_free_slot_or_now_when_the_account_has_none(
        folder: BotFolder) -> None:
    store = folder.store()
    assert queue.queue_post(store, "@bob", ["now"], None, NOW).due_at == NOW
    save_slots(store, "101", parse_slots("mon-fri 10:00", default_tz="Europe/Berlin"))
    first = queue.queue_post(store, "@alice", ["first"], None, NOW)
    second = queue.queue_post(store, "@alice", ["second"], queue.NEXT_SLOT, NOW)
    assert (first.due_at, second.due_at) == (utc(2026, 11, 30, 9, 0), utc(2026, 12, 1, 9, 0))


def test_an_edit_to_the_next_slot_keeps_the_post_s_own_slot_and_checks_its_media_stay(folder: BotFolder) -> None:
    store = folder.store()
    save_slots(store, "101", parse_slots("mon-fri 10:00", default_tz="Europe/Berlin"))
    post = queue.queue_post(store, "@alice", ["one", "two"], queue.NEXT_SLOT, NOW,
                            media=[[], [MediaFile("chart.png", image_bytes(), alt="a chart")]])
    edited = queue.edit_post(store, post.id, "@alice", ["one again", "two"], queue.NEXT_SLOT, NOW)
    assert (edited.parts, edited.due_at) == (("one again", "two"), post.due_at)  # its own slot is free to it
    refused = refusal(queue.edit_post, store, post.id, "@alice", ["one", "  "], queue.NEXT_SLOT, NOW)
    assert type(refused) is MediaRefused and str(refused) == "part 2 carries media: keep its text, or cancel the post"
    refused = refusal(queue.edit_post, store, post.id, "@alice", ["", "two"], queue.NEXT_SLOT, NOW)
    assert str(refused) == "part 2 carries media: keep part 1 before it, or cancel the post"  # it would move
    refused = refusal(queue.edit_post, store, post.id, "@alice", ["one"], queue.NEXT_SLOT, NOW)
    assert str(refused) == "part 2 carries media: keep that part, or cancel the post"
    refused = refusal(queue.edit_post, store, post.id, "@alice", ["one", "two"], NOW - timedelta(hours=3), NOW)
    assert type(refused) is InThePast
    assert store.get_post(post.id) == edited  # the refused edits changed nothing
