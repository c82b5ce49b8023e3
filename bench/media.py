"""What media cost on top of X's own work, against the sandbox on loopback.

    .venv/bin/python bench/media.py [--store file|postgres]

(a) wall time for a real worker to post 100 due posts, each with its own 1 MB image
    (10 accounts), against a bare loop of the same uploads and posts with `requests`,
    one after another, to the same sandbox (target: ratio <= 1.3);
(b) a 50 MB video's upload through the bot's X seam (`XApi.upload`: initialize, 4 MiB
    appends, finalize, STATUS) against a bare chunked upload with `requests` of the same
    segments (target: ratio <= 1.2). Both poll STATUS without waiting the
    `check_after_secs` the sandbox asks for, so the figure is transfer and API work only.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import requests
from dispatch import seconds_to_post
from stores import FILE, add_store_option, store_env

from bot.media_checks import MediaFile, inspect  # noqa: E402
from bot.models import utcnow  # noqa: E402
from bot.queue import queue_post  # noqa: E402
from bot.settings import DEFAULT_SCOPES, load_settings  # noqa: E402
from bot.xclient import SEGMENT_BYTES, XClient  # noqa: E402

from conftest import start_sandbox, stop_process, tweetbot_env  # noqa: E402
from media_support import png_of_size, video_bytes  # noqa: E402
from sandbox_helpers import SandboxControl  # noqa: E402
from worker_support import connect_accounts, open_test_store  # noqa: E402

MB = 1024 * 1024


def worker_run(work: Path, sandbox: SandboxControl, images: list[bytes], store_kind: str) -> float:
    """Queue one post per image over 10 accounts, due now; seconds from the worker's start until all are out."""
    with store_env(store_kind, prefix="tweetbot_bench_media") as where:
        work.mkdir(parents=True, exist_ok=True)
        env = tweetbot_env(work, sandbox.url, **where)
        store = open_test_store(env)
        accounts = connect_accounts(store, sandbox, 10, prefix="wmedia", scopes=list(DEFAULT_SCOPES))
        now = utcnow()
        for n, data in enumerate(images):
            queue_post(store, accounts[n % 10].user_id, [f"worker image {n}"], now, now,
                       media=[[MediaFile(f"{n}.png", data)]])
        try:
            return seconds_to_post(env, work, sandbox, len(images))
        finally:
            store.close()


def bare_session(sandbox: SandboxControl, prefix: str) -> requests.Session:
    """A keep-alive session with a media.write token of a new sandbox user."""
    [user] = sandbox.create_users(1, prefix=prefix)
    session = requests.Session()
    token = sandbox.grant(user["id"], scopes=list(DEFAULT_SCOPES))["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def bare_image_loop(sandbox: SandboxControl, images: list[bytes]) -> float:
    """The same uploads and posts by plain requests calls, one after another."""
    sessions = [bare_session(sandbox, f"bare{n}") for n in range(10)]
    started = time.monotonic()
    for n, data in enumerate(images):
        session = sessions[n % 10]
        media = session.post(f"{sandbox.url}/2/media/upload", data={"media_category": "tweet_image"},
                             files={"media": (f"{n}.png", data, "image/png")}).json()["data"]
        session.post(f"{sandbox.url}/2/tweets", json={"text": f"bare image {n}",
                                                      "media": {"media_ids": [media["id"]]}}).raise_for_status()
    return time.monotonic() - started


def bare_chunked(sandbox: SandboxControl, data: bytes) -> float:
    """initialize, appends of SEGMENT_BYTES, finalize, STATUS until done: plain requests."""
    session = bare_session(sandbox, "barevideo")
    base = f"{sandbox.url}/2/media/upload"
    started = time.monotonic()
    media_id = session.post(f"{base}/initialize", json={"media_type": "video/mp4", "total_bytes": len(data),
                                                        "media_category": "tweet_video"}).json()["data"]["id"]
    for index, offset in enumerate(range(0, len(data), SEGMENT_BYTES)):
        session.post(f"{base}/{media_id}/append", data={"segment_index": str(index)},
                     files={"media": ("blob", data[offset:offset + SEGMENT_BYTES])}).raise_for_status()
    media = session.post(f"{base}/{media_id}/finalize").json()["data"]
    while media.get("processing_info", {}).get("state") in ("pending", "in_progress"):
        media = session.get(base, params={"command": "STATUS", "media_id": media_id}).json()["data"]
    return time.monotonic() - started


def seam_chunked(work: Path, sandbox: SandboxControl, data: bytes) -> float:
    """The same upload through `XApi.upload`, as the worker makes it."""
    settings = load_settings(dotenv_path=None, environ=tweetbot_env(work, sandbox.url))
    [user] = sandbox.create_users(1, prefix="seamvideo")
    api = XClient(settings).api(sandbox.grant(user["id"], scopes=list(DEFAULT_SCOPES))["access_token"])
    ref = inspect(MediaFile("clip.mp4", data))
    started = time.monotonic()
    api.upload(ref, data, sleep=lambda seconds: None)
    return time.monotonic() - started


def main(store_kind: str = FILE) -> None:
    print(f"store: {store_kind}", flush=True)
    images = [png_of_size(MB, seed=n) for n in range(100)]
    print(f"images: 100 PNGs of {statistics.mean(map(len, images)) / MB:.2f} MB each", flush=True)
    video = video_bytes(50 * MB)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        server = start_sandbox(work / "sandbox")
        try:
            sandbox = SandboxControl(server.url)
            sandbox.configure(rate_limits=False)
            bare_before = bare_image_loop(sandbox, images)
            wall = worker_run(work / "a", sandbox, images, store_kind)
            bare = (bare_before + bare_image_loop(sandbox, images)) / 2
            print(f"(a) 100 posts with a 1 MB image each, 10 accounts: worker {wall:.2f} s, bare requests loop "
                  f"{bare:.2f} s (mean of one run before and one after), ratio {wall / bare:.2f} (target <= 1.3)")
            seam = [seam_chunked(work, sandbox, video) for _ in range(3)]
            plain = [bare_chunked(sandbox, video) for _ in range(3)]
            print(f"(b) 50 MB video, chunked ({-(-len(video) // SEGMENT_BYTES)} segments of 4 MiB): bot's seam "
                  f"median {statistics.median(seam):.2f} s, bare requests median {statistics.median(plain):.2f} s "
                  f"(3 runs each), ratio {statistics.median(seam) / statistics.median(plain):.2f} (target <= 1.2)")
        finally:
            stop_process(server.process)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_option(parser)
    main(store_kind=parser.parse_args().store)
