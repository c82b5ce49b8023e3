"""Acting on one post: `bot.queue.post_now` and `bot.queue.retry`, and `tweetbot post-now` / `tweetbot retry`.

The store is real (tmp_path) and so is X's side: posts fail for real against the
sandbox (a refused part, X's duplicate-content refusal) through the worker's own
dispatcher, in this process (`test_posting.Rig`), and the posts these functions
make due are then sent by that dispatcher, so each test shows the worker, the only
sender, picking the change up. The commands run as real `tweetbot` processes.
"""
from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.models import DISCONNECTED, FAILED, POSTED, SCHEDULED, SENDING, Post
from bot.queue import (
    DUE_NOW_EVENT,
    REQUEUED_EVENT,
    QueueError,
    cancel,
    post_now,
    queue_post,
    refused_as_duplicate,
    retry,
)

from sandbox_helpers import SandboxControl
from test_posting import TWEETS, Rig
from web_support import store_files
from worker_support import TWEETBOT


@pytest.fixture
def rig(tmp_path: Path, sandbox: SandboxControl):
    made = Rig(tmp_path, sandbox)
    yield made
    made.dispatcher.shutdown()


def queued_for_tomorrow(rig: Rig, *parts: str) -> Post:
    now = rig.clock()
    return queue_post(rig.store, rig.accounts[0].user_id, parts, now + timedelta(days=1), now)


def failed_by_x(rig: Rig, *parts: str) -> Post:
    """A post X refused for good (a 403 that is not about duplicates), as the worker recorded it."""
    rig.sandbox.fault(TWEETS, "status", status=403, times=1)
    failed = rig.send(rig.queue(*parts))
    assert failed.status == FAILED and "(403): Forbidden" in failed.last_error
    return failed


def duplicate_refused(rig: Rig, text: str = "said twice") -> Post:
    """A post X refused as duplicate content, as the worker recorded it."""
    assert rig.send(rig.queue(text)).status == POSTED
    failed = rig.send(rig.queue(text))
    assert failed.status == FAILED and "duplicate content" in failed.last_error
    return failed


def tweetbot(rig: Rig, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`tweetbot ARGS…` as a real process on the rig's store."""
    return subprocess.run([TWEETBOT, *args], cwd=tmp_path, env=rig.env, capture_output=True, text=True,
                          timeout=120)


# -- post now --------------------------------------------------------------------------------


def test_post_now_makes_a_post_due_and_the_worker_sends_it_on_its_next_round(rig: Rig) -> None:
    post = queued_for_tomorrow(rig, "not tomorrow: now")
    assert rig.dispatch() == 0  # not due yet

    now = rig.clock()
    moved = post_now(rig.store, post.id, now)

    assert (moved.id, moved.due_at, moved.status, moved.next_attempt_at) == (post.id, now, SCHEDULED, None)
    assert rig.store.get_post(post.id) == moved  # durable
    [event] = rig.store.events(kind=DUE_NOW_EVENT)
    assert (event.post_id, event.detail) == (post.id, f"was due {post.due_at.isoformat()}")
    assert rig.at_x() == []  # moving the time posts nothing by itself
    assert rig.dispatch() == 1
    assert [p["text"] for p in rig.at_x()] == ["not tomorrow: now"]
    assert rig.store.get_post(post.id).status == POSTED


def test_post_now_drops_the_wait_before_a_retry(rig: Rig) -> None:
    rig.sandbox.fault(TWEETS, "status", status=503, times=1)
    waiting = rig.send(rig.queue("X was down a moment ago"))
    assert waiting.status == SCHEDULED and waiting.next_attempt_at is not None
    # The rig's backoff is 0.2 s; as a longer RETRY_BACKOFF would have it, the retry is an hour away.
    waiting = rig.store.update_post(waiting.id, next_attempt_at=rig.clock() + timedelta(hours=1))
    assert rig.dispatch() == 0

    moved = post_now(rig.store, waiting.id, rig.clock())

    assert moved.next_attempt_at is None and moved.attempts == 1  # the attempt made still counts
    assert rig.dispatch() == 1
    assert [p["text"] for p in rig.at_x()] == ["X was down a moment ago"]  # once: it was settled before


@pytest.mark.parametrize("state, reason", [
    ("sending", "post {id} is being sent right now"),
    ("posted", "post {id} is already posted"),
    ("canceled", "post {id} is already canceled"),
    ("failed", "post {id} has failed: retry it instead"),
    ("missing", "no post {id}"),
])
def test_post_now_refuses_a_post_that_is_not_scheduled_and_changes_nothing(
        tmp_path: Path, rig: Rig, state: str, reason: str) -> None:
    post = queued_for_tomorrow(rig, f"a post that is {state}")
    if state == "sending":
        post = rig.store.update_post(post.id, status=SENDING, sending_since=rig.clock())
    elif state == "posted":
        post = rig.send(rig.queue("went out"))
    elif state == "canceled":
        post = cancel(rig.store, post.id)
    elif state == "failed":
        post = failed_by_x(rig, "refused")
    post_id = 999 if state == "missing" else post.id
    before = store_files(tmp_path)

    with pytest.raises(QueueError) as refused:
        post_now(rig.store, post_id, rig.clock())

    assert str(refused.value) == reason.format(id=post_id)
    assert store_files(tmp_path) == before


# -- retry -----------------------------------------------------------------------------------


def test_retry_queues_a_failed_post_again_and_leaves_the_failed_one_as_it_was(rig: Rig) -> None:
    failed = failed_by_x(rig, "refused once, fine later https://example.com")
    now = rig.clock()

    again = retry(rig.store, failed.id, now, source="web")

    assert again.id != failed.id
    assert (again.parts, again.account_id, again.due_at, again.status, again.source, again.attempts) == (
        failed.parts, failed.account_id, now, SCHEDULED, "web", 0)
    assert again.last_error is None and again.tweet_ids == ()
    # the history keeps the failure as it was, now saying what it was queued again as
    assert rig.store.get_post(failed.id) == replace(failed, requeued_as=again.id)
    [event] = rig.store.events(kind=REQUEUED_EVENT)
    assert (event.post_id, event.detail) == (failed.id, f"queued again as post {again.id}")
    assert rig.dispatch() == 1
    assert [p["text"] for p in rig.at_x()] == ["refused once, fine later https://example.com"]
    assert rig.store.get_post(again.id).status == POSTED


def test_retrying_a_thread_cut_short_resumes_after_the_parts_x_has(rig: Rig) -> None:
    rig.sandbox.fault(TWEETS, "status", status=403, after=2, times=1)
    failed = rig.send(rig.queue("first", "second", "third"))
    assert failed.status == FAILED and failed.last_error.startswith("part 3: ")
    first_two = failed.tweet_ids[:2]

    again = retry(rig.store, failed.id, rig.clock())
    assert rig.dispatch() == 1

    done = rig.store.get_post(again.id)
    at_x = {p["id"]: p for p in rig.at_x()}
    assert done.status == POSTED and done.tweet_ids[:2] == first_two
    assert sorted(p["text"] for p in at_x.values()) == ["first", "second", "third"]  # nothing twice
    assert at_x[done.tweet_ids[2]]["reply_to"] == first_two[1]


@pytest.mark.parametrize("state", ["duplicate", "posted", "scheduled", "canceled", "retried", "disconnected",
                                   "missing"])
def test_retry_refuses_with_the_reason_and_changes_nothing(tmp_path: Path, rig: Rig, state: str) -> None:
    post: Post | None = None
    earlier: Post | None = None
    if state == "duplicate":
        post = duplicate_refused(rig)
        assert refused_as_duplicate(post)
    elif state == "posted":
        post = rig.send(rig.queue("went out fine"))
    elif state == "scheduled":
        post = queued_for_tomorrow(rig, "still waiting")
    elif state == "canceled":
        post = cancel(rig.store, queued_for_tomorrow(rig, "called off").id)
    elif state == "retried":
        post = failed_by_x(rig, "retried once already")
        earlier = retry(rig.store, post.id, rig.clock())
    elif state == "disconnected":
        post = failed_by_x(rig, "its account left")
        rig.store.update_account(post.account_id, status=DISCONNECTED, access_token=None, refresh_token=None)
    post_id = 999 if post is None else post.id
    reasons = {
        "duplicate": f"post {post_id} was refused by X as duplicate content, and X refuses the same text again, "
                     "so it is not retried",
        "posted": f"post {post_id} is posted, not failed: only a failed post can be retried",
        "scheduled": f"post {post_id} is scheduled, not failed: only a failed post can be retried",
        "canceled": f"post {post_id} is canceled, not failed: only a failed post can be retried",
        "retried": f"post {post_id} was already queued again as post {earlier.id if earlier else '?'}",
        "disconnected": f"@{rig.accounts[0].username} is disconnected: reconnect it first",
        "missing": "no post 999",
    }
    before = store_files(tmp_path)

    with pytest.raises(QueueError) as refused:
        retry(rig.store, post_id, rig.clock())

    assert str(refused.value) == reasons[state]
    assert store_files(tmp_path) == before


def test_a_failure_that_is_not_a_duplicate_is_not_taken_for_one(rig: Rig) -> None:
    assert not refused_as_duplicate(failed_by_x(rig, "forbidden, not duplicate"))
    rig.sandbox.fault(TWEETS, "status", status=400, times=1)
    bad_request = rig.send(rig.queue("a 400"))
    assert bad_request.status == FAILED and not refused_as_duplicate(bad_request)
    assert refused_as_duplicate(duplicate_refused(rig))


# -- the commands ------------------------------------------------------------------------------


def test_tweetbot_post_now_moves_the_post_and_the_worker_sends_it(tmp_path: Path, rig: Rig) -> None:
    post = queued_for_tomorrow(rig, "from the command line, now")

    result = tweetbot(rig, tmp_path, "post-now", str(post.id))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Post {post.id} (@{rig.accounts[0].username}) is due now (was due ")
    assert "a running worker sends it within seconds." in result.stdout
    moved = rig.store.get_post(post.id)
    assert moved.status == SCHEDULED and moved.due_at < post.due_at - timedelta(hours=23)
    assert rig.dispatch() == 1
    assert [p["text"] for p in rig.at_x()] == ["from the command line, now"]


def test_tweetbot_post_now_says_when_the_account_is_held(tmp_path: Path, rig: Rig) -> None:
    rig.sandbox.configure(usage_capped=True)
    held = rig.send(rig.queue("no credits left"))
    assert held.status == SCHEDULED

    result = tweetbot(rig, tmp_path, "post-now", str(held.id))

    assert result.returncode == 0, result.stderr
    assert f"note: @{rig.accounts[0].username} is held until " in result.stdout
    assert "(X usage cap: Usage cap exceeded" in result.stdout


def test_tweetbot_retry_queues_the_failed_post_again(tmp_path: Path, rig: Rig) -> None:
    failed = failed_by_x(rig, "one", "two https://example.com")

    result = tweetbot(rig, tmp_path, "retry", str(failed.id))

    assert result.returncode == 0, result.stderr
    [again] = rig.store.queued_posts()
    assert result.stdout.strip() == (f"Queued failed post {failed.id} again as thread {again.id} (2 parts) for "
                                     f"@{rig.accounts[0].username}, due now, $0.215 under pay-per-use.")
    assert (again.parts, again.source) == (("one", "two https://example.com"), "cli")


@pytest.mark.parametrize("command", ["post-now", "retry"])
def test_the_commands_refuse_with_the_reason_and_change_nothing(tmp_path: Path, rig: Rig, command: str) -> None:
    posted = rig.send(rig.queue("already out"))
    duplicate = duplicate_refused(rig, "twice over")
    target = posted if command == "post-now" else duplicate
    before = store_files(tmp_path)

    result = tweetbot(rig, tmp_path, command, str(target.id))

    assert result.returncode == 1
    expected = (f"post {target.id} is already posted" if command == "post-now" else
                f"post {target.id} was refused by X as duplicate content")
    assert f"tweetbot: {expected}" in result.stderr and "Traceback" not in result.stderr
    assert store_files(tmp_path) == before
