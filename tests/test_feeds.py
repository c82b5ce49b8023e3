"""Feeds (issue 23): a real HTTP server on 127.0.0.1 serves RSS 2.0 and Atom files that change over time;
the worker's own `read_feed` reads them into a real store and the dispatcher posts to the sandbox.

Conditional GETs are answered 304 when the ETag matches, so "nothing new" costs nothing; three readers
at once, each with a store handle of its own as three workers have, queue each entry once; a first
reading of a feed with 50 entries posts none of them; a broken feed is shown and read again only at
its next scheduled time.
"""
from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import schedule

from bot.feeds import FeedSpec, feed_spec, load_feeds, post_text, read_feed, schedule_feeds
from bot.models import utcnow
from bot.settings import load_settings
from xtext import weighted_length

from conftest import TWEETBOT, tweetbot_env
from sandbox_helpers import SandboxControl
from test_posting import Rig
from worker_support import WorkerProcess, connect_accounts, open_test_store, wait_until


class FeedServer:
    """Serves `documents[path]` with an ETag of its version; 304 to a request that sends that ETag back;
    `status[path]` answers with that status instead. Every request is kept (path, If-None-Match)."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[str, bytes]] = {}
        self.versions: dict[str, int] = {}  # each serve() of a path is a new version: a new ETag
        self.status: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests.append((self.path, self.headers.get("If-None-Match")))
                if self.path in server.status:
                    self.send_response(server.status[self.path])
                    self.end_headers()
                    return
                etag, body = server.documents[self.path]
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, path: str, body: str) -> None:
        self.versions[path] = self.versions.get(path, 0) + 1
        self.documents[path] = (f'"v{self.versions[path]}"', body.encode())


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.httpd.shutdown()


def rss(items: list[tuple[str, str]], ttl: int | None = None) -> str:
    """An RSS 2.0 document of (title, link) items, newest first, as blogs publish them."""
    now = utcnow()
    entries = "".join(f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
                      f"<pubDate>{format_datetime(now - timedelta(minutes=n))}</pubDate></item>"
                      for n, (title, link) in enumerate(items))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>a blog</title><link>https://blog.example/</link>'
            f"<description>posts</description>{f'<ttl>{ttl}</ttl>' if ttl else ''}{entries}</channel></rss>")


def atom(items: list[tuple[str, str]]) -> str:
    entries = "".join(f"<entry><title>{title}</title><link href='{link}'/><id>{link}</id>"
                      f"<updated>2026-12-01T00:00:00Z</updated></entry>" for title, link in items)
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>releases</title>'
            f"<id>urn:releases</id><updated>2026-12-01T00:00:00Z</updated>{entries}</feed>")


def spec_for(rig: Rig, url: str, **entry: object) -> FeedSpec:
    return feed_spec({"name": "blog", "url": url, "account": rig.accounts[0].handle, **entry}, "UTC")


def posts(count: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"Post number {n}", f"https://blog.example/{n}") for n in range(start + count - 1, start - 1, -1)]


def test_a_new_feed_posts_none_of_its_fifty_entries_then_each_new_one_once_with_three_readers(
        tmp_path: Path, sandbox: SandboxControl, feeds: FeedServer) -> None:
    rig = Rig(tmp_path, sandbox)
    spec = spec_for(rig, feeds.url + "/rss")
    readers = [open_test_store(rig.env) for _ in range(3)]

    def all_read() -> list[str]:
        with ThreadPoolExecutor(3) as pool:
            return [r.status for r in pool.map(lambda store: read_feed(spec, store, rig.clock), readers)]

    try:
        feeds.serve("/rss", rss(posts(50)))
        assert "new" in all_read() and rig.store.queued_posts() == []  # a new subscription never floods
        feeds.serve("/rss", rss(posts(53)))  # three new entries on top
        all_read()
        assert sorted(p.parts[0] for p in rig.store.queued_posts()) == [
            f"Post number {n} https://blog.example/{n}" for n in (50, 51, 52)]
        asked = len(feeds.requests)
        assert all_read() == ["unchanged"] * 3  # the ETag sent back: 304, nothing queued
        assert len(rig.store.queued_posts()) == 3
        assert [etag for _, etag in feeds.requests[asked:]] == [feeds.documents["/rss"][0]] * 3
        rig.dispatch()
    finally:
        rig.dispatcher.shutdown()
    assert sorted(row["text"] for row in sandbox.posts(rig.accounts[0].username)) == [
        f"Post number {n} https://blog.example/{n}" for n in (50, 51, 52)]  # in order: oldest first
    assert [row["text"].split()[2] for row in sandbox.posts(rig.accounts[0].username)] == ["50", "51", "52"]


def test_an_atom_feed_s_long_title_is_cut_at_a_word_and_its_link_kept_whole(
        tmp_path: Path, sandbox: SandboxControl, feeds: FeedServer) -> None:
    rig = Rig(tmp_path, sandbox)
    spec = spec_for(rig, feeds.url + "/atom", template="New release: {title} {link}", max_new=2)
    long_title = " ".join(f"word{n}" for n in range(80))
    feeds.serve("/atom", atom([("v1.0", "https://example.org/releases/1.0")]))
    read_feed(spec, rig.store, rig.clock)
    feeds.serve("/atom", atom([(long_title, "https://example.org/releases/2.0"),
                               ("v1.1 with &lt;b&gt;tags&lt;/b&gt;", "https://example.org/releases/1.1"),
                               ("v1.0", "https://example.org/releases/1.0")]))
    queued = read_feed(spec, rig.store, rig.clock).queued
    texts = [post.parts[0] for post in queued]
    assert texts[0] == "New release: v1.1 with tags https://example.org/releases/1.1"
    assert_cut_to_fit(texts[1], "New release: {} https://example.org/releases/2.0", long_title.split())


def assert_cut_to_fit(text: str, form: str, words: list[str]) -> None:
    """`text` is `form` holding the first of `words`, then "…": as many as fit in a post (one more would not)."""
    before, after = form.split("{}")
    assert text.startswith(before) and text.endswith("…" + after), text
    kept = len(text[len(before):-len("…" + after)].split())
    assert 0 < kept < len(words) and text == form.format(" ".join(words[:kept]) + "…")
    assert weighted_length(text) <= 280 < weighted_length(form.format(" ".join(words[:kept + 1]) + "…"))


def test_a_summary_as_long_as_an_article_is_cut_to_the_most_that_fits_and_the_title_and_link_stay_whole() -> None:
    summary = " ".join(f"sentence{n}" for n in range(5000))
    text = post_text("{title}: {summary} {link}", {"title": "Release 3.0", "summary": summary,
                                                    "link": "https://example.org/releases/3.0"})
    assert_cut_to_fit(text, "Release 3.0: {} https://example.org/releases/3.0", summary.split())


def test_a_failing_feed_is_shown_and_read_again_only_at_its_next_time(
        tmp_path: Path, sandbox: SandboxControl, feeds: FeedServer) -> None:
    rig = Rig(tmp_path, sandbox)
    (tmp_path / "tweetbot.toml").write_text(
        f'[[feed]]\nname = "blog"\nurl = "{feeds.url}/rss"\naccount = "{rig.accounts[0].handle}"\nevery = "hour"\n',
        encoding="utf-8")
    feeds.status["/rss"] = 500
    scheduler = schedule.Scheduler()
    settings = load_settings(None, {**rig.env, "GENERATORS_FILE": str(tmp_path / "tweetbot.toml")})
    [job] = schedule_feeds(scheduler, settings, rig.store, rig.clock)
    scheduler.run_all()
    scheduler.run_pending()  # nothing is due again: a failure does not bring the next reading forward
    assert len(feeds.requests) == 1
    assert job.next_run is not None and job.last_run is not None
    assert timedelta(hours=1) <= job.next_run - job.last_run < timedelta(hours=1, seconds=1)
    shown = subprocess.run([TWEETBOT, "feeds"], cwd=tmp_path, env=rig.env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 1 and "answered HTTP 500" in shown.stdout, shown.stdout + shown.stderr
    assert [e.detail for e in rig.store.events(kind="generator_failed")] == ["feed blog: answered HTTP 500"]
    del feeds.status["/rss"]
    feeds.serve("/rss", rss(posts(2)))
    scheduler.run_all()
    assert subprocess.run([TWEETBOT, "feeds"], cwd=tmp_path, env=rig.env, capture_output=True, text=True,
                          timeout=60).returncode == 0


def test_a_feed_s_ttl_is_respected_and_a_filter_keeps_only_what_matches(
        tmp_path: Path, sandbox: SandboxControl, feeds: FeedServer) -> None:
    rig = Rig(tmp_path, sandbox)
    spec = spec_for(rig, feeds.url + "/rss", filter="security|release")
    feeds.serve("/rss", rss(posts(1), ttl=60))
    assert read_feed(spec, rig.store, rig.clock).status == "new"
    feeds.serve("/rss", rss([("A security fix", "https://blog.example/s"), ("Lunch", "https://blog.example/l"),
                             *posts(1)], ttl=60))
    assert read_feed(spec, rig.store, rig.clock).status == "waiting" and len(feeds.requests) == 1
    rig.clock.advance(3601)
    read = read_feed(spec, rig.store, rig.clock)
    assert [p.parts[0] for p in read.queued] == ["A security fix https://blog.example/s"]


def test_the_file_s_feeds_are_checked_with_their_reasons(tmp_path: Path) -> None:
    path = tmp_path / "tweetbot.toml"
    path.write_text('[[feed]]\nurl = "ftp://x"\naccount = "@a"\n\n[[feed]]\nurl = "https://ok.example/feed"\n'
                    'account = "@a"\nevery = "fortnight"\n\n[[feed]]\nname = "fine"\nurl = "https://ok.example/f"\n'
                    'account = "@a"\nmax_new = 0\n\n[[feed]]\nurl = "https://ok.example/good"\naccount = "@a"\n',
                    encoding="utf-8")
    specs, problems = load_feeds(path)
    assert [s.url for s in specs] == ["https://ok.example/good"]
    assert [p.split(": ", 1)[1] for p in problems] == [
        "feed 1 (ftp://x): url = 'ftp://x' is not an http(s) URL",
        "feed 2 (https://ok.example/feed): every = 'fortnight' is not the schedule library's words "
        "(e.g. \"day at 09:00\", \"monday at 08:30\", \"3 hours\", \"hour at :15\")",
        "feed 3 (fine): max_new = 0 is not a whole number from 1 to 100"]


@pytest.mark.slow
def test_three_worker_processes_on_postgresql_post_each_new_entry_once(
        tmp_path: Path, sandbox: SandboxControl, feeds: FeedServer, database_url: str) -> None:
    """Three real `tweetbot worker` processes read one feed every second into one PostgreSQL; the sandbox's
    duplicate window is a second, so a second send of an entry would show as a second post."""
    sandbox.configure(rate_limits=False, duplicate_window=1)
    feeds.serve("/rss", rss(posts(50)))
    env = tweetbot_env(tmp_path, sandbox.url, DATABASE_URL=database_url)
    env.pop("STORE_PATH")
    store = open_test_store(env)
    [account] = connect_accounts(store, sandbox, 1, prefix="feeder")
    (tmp_path / "tweetbot.toml").write_text(
        f'[[feed]]\nname = "blog"\nurl = "{feeds.url}/rss"\naccount = "{account.handle}"\nevery = "1 second"\n',
        encoding="utf-8")
    workers = [WorkerProcess(env, tmp_path, name=f"worker{n}") for n in (1, 2, 3)]

    def at_x() -> list[str]:
        return [row["text"] for row in sandbox.posts(account.username)]

    def readings_after(count: int) -> int:
        return sum(1 for path, _ in feeds.requests[count:] if path == "/rss")

    try:
        wait_until(lambda: "subscribed_at" in (store.get_meta("feed:blog") or {}), 60, "the first reading")
        feeds.serve("/rss", rss(posts(53)))
        wait_until(lambda: len(at_x()) >= 3, 60, "the three new entries at X")
        asked = len(feeds.requests)
        wait_until(lambda: readings_after(asked) >= 9, 60, "three more readings by each worker")
        feeds.serve("/rss", rss(posts(55)))
        wait_until(lambda: len(at_x()) >= 5, 60, "two more entries at X")
        asked = len(feeds.requests)
        wait_until(lambda: readings_after(asked) >= 9, 60, "three more readings by each worker")
        wait_until(lambda: not store.queued_posts(), 60, "every queued post sent")
        assert all(worker.terminate() == 0 for worker in workers)
    finally:
        for worker in workers:
            worker.stop_quietly()
    assert sorted(at_x()) == sorted(f"Post number {n} https://blog.example/{n}" for n in range(50, 55))
    assert sum(1 for _, etag in feeds.requests if etag) > 0  # the workers asked conditionally
