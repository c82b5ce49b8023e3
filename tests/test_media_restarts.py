"""Real worker processes killed with SIGKILL around media: between the upload and the post,
in the middle of a chunked upload, and between two parts of a thread with media. After a
restart every post is at X once, with its media. Both stores."""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.media_checks import MediaFile
from bot.models import POSTED, Post, utcnow
from bot.queue import queue_post
from bot.settings import DEFAULT_SCOPES
from bot.store import Repository
from bot.xclient import SEGMENT_BYTES

from media_support import image_bytes, video_bytes
from sandbox_helpers import SandboxControl
from test_worker_posting import env_for
from worker_support import (
    WorkerProcess,
    connect_accounts,
    open_test_store,
    wait_until,
    wait_until_x_has_finished_abandoned_calls,
)

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out

TWEETS = "POST /2/tweets"
APPEND = "POST /2/media/upload/:id/append"


def requests_to(sandbox: SandboxControl, endpoint: str) -> int:
    return sandbox.state("request_counts")["request_counts"].get(endpoint, 0)


def kill_worker_once(env: dict[str, str], tmp_path: Path, condition: Callable[[], Any], what: str) -> None:
    """Start a worker and SIGKILL it as soon as `condition()` holds."""
    worker = WorkerProcess(env, tmp_path)
    try:
        wait_until(condition, 30, what)
        worker.kill()
    finally:
        worker.stop_quietly()


def finish_with_a_new_worker(env: dict[str, str], tmp_path: Path, store: Repository, post: Post) -> None:
    """Start a worker, wait for the post to be `posted`, stop it with SIGTERM (exit 0)."""
    worker = WorkerProcess(env, tmp_path, name="again")
    try:
        wait_until(lambda: store.get_post(post.id).status == POSTED, 60, "the post to go out")
        assert worker.terminate() == 0
    finally:
        worker.stop_quietly()


def media_at_x(sandbox: SandboxControl, post: Post, store: Repository) -> list[list[str | None]]:
    """Each part of the stored post as X holds it (every post at X belongs to it): its media's alt texts."""
    done = store.get_post(post.id)
    rows = {row["id"]: row for row in sandbox.posts()}
    assert sorted(rows) == sorted(done.tweet_ids), "X holds exactly the post's parts, each once"
    return [[m["alt_text"] for m in rows[tweet_id]["media"]] for tweet_id in done.tweet_ids]


def test_sigkill_between_the_upload_and_the_post(tmp_path: Path, sandbox: SandboxControl,
                                                 store_env: dict[str, str]) -> None:
    env = env_for(tmp_path, sandbox, **store_env)
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="kill", scopes=list(DEFAULT_SCOPES))
    post = queue_post(store, account.user_id, ["uploaded, then killed"], utcnow() + timedelta(seconds=20),
                      media=[[MediaFile("a.png", image_bytes("PNG", 1), "the picture")]])
    kill_worker_once(env, tmp_path, lambda: store.get_post(post.id).uploads, "the media to be at X")
    assert store.get_post(post.id).tweet_ids == () and sandbox.posts() == []
    finish_with_a_new_worker(env, tmp_path, store, post)
    assert media_at_x(sandbox, post, store) == [["the picture"]]
    assert requests_to(sandbox, "POST /2/media/upload") == 1  # the id X gave before the kill was used


def test_sigkill_in_the_middle_of_a_chunked_upload(tmp_path: Path, sandbox: SandboxControl) -> None:
    sandbox.fault(APPEND, "latency", latency=6.0, after=1, times=1)  # the second segment hangs: kill then
    env = env_for(tmp_path, sandbox)
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="chunk", scopes=list(DEFAULT_SCOPES))
    post = queue_post(store, account.user_id, ["a video, cut short"], utcnow(),
                      media=[[MediaFile("clip.mp4", video_bytes(3 * SEGMENT_BYTES))]])
    kill_worker_once(env, tmp_path, lambda: requests_to(sandbox, APPEND) >= 2, "the second segment in flight")
    cut = store.get_post(post.id)
    assert cut.uploads == {} and cut.attempts == 0 and sandbox.posts() == []
    finish_with_a_new_worker(env, tmp_path, store, post)
    assert media_at_x(sandbox, post, store) == [[None]]
    assert requests_to(sandbox, "POST /2/media/upload/initialize") == 2  # started over


def test_sigkill_between_two_parts_of_a_thread_with_media(tmp_path: Path, sandbox: SandboxControl,
                                                          store_env: dict[str, str]) -> None:
    # Part 2's call hangs, then fails without storing anything: the kill lands while it hangs.
    sandbox.fault(TWEETS, "status", status=503, latency=5.0, after=1, times=1)
    env = env_for(tmp_path, sandbox, HTTP_TIMEOUT="3", **store_env)
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="thread", scopes=list(DEFAULT_SCOPES))
    media = [[MediaFile(f"{n}.png", image_bytes("PNG", n), f"picture {n}")] for n in range(1, 4)]
    post = queue_post(store, account.user_id, ["one", "two", "three"], utcnow(), media=media)
    kill_worker_once(env, tmp_path, lambda: requests_to(sandbox, TWEETS) >= 2, "part 2 in flight")
    cut = store.get_post(post.id)
    assert cut.status == "sending" and len([t for t in cut.tweet_ids if t]) == 1
    wait_until_x_has_finished_abandoned_calls(sandbox)  # the hanging call ends at X (stores nothing)
    finish_with_a_new_worker(env, tmp_path, store, post)
    assert media_at_x(sandbox, post, store) == [["picture 1"], ["picture 2"], ["picture 3"]]
    done = store.get_post(post.id)
    replies = {row["id"]: row["reply_to"] for row in sandbox.posts()}
    assert [replies[t] for t in done.tweet_ids] == [None, *done.tweet_ids[:2]]
