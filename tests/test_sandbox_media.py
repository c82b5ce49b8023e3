"""v2 media upload in the sandbox: simple and chunked, STATUS polling, attaching to posts."""
from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest
import requests

from sandbox_helpers import SandboxControl, SpecRecorder

MEDIA_SCOPES = ["tweet.read", "tweet.write", "users.read", "offline.access", "media.write"]


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

    def tweet(self, text: str, media_ids: list[str]) -> requests.Response:
        return self.http.post(self.url + "/2/tweets", json={"text": text, "media": {"media_ids": media_ids}},
                              timeout=10)


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


def test_processing_can_fail(sandbox: SandboxControl, alice: Uploader) -> None:
    sandbox.configure(media_processing="failed")
    gif = b"GIF89a" + struct.pack("<HH", 4, 4) + b"\0" * 20
    media = alice.simple(gif, "tweet_gif").json()["data"]
    assert media["processing_info"]["state"] == "pending"
    alice.status(media["id"])
    final = alice.status(media["id"]).json()["data"]["processing_info"]
    assert final["state"] == "failed"
    assert alice.tweet("broken gif", [media["id"]]).status_code == 400


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
