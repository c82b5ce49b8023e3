"""Posts with media against the sandbox's real answers, through the worker's own dispatcher:
simple and chunked uploads, processing, alt text, faults on an upload step, an expired
media id, a missing scope, and settling a post with media by the timeline."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from bot.media_checks import MediaFile
from bot.models import FAILED, POSTED, SCHEDULED, Post
from bot.posting.media_uploads import MEDIA_LEAD
from bot.queue import QueueError, queue_post, retry
from bot.settings import DEFAULT_SCOPES
from bot.xclient import SEGMENT_BYTES

from media_support import image_bytes, video_bytes
from sandbox_helpers import SandboxControl
from test_posting import Rig

MEDIA_SCOPES = list(DEFAULT_SCOPES)
APPEND = "POST /2/media/upload/:id/append"
STATUS = "GET /2/media/upload"
TWEETS = "POST /2/tweets"


@pytest.fixture
def rig(tmp_path: Path, sandbox: SandboxControl) -> Rig:
    return Rig(tmp_path, sandbox, scopes=MEDIA_SCOPES)


def queue_with(rig: Rig, media: Sequence[Sequence[MediaFile]], *parts: str, due_in: float = 0) -> Post:
    """A post queued through the queue's own checks, with its files."""
    due = rig.clock() + timedelta(seconds=due_in)
    return queue_post(rig.store, rig.accounts[0].user_id, parts or ("with media",), due, rig.clock(), media=media)


def requests_to(sandbox: SandboxControl, endpoint: str) -> int:
    return sandbox.state("request_counts")["request_counts"].get(endpoint, 0)


def at_x_once(rig: Rig, post: Post) -> list[dict]:
    """The post is `posted`, and X holds each of its parts once: their rows at X, in order."""
    done = rig.store.get_post(post.id)
    assert done is not None and done.status == POSTED, done
    rows = {row["id"]: row for row in rig.at_x()}
    assert len(rows) == len(done.parts)
    return [rows[tweet_id] for tweet_id in done.tweet_ids]


def test_an_image_post_goes_out_with_its_image(rig: Rig) -> None:
    post = queue_with(rig, [[MediaFile("chart.png", image_bytes("PNG", 1))]], "today's chart")
    rig.dispatch()
    [row] = at_x_once(rig, post)
    assert [m["type"] for m in row["media"]] == ["photo"]
    assert row["text"] == "today's chart"
    assert row["x_text"].startswith("today's chart https://t.co/")
    assert rig.store.get_post(post.id).attempts == 1


def test_four_images_with_alt_text(rig: Rig) -> None:
    files = [MediaFile(f"{n}.png", image_bytes(fmt, n), f"picture {n}")
             for n, fmt in enumerate(("PNG", "JPEG", "WEBP", "GIF"))][:3]
    files.append(MediaFile("3.jpg", image_bytes("JPEG", 9)))
    post = queue_with(rig, [files])
    rig.dispatch()
    [row] = at_x_once(rig, post)
    assert [(m["type"], m["alt_text"]) for m in row["media"]] == [
        ("photo", "picture 0"), ("photo", "picture 1"), ("photo", "picture 2"), ("photo", None)]


@pytest.mark.parametrize("name, data, kind", [
    ("loop.gif", image_bytes("GIF", 3, (600, 600), noise=True), "animated_gif"),
    ("clip.mp4", video_bytes(2 * SEGMENT_BYTES + 1000), "video"),
])
def test_a_gif_and_a_video_go_through_the_chunked_upload_and_processing(
        rig: Rig, name: str, data: bytes, kind: str) -> None:
    rig.sandbox.configure(media_processing_seconds=2)
    post = queue_with(rig, [[MediaFile(name, data)]])
    rig.dispatch()
    [row] = at_x_once(rig, post)
    assert [m["type"] for m in row["media"]] == [kind]
    segments = -(-len(data) // SEGMENT_BYTES)
    assert requests_to(rig.sandbox, APPEND) == segments
    assert requests_to(rig.sandbox, "POST /2/media/upload") == 0  # not the simple upload
    assert requests_to(rig.sandbox, STATUS) >= 1  # polled until processing succeeded


def test_a_503_on_one_append_resends_that_segment_and_posts_once(rig: Rig) -> None:
    rig.sandbox.fault(APPEND, "status", status=503, after=1, times=1)
    data = video_bytes(3 * SEGMENT_BYTES)
    post = queue_with(rig, [[MediaFile("clip.mp4", data)]])
    rig.dispatch()
    [row] = at_x_once(rig, post)
    assert [m["type"] for m in row["media"]] == ["video"]
    assert requests_to(rig.sandbox, APPEND) == 3 + 1
    assert rig.store.get_post(post.id).attempts == 1


def test_processing_failed_fails_the_post_with_xs_reason(rig: Rig) -> None:
    rig.sandbox.configure(media_processing="failed")
    post = queue_with(rig, [[MediaFile("clip.mp4", video_bytes(5000))]])
    rig.dispatch()
    failed = rig.store.get_post(post.id)
    assert failed.status == FAILED
    assert failed.last_error == "X refused its media: X could not process clip.mp4: Unsupported video format"
    assert failed.attempts == 0 and rig.at_x() == []


def test_an_upload_x_does_not_answer_costs_no_attempt_and_goes_up_again(rig: Rig) -> None:
    rig.sandbox.fault("POST /2/media/upload", "status", status=503, times=1)
    post = queue_with(rig, [[MediaFile("a.png", image_bytes("PNG", 5))]])
    rig.dispatch()
    waiting = rig.store.get_post(post.id)
    assert waiting.status == SCHEDULED and waiting.attempts == 0 and waiting.uploads == {}
    assert "uploading its media failed" in (waiting.last_error or "") and rig.at_x() == []
    rig.clock.advance(60)  # past the upload's backoff
    rig.dispatch()
    [row] = at_x_once(rig, post)
    assert len(row["media"]) == 1 and rig.store.get_post(post.id).attempts == 1


def test_an_expired_media_id_at_post_time_is_uploaded_again_and_posted_once(rig: Rig) -> None:
    post = queue_with(rig, [[MediaFile("a.png", image_bytes("PNG", 6))]], due_in=60)
    assert rig.dispatch() == 1  # due within MEDIA_LEAD: its media go up now, the post waits for its time
    uploaded = rig.store.get_post(post.id)
    assert uploaded.status == SCHEDULED and len(uploaded.uploads) == 1
    rig.sandbox.expire_media(uploaded.uploads["0.0"]["id"])
    rig.clock.advance(61)
    rig.dispatch()
    [row] = at_x_once(rig, post)
    assert row["media"][0]["id"] != uploaded.uploads["0.0"]["id"]
    assert requests_to(rig.sandbox, "POST /2/media/upload") == 2
    assert rig.store.get_post(post.id).attempts == 1


def test_media_go_up_ahead_of_time_but_not_earlier_than_the_lead(rig: Rig) -> None:
    later = queue_with(rig, [[MediaFile("a.png", image_bytes("PNG", 7))]], due_in=MEDIA_LEAD.total_seconds() + 120)
    rig.dispatch()
    assert rig.store.get_post(later.id).uploads == {}
    rig.clock.advance(130)
    rig.dispatch()
    assert rig.store.get_post(later.id).uploads and rig.store.get_post(later.id).status == SCHEDULED


def test_an_account_without_media_write_fails_the_post_with_the_reason(tmp_path: Path,
                                                                       sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox)  # the sandbox's default grant: no media.write
    account = rig.accounts[0]
    rig.store.update_account(account.user_id, scopes=tuple(MEDIA_SCOPES))  # what we believe, not what X granted
    post = queue_with(rig, [[MediaFile("a.png", image_bytes("PNG", 8))]])
    rig.store.update_account(account.user_id, scopes=account.scopes)
    rig.dispatch()
    failed = rig.store.get_post(post.id)
    assert failed.status == FAILED and failed.attempts == 0
    assert failed.last_error.startswith("X refused its media: ")
    assert failed.last_error.endswith(f"({account.handle} was connected without the media.write scope: "
                                      "reconnect to post media)")
    assert rig.at_x() == []


def test_a_post_with_media_x_stored_without_answering_is_settled_by_the_timeline(rig: Rig) -> None:
    rig.sandbox.fault(TWEETS, "store_then_drop", times=1)
    post = queue_with(rig, [[MediaFile("a.png", image_bytes("PNG", 11))]], "stored, then the line dropped")
    rig.dispatch()
    [row] = at_x_once(rig, post)
    assert row["x_text"] != row["text"]  # X's text carries the media link; settling matched it anyway
    assert requests_to(rig.sandbox, TWEETS) == 1


def test_a_thread_with_media_on_two_parts(rig: Rig) -> None:
    post = queue_with(rig, [[MediaFile("a.png", image_bytes("PNG", 12), "first")], [],
                            [MediaFile("b.png", image_bytes("PNG", 13), "third")]], "one", "two", "three")
    rig.dispatch()
    rows = at_x_once(rig, post)
    assert [[m["alt_text"] for m in row["media"]] for row in rows] == [["first"], [], ["third"]]
    assert [row["reply_to"] for row in rows] == [None, rows[0]["id"], rows[1]["id"]]


def test_the_workers_cleanup_forgets_the_media_of_posts_finished_past_the_retention(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox, scopes=MEDIA_SCOPES, MEDIA_RETENTION_DAYS="1")
    posted = queue_with(rig, [[MediaFile("a.png", image_bytes("PNG", 14))]])
    rig.dispatch()
    waiting = queue_with(rig, [[MediaFile("b.png", image_bytes("PNG", 15))]], due_in=7 * 86400)
    rig.clock.advance(86400 + 60)
    rig.worker.forget_media()
    assert sorted(rig.store.media_digests()) == sorted(waiting.digests())
    assert rig.store.get_post(posted.id).status == POSTED


@pytest.mark.slow
def test_a_failed_post_is_retried_with_its_media_while_the_store_keeps_them(rig: Rig) -> None:
    rig.sandbox.configure(media_processing="failed")
    kept, gone = (queue_with(rig, [[MediaFile(f"{n}.mp4", video_bytes(3000, seed=n))]], f"clip {n}")
                  for n in range(2))
    rig.dispatch()
    assert [rig.store.get_post(p.id).status for p in (kept, gone)] == [FAILED, FAILED]
    rig.sandbox.configure(media_processing="succeeded")
    again = retry(rig.store, kept.id, rig.clock())
    assert again.media == kept.media
    rig.dispatch()
    [row] = at_x_once(rig, again)
    assert [m["type"] for m in row["media"]] == ["video"]
    rig.store.delete_media(gone.digests())
    before = rig.store.dump()
    with pytest.raises(QueueError, match=f"post {gone.id}'s media were deleted .* queue it again with its files"):
        retry(rig.store, gone.id, rig.clock())
    assert rig.store.dump() == before
