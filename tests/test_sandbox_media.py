"""v2 media upload in the sandbox: simple and chunked, STATUS polling, alt text, attaching to posts.

Every X answer goes through a session the `xcheck` fixture watches, so each body is also
validated against X's spec 2.167; the one exception is a `failed` STATUS answer, whose
`processing_info.error` (X's documented shape) the 2.167 spec does not list: those are
checked against the spec without `error`, and `error` against X's shape.
"""
from __future__ import annotations

import re
import struct
import zlib
from typing import Any

import pytest
import requests

from sandbox_helpers import SandboxControl, SpecRecorder

MEDIA_SCOPES = ["tweet.read", "tweet.write", "users.read", "offline.access", "media.write"]
FORBIDDEN = {"title": "Forbidden", "type": "about:blank", "status": 403, "detail": "Forbidden"}
SERVICE_UNAVAILABLE = {"title": "Service Unavailable", "type": "about:blank", "status": 503,
                       "detail": "Service Unavailable"}
INVALID_MEDIA = "Your media IDs are invalid."
PROCESSING_ERROR = {"code": 1, "name": "InvalidMedia", "message": "Unsupported video format"}
MEDIA_LINK = re.compile(r" https://t\.co/[A-Za-z0-9]{10}$")
GIF = b"GIF89a" + struct.pack("<HH", 4, 4) + b"\0" * 20
MP4 = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom" + b"\0" * 100
MOV = b"\0\0\0\x14ftypqt  \0\0\0\0qt  " + b"\0" * 100


def png(width: int, height: int) -> bytes:
    """A real (tiny, grey) PNG image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class Uploader:
    def __init__(self, sandbox: SandboxControl, xcheck: SpecRecorder, user: str) -> None:
        self.url = sandbox.url
        self.http = xcheck.attach(requests.Session())
        self.http.headers["Authorization"] = "Bearer " + sandbox.grant(user, scopes=MEDIA_SCOPES)["access_token"]

    def simple(self, data: bytes, category: str = "tweet_image") -> requests.Response:
        return self.http.post(self.url + "/2/media/upload", files={"media": ("m.bin", data)},
                              data={"media_category": category}, timeout=10)

    def init(self, **body: Any) -> requests.Response:
        return self.http.post(self.url + "/2/media/upload/initialize", json=body, timeout=10)

    def append(self, media_id: str, index: int, data: bytes) -> requests.Response:
        return self.http.post(f"{self.url}/2/media/upload/{media_id}/append", files={"media": ("c", data)},
                              data={"segment_index": str(index)}, timeout=10)

    def finalize(self, media_id: str) -> requests.Response:
        return self.http.post(f"{self.url}/2/media/upload/{media_id}/finalize", timeout=10)

    def status(self, media_id: str) -> requests.Response:
        return self.http.get(self.url + "/2/media/upload", params={"command": "STATUS", "media_id": media_id},
                             timeout=10)

    def tweet(self, text: str, media_ids: list[str], **extra: Any) -> requests.Response:
        return self.http.post(self.url + "/2/tweets",
                              json={"text": text, "media": {"media_ids": media_ids}, **extra}, timeout=10)

    def alt(self, media_id: str, text: str) -> requests.Response:
        return self.metadata({"id": media_id, "metadata": {"alt_text": {"text": text}}})

    def metadata(self, body: Any) -> requests.Response:
        return self.http.post(self.url + "/2/media/metadata", json=body, timeout=10)

    def image(self, width: int = 2, height: int = 2) -> str:
        answer = self.simple(png(width, height))
        assert answer.status_code == 200, answer.text
        return str(answer.json()["data"]["id"])

    def chunked(self, data: bytes, media_type: str, category: str, segment: int = 1000) -> str:
        media_id = self.init(media_type=media_type, total_bytes=len(data), media_category=category).json()["data"]["id"]
        for index, start in enumerate(range(0, len(data), segment)):
            assert self.append(media_id, index, data[start:start + segment]).status_code == 200
        assert self.finalize(media_id).status_code == 200
        return str(media_id)


@pytest.fixture
def alice(sandbox: SandboxControl, xcheck: SpecRecorder) -> Uploader:
    return Uploader(sandbox, xcheck, "sandbox_alice")


def test_simple_image_upload_then_post(sandbox: SandboxControl, alice: Uploader) -> None:
    image = png(3, 2)
    answer = alice.simple(image)
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["image"] == {"image_type": "image/png", "w": 3, "h": 2}
    assert data["size"] == len(image) and data["media_key"] == "3_" + data["id"]
    assert "processing_info" not in data
    post = alice.tweet("with a picture", [data["id"]])
    assert post.status_code == 201
    fields = alice.http.get(f"{sandbox.url}/2/tweets/{post.json()['data']['id']}",
                            params={"tweet.fields": "attachments"}, timeout=10).json()["data"]
    assert fields["attachments"] == {"media_keys": [data["media_key"]]}
    assert sandbox.posts()[0]["media_ids"] == [data["id"]]


def test_chunked_video_is_processed_through_status_polls(sandbox: SandboxControl, alice: Uploader) -> None:
    media = alice.init(media_type="video/mp4", total_bytes=3000, media_category="tweet_video").json()["data"]
    assert media["media_key"] == "7_" + media["id"]
    assert alice.append(media["id"], 0, b"\0" * 1500).json()["data"]["expires_at"] > sandbox.now()
    alice.append(media["id"], 1, b"\1" * 1500)
    final = alice.finalize(media["id"]).json()["data"]
    assert final["size"] == 3000 and final["processing_info"]["state"] == "pending"

    refused = alice.tweet("too early", [media["id"]])
    assert refused.status_code == 400 and refused.json()["errors"][0]["message"] == "Your media IDs are invalid."

    states = [alice.status(media["id"]).json()["data"]["processing_info"]["state"] for _ in range(3)]
    assert states == ["in_progress", "succeeded", "succeeded"]
    assert alice.tweet("a video", [media["id"]]).status_code == 201


def failed_status(alice: Uploader, xcheck: SpecRecorder, media_id: str) -> dict[str, Any]:
    """A STATUS answer expected to be `failed`: its body checked against the spec without
    `processing_info.error`, and that against X's documented shape."""
    answer = requests.get(alice.url + "/2/media/upload", params={"command": "STATUS", "media_id": media_id},
                          headers={"Authorization": alice.http.headers["Authorization"]}, timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    info = body["data"]["processing_info"]
    assert info["state"] == "failed" and info.pop("error") == PROCESSING_ERROR
    xcheck.spec.check_success(body, "get", "/2/media/upload", 200)
    return body["data"]


def test_processing_can_fail(sandbox: SandboxControl, xcheck: SpecRecorder, alice: Uploader) -> None:
    sandbox.configure(media_processing="failed")
    media = alice.simple(GIF, "tweet_gif").json()["data"]
    assert media["processing_info"]["state"] == "pending"
    alice.status(media["id"])
    assert failed_status(alice, xcheck, media["id"])["processing_info"]["progress_percent"] == 100
    refused = alice.tweet("broken gif", [media["id"]])
    assert refused.status_code == 400 and refused.json()["errors"][0]["message"] == INVALID_MEDIA
    assert sandbox.posts() == []


def test_upload_refusals(sandbox: SandboxControl, xcheck: SpecRecorder, alice: Uploader) -> None:
    assert alice.simple(b"not an image").status_code == 400
    assert alice.simple(png(1, 1), "tweet_sticker").status_code == 400
    assert alice.init(media_type="image/png", total_bytes=6 * 1024 * 1024, media_category="tweet_image").status_code == 400
    short = alice.init(media_type="image/png", total_bytes=500).json()["data"]
    alice.append(short["id"], 0, png(1, 1))
    assert alice.finalize(short["id"]).status_code == 400  # fewer bytes than announced
    assert alice.append(short["id"], 1000, b"x").status_code == 400
    assert alice.status("123").status_code == 404

    mine = alice.simple(png(1, 1)).json()["data"]["id"]
    bob = Uploader(sandbox, xcheck, "sandbox_bob")
    assert bob.tweet("not my media", [mine]).status_code == 400
    assert bob.tweet("five", [mine] * 5).status_code == 400
    assert sandbox.posts() == []


def test_chunked_image_is_ready_at_finalize(alice: Uploader) -> None:
    image = png(5, 7)
    media = alice.init(media_type="image/png", total_bytes=len(image), media_category="tweet_image").json()["data"]
    alice.append(media["id"], 0, image[:20])
    alice.append(media["id"], 1, image[20:])
    final = alice.finalize(media["id"]).json()["data"]
    assert "processing_info" not in final
    assert alice.tweet("chunked picture", [media["id"]]).status_code == 201


# --- alt text: POST /2/media/metadata ---------------------------------------------------------


def test_alt_text_is_kept_on_the_media(sandbox: SandboxControl, alice: Uploader) -> None:
    media_id = alice.image()
    answer = alice.alt(media_id, "A bar chart: sales doubled in May")
    assert answer.status_code == 200
    assert answer.json() == {"data": {"id": media_id, "associated_metadata": {
        "alt_text": {"text": "A bar chart: sales doubled in May"}}}}
    assert alice.alt(media_id, "x" * 1000).status_code == 200  # the limit itself is fine; the last one counts
    media = {m["id"]: m for m in sandbox.state("media")["media"]}
    assert media[media_id]["alt_text"] == "x" * 1000 and media[media_id]["type"] == "photo"


def test_alt_text_refusals(sandbox: SandboxControl, xcheck: SpecRecorder, alice: Uploader) -> None:
    media_id = alice.image()
    refusals = {
        "$.colour: is not defined in the schema and the schema does not allow additional properties":
            {"id": media_id, "colour": "red"},
        "$.metadata.mood: is not defined in the schema and the schema does not allow additional properties":
            {"id": media_id, "metadata": {"mood": {}}},
        "$.metadata.alt_text.lang: is not defined in the schema and the schema does not allow additional "
        "properties": {"id": media_id, "metadata": {"alt_text": {"text": "hi", "lang": "en"}}},
        "$.metadata.alt_text.text: may only be 1000 characters long":
            {"id": media_id, "metadata": {"alt_text": {"text": "x" * 1001}}},
        "$.metadata.alt_text.text: is missing but it is required": {"id": media_id, "metadata": {"alt_text": {}}},
        "$.metadata.alt_text.text: integer found, string expected":
            {"id": media_id, "metadata": {"alt_text": {"text": 5}}},
        "$.metadata: array found, object expected": {"id": media_id, "metadata": []},
        "$.id: is missing but it is required": {"metadata": {"alt_text": {"text": "hi"}}},
        "$.id: does not match the regex pattern ^[0-9]{1,19}$": {"id": "abc"},
        "Request body must be a JSON object.": ["not", "an", "object"],
    }
    for message, body in refusals.items():
        answer = alice.metadata(body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["errors"][0]["message"] == message
        assert answer.json()["type"] == "https://api.twitter.com/2/problems/invalid-request"
    unknown = alice.alt("123", "hi")
    assert unknown.status_code == 404 and unknown.json()["resource_type"] == "media"
    bob = Uploader(sandbox, xcheck, "sandbox_bob")
    assert bob.alt(media_id, "not mine").status_code == 404
    assert [m["alt_text"] for m in sandbox.state("media")["media"]] == [None]


# --- media.write on every media endpoint --------------------------------------------------------


def test_every_media_endpoint_needs_media_write(sandbox: SandboxControl, xcheck: SpecRecorder,
                                                alice: Uploader) -> None:
    media_id = alice.image()
    http = xcheck.attach(requests.Session())
    http.headers["Authorization"] = "Bearer " + sandbox.grant("sandbox_alice")["access_token"]
    url = sandbox.url + "/2/media"
    answers = [
        http.post(url + "/upload", files={"media": ("m", png(1, 1))}, data={"media_category": "tweet_image"},
                  timeout=10),
        http.post(url + "/upload/initialize", json={"media_type": "image/png", "total_bytes": 10}, timeout=10),
        http.post(f"{url}/upload/{media_id}/append", files={"media": ("c", b"x")}, data={"segment_index": "0"},
                  timeout=10),
        http.post(f"{url}/upload/{media_id}/finalize", timeout=10),
        http.get(url + "/upload", params={"command": "STATUS", "media_id": media_id}, timeout=10),
        http.post(url + "/metadata", json={"id": media_id, "metadata": {"alt_text": {"text": "hi"}}}, timeout=10),
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(403, FORBIDDEN)] * 6
    assert len(sandbox.state("media")["media"]) == 1


# --- faults on each upload step ----------------------------------------------------------------


def test_a_fault_can_target_each_upload_step(sandbox: SandboxControl, alice: Uploader) -> None:
    image = png(2, 2)
    draft = alice.init(media_type="image/png", total_bytes=len(image)).json()["data"]["id"]
    steps = {
        "POST /2/media/upload": lambda: alice.simple(image),
        "POST /2/media/upload/initialize": lambda: alice.init(media_type="image/png", total_bytes=len(image)),
        "POST /2/media/upload/:id/append": lambda: alice.append(draft, 0, image),
        "POST /2/media/upload/:id/finalize": lambda: alice.finalize(draft),
        "GET /2/media/upload": lambda: alice.status(draft),
        "POST /2/media/metadata": lambda: alice.alt(draft, "hi"),
    }
    for endpoint, call in steps.items():
        sandbox.fault(endpoint, "status", status=503, times=1)
        failed = call()
        assert (failed.status_code, failed.json()) == (503, SERVICE_UNAVAILABLE), endpoint
        assert call().status_code in (200, 400), endpoint  # the fault fired once and is gone
    assert sandbox.state("faults")["faults"] == []


def test_one_append_fails_with_503_and_the_upload_resumes(sandbox: SandboxControl, alice: Uploader) -> None:
    sandbox.fault("POST /2/media/upload/:id/append", "status", status=503, after=1, times=1)
    video = MP4 + b"\1" * (3000 - len(MP4))
    media_id = alice.init(media_type="video/mp4", total_bytes=len(video), media_category="tweet_video").json()["data"]["id"]
    codes = [alice.append(media_id, i, video[i * 1000:(i + 1) * 1000]).status_code for i in (0, 1, 1, 2)]
    assert codes == [200, 503, 200, 200]
    final = alice.finalize(media_id).json()["data"]
    assert final["size"] == len(video) and final["video"] == {"video_type": "video/mp4"}
    while alice.status(media_id).json()["data"]["processing_info"]["state"] != "succeeded":
        pass
    assert alice.tweet("after a retried append", [media_id]).status_code == 201
    assert len(sandbox.posts()) == 1
    assert sandbox.state("request_counts")["request_counts"]["POST /2/media/upload/:id/append"] == 4


# --- processing that takes sandbox seconds ---------------------------------------------------


def test_processing_takes_the_configured_seconds(sandbox: SandboxControl, alice: Uploader) -> None:
    assert sandbox.configure(media_processing_seconds=30)["media_processing_seconds"] == 30
    media_id = alice.chunked(MP4 + b"\0" * 3000, "video/mp4", "tweet_video")
    info = alice.status(media_id).json()["data"]["processing_info"]
    assert info["state"] == "in_progress" and 29 <= info["check_after_secs"] <= 30
    assert alice.status(media_id).json()["data"]["processing_info"]["state"] == "in_progress"
    assert alice.tweet("not yet", [media_id]).json()["errors"][0]["message"] == INVALID_MEDIA
    sandbox.advance(20)
    info = alice.status(media_id).json()["data"]["processing_info"]
    assert info["state"] == "in_progress" and 9 <= info["check_after_secs"] <= 10
    assert 60 <= info["progress_percent"] <= 70
    sandbox.advance(10)
    info = alice.status(media_id).json()["data"]["processing_info"]
    assert info == {"state": "succeeded", "progress_percent": 100}
    assert alice.tweet("a processed video", [media_id]).status_code == 201


def test_processing_goes_on_without_polls(sandbox: SandboxControl, alice: Uploader) -> None:
    sandbox.configure(media_processing_seconds=5)
    media = alice.simple(GIF, "tweet_gif").json()["data"]
    assert media["processing_info"] == {"state": "pending", "progress_percent": 0, "check_after_secs": 5}
    sandbox.advance(5)
    assert alice.tweet("never polled", [media["id"]]).status_code == 201
    sandbox.configure(media_processing_seconds=0)
    stepped = alice.simple(GIF, "tweet_gif").json()["data"]
    assert stepped["processing_info"]["check_after_secs"] == 1
    assert alice.status(stepped["id"]).json()["data"]["processing_info"]["state"] == "in_progress"


def test_fail_next_fails_only_the_next_upload(sandbox: SandboxControl, xcheck: SpecRecorder,
                                              alice: Uploader) -> None:
    sandbox.configure(media_processing="fail_next", media_processing_seconds=2)
    broken = alice.chunked(MP4 + b"\0" * 500, "video/mp4", "tweet_video")
    assert sandbox.configure()["media_processing"] == "succeeded"
    fine = alice.chunked(MOV + b"\0" * 500, "video/quicktime", "tweet_video")
    sandbox.advance(2)
    failed_status(alice, xcheck, broken)
    assert alice.status(fine).json()["data"]["processing_info"]["state"] == "succeeded"
    assert alice.tweet("broken", [broken]).status_code == 400
    assert alice.tweet("fine", [fine]).status_code == 201


# --- posting with media ------------------------------------------------------------------------


def test_post_media_rules(sandbox: SandboxControl, xcheck: SpecRecorder, alice: Uploader) -> None:
    images = [alice.image() for _ in range(5)]
    gif = alice.simple(GIF, "tweet_gif").json()["data"]["id"]
    video = alice.simple(MP4, "tweet_video").json()["data"]["id"]
    for ready in (gif, video):
        alice.status(ready)
        alice.status(ready)
    pending = alice.simple(MP4, "tweet_video").json()["data"]["id"]
    bobs = Uploader(sandbox, xcheck, "sandbox_bob").image()
    expired = alice.image()
    assert sandbox.expire_media(expired) == {"id": expired, "media_key": "3_" + expired, "expires_after_secs": 0}
    refused = {
        "gif and image": [gif, images[0]], "two videos": [video, video], "video and gif": [video, gif],
        "unknown": ["123"], "bob's": [bobs], "pending": [pending], "expired": [expired],
    }
    for text, ids in refused.items():
        answer = alice.tweet(text, ids)
        assert answer.status_code == 400, text
        assert answer.json()["errors"][0] == {"parameters": {"media.media_ids": ids}, "message": INVALID_MEDIA}
    assert alice.tweet("five", images).status_code == 400
    assert alice.tweet("with a poll", images[:1], poll={"options": ["a", "b"], "duration_minutes": 5}).status_code == 400
    assert alice.tweet("with a quote", images[:1], quote_tweet_id="1").status_code == 400
    assert sandbox.posts() == []
    for text, ids in {"four images": images[:4], "one gif": [gif], "one video": [video]}.items():
        assert alice.tweet(text, ids).status_code == 201, text
    keys = [[m["media_key"] for m in p["media"]] for p in sandbox.posts()]
    assert keys == [["3_" + i for i in images[:4]], ["16_" + gif], ["7_" + video]]


def test_media_expire_after_a_day_of_sandbox_clock(sandbox: SandboxControl, xcheck: SpecRecorder,
                                                    alice: Uploader) -> None:
    media = alice.simple(png(1, 1)).json()["data"]
    assert media["expires_after_secs"] == 86400
    sandbox.advance(86399)
    later = Uploader(sandbox, xcheck, "sandbox_alice")  # alice's token lived two hours
    assert later.status(media["id"]).json()["data"]["expires_after_secs"] <= 1
    sandbox.advance(1)
    assert later.tweet("a day late", [media["id"]]).json()["errors"][0]["message"] == INVALID_MEDIA


def test_text_of_a_post_with_media_ends_with_one_link(sandbox: SandboxControl, alice: Uploader) -> None:
    two = [alice.image(), alice.image()]
    answer = alice.tweet("Two & more pictures", two).json()["data"]
    assert MEDIA_LINK.search(answer["text"]) and answer["text"].startswith("Two &amp; more pictures https://t.co/")
    assert answer["text"].count("https://t.co/") == 1
    user_id = sandbox.user("sandbox_alice")["id"]
    timeline = alice.http.get(f"{sandbox.url}/2/users/{user_id}/tweets", timeout=10).json()["data"]
    assert timeline[0]["text"] == answer["text"]
    stored = sandbox.posts()[0]
    assert stored["text"] == "Two & more pictures" and stored["x_text"] == answer["text"]
    only_media = alice.http.post(sandbox.url + "/2/tweets", json={"media": {"media_ids": [alice.image()]}},
                                 timeout=10).json()["data"]
    assert re.fullmatch(r"https://t\.co/[A-Za-z0-9]{10}", only_media["text"])
    again = alice.tweet("Two & more pictures", [alice.image()])
    assert again.status_code == 403 and "duplicate content" in again.json()["detail"]


def test_control_posts_list_media_with_type_and_alt_text(sandbox: SandboxControl, alice: Uploader) -> None:
    chart, photo = alice.image(), alice.image()
    alice.alt(chart, "A chart")
    assert alice.tweet("two images", [chart, photo]).status_code == 201
    assert sandbox.posts("sandbox_alice")[0]["media"] == [
        {"id": chart, "media_key": "3_" + chart, "type": "photo", "alt_text": "A chart"},
        {"id": photo, "media_key": "3_" + photo, "type": "photo", "alt_text": None},
    ]


# --- image bytes, the timeline page --------------------------------------------------------------


def test_images_are_kept_and_served(sandbox: SandboxControl, alice: Uploader) -> None:
    small = png(3, 3)
    big = png(64, 64) + b"\0" * (5 * 1024 * 1024 - len(png(64, 64)))  # the 5 MB limit exactly
    simple = alice.simple(big).json()["data"]
    chunked = alice.chunked(small, "image/png", "tweet_image", segment=10)
    for key, data in ((simple["media_key"], big), ("3_" + chunked, small)):
        served = requests.get(f"{sandbox.url}/_sandbox/media/{key}", timeout=10)
        assert served.status_code == 200 and served.content == data
        assert served.headers["Content-Type"] == "image/png"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
    gif = alice.simple(GIF, "tweet_gif").json()["data"]["media_key"]
    assert requests.get(f"{sandbox.url}/_sandbox/media/{gif}", timeout=10).status_code == 404
    assert requests.get(f"{sandbox.url}/_sandbox/media/3_1", timeout=10).status_code == 404


def test_timeline_shows_images_with_alt_text(sandbox: SandboxControl, alice: Uploader) -> None:
    chart = alice.image()
    alice.alt(chart, 'Sales <b>doubled</b> & "more"')
    assert alice.tweet("pictures", [chart, alice.image()]).status_code == 201
    gif = alice.simple(GIF, "tweet_gif").json()["data"]["id"]
    alice.status(gif)
    alice.status(gif)
    assert alice.tweet("a gif", [gif]).status_code == 201
    page = requests.get(sandbox.url + "/sandbox_alice", timeout=10).text
    escaped = "Sales &lt;b&gt;doubled&lt;/b&gt; &amp; &#34;more&#34;"
    assert f'<img src="/_sandbox/media/3_{chart}" alt="{escaped}">' in page
    assert f'<figcaption class="alt">Alt: {escaped}</figcaption>' in page
    assert "<b>doubled" not in page and " · 2 media" in page
    assert f'data-media-key="16_{gif}"' in page and f"GIF (16_{gif})" in page
    assert "<script" not in page and "style=\"" not in page.split('id="timeline"')[1]


# --- WEBP, MP4, MOV ------------------------------------------------------------------------------


def webp(chunk: bytes, payload: bytes) -> bytes:
    """A RIFF/WEBP file with one chunk."""
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_webp_sizes_are_read_from_each_chunk_kind(alice: Uploader) -> None:
    lossy = webp(b"VP8 ", b"\0\0\0\x9d\x01\x2a" + struct.pack("<HH", 640, 480) + b"\0" * 10)
    lossless_bits = (300 - 1) | ((200 - 1) << 14)
    lossless = webp(b"VP8L", b"\x2f" + lossless_bits.to_bytes(4, "little") + b"\0" * 10)
    extended = webp(b"VP8X", b"\0\0\0\0" + (1919).to_bytes(3, "little") + (1079).to_bytes(3, "little"))
    sizes = [alice.simple(data).json()["data"]["image"] for data in (lossy, lossless, extended)]
    assert sizes == [{"image_type": "image/webp", "w": 640, "h": 480},
                     {"image_type": "image/webp", "w": 300, "h": 200},
                     {"image_type": "image/webp", "w": 1920, "h": 1080}]
    assert alice.simple(webp(b"VP8 ", b"\0" * 4)).status_code == 400


def test_mp4_and_mov_video_uploads(alice: Uploader) -> None:
    for data, video_type in ((MP4, "video/mp4"), (MOV, "video/quicktime")):
        answer = alice.simple(data, "tweet_video").json()["data"]
        assert answer["video"] == {"video_type": video_type} and answer["media_key"].startswith("7_")
    refused = alice.simple(b"\0" * 200, "tweet_video")
    assert refused.status_code == 400 and refused.json()["errors"][0]["message"] == "media type unrecognized."
    chunked = alice.chunked(MOV + b"\0" * 2000, "video/mp4", "tweet_video")
    assert alice.status(chunked).json()["data"]["video"] == {"video_type": "video/quicktime"}
