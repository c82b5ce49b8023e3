"""A person's visit, in headless Chromium, against gunicorn with 2 workers and the sandbox.

Sign in → Connect → the sandbox's consent page → pick a user → Authorize → the dashboard
shows the account active with its expiry → compose a thread for later (the live counter
agrees with the server) → the queue shows it and its cost → give the account slots →
compose into the next free slot → Post now → Cancel → Disconnect → the sandbox shows the
token revoked. Also: the page's counter (static/counter.js) against `xtext` on every text of
twitter-text's conformance suite; and media: choose two images in the compose form (previews,
alt text, the limits flagged before upload), queue, Post now, a real worker posts them, and
the sandbox's timeline page shows both with their alt text (screenshots in tmp_path).

Needs Debian's `chromium` (/usr/bin/chromium); Playwright drives it.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot import queue, webhooks
from bot.models import FAILED, POSTED, Post, utcnow
from bot.schedules import parse_slots, save_slots
from xtext import parse_post, weighted_length

from sandbox_helpers import SandboxControl
from web_support import PASSWORD, gunicorn, open_store, web_env
from worker_support import WorkerProcess, connect_user, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Page, base: str) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(base + "/")
    page.wait_for_load_state("load")  # the URL changes before the dashboard's scripts have run


def connect_in_browser(page: Page, sandbox: SandboxControl, username: str) -> None:
    """Press Connect and authorize `username` on the sandbox's consent page, which must ask for
    every default scope (offline.access for the token chain, media.write for media)."""
    page.click("#connect")
    page.wait_for_url(sandbox.url + "/i/oauth2/authorize?*")
    for scope in ("offline.access", "media.write"):
        expect(page.locator("#scopes")).to_contain_text(scope)
    page.select_option("#user_id", sandbox.user(username)["id"])
    page.click("#authorize")


def test_connect_compose_and_disconnect_in_a_real_browser(tmp_path: Path, sandbox: SandboxControl) -> None:
    with gunicorn(tmp_path, sandbox, workers=2) as server, chromium() as browser:
        page = browser.new_page()
        console: list[str] = []  # what our pages (not the sandbox's) said on the console
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}")
                if message.location.get("url", "").startswith(server.url) else None)
        pages: list[str] = []

        sign_in(page, server.url)
        pages.append(page.content())

        connect_in_browser(page, sandbox, "sandbox_bob")

        page.wait_for_url(server.url + "/")
        expect(page.locator(".flash.ok")).to_have_text("Connected @sandbox_bob")
        row = page.locator('tr[data-account="@sandbox_bob"]')
        expect(row.locator(".status")).to_contain_text("active")
        expect(row.locator(".expiry")).to_have_text(re.compile(r"expires in (1 h 5\d min|2 h) "))
        pages.append(page.content())
        bob = open_store(server.settings).find_account("sandbox_bob")
        assert bob is not None and bob.access_token and bob.refresh_token

        first = "Hello from a real browser 👋🏽 see https://example.com/a/long/path/counted/as/23 日本語"
        page.fill("#part-1", first)
        expect(page.locator("#count-1")).to_have_text(f"{weighted_length(first)} / 280")
        page.click("#add-part")
        page.fill("#part-2", "x" * 281)
        expect(page.locator("#count-2")).to_have_text("281 / 280")
        expect(page.locator("#count-2")).to_have_class(re.compile(r"\bover\b"))
        page.fill("#part-2", "and a second part")
        due = (utcnow() + timedelta(days=2)).replace(hour=9, minute=30)
        page.fill("#due_at", due.strftime("%Y-%m-%dT%H:%M"))
        page.click("#queue-post")

        expect(page.locator(".flash.ok")).to_have_text(f"Queued a thread of 2 parts for {due:%Y-%m-%d} 09:30 UTC.")
        queued = page.locator("#queue tr.post")
        expect(queued).to_have_count(1)
        expect(queued).to_contain_text("Hello from a real browser")
        expect(queued).to_contain_text("and a second part")
        expect(queued).to_contain_text(f"{due:%Y-%m-%d} 09:30 UTC")
        expect(queued.locator(".cost")).to_have_text("$0.215")  # $0.20 for the part with a link, $0.015
        expect(page.locator("#queue-cost")).to_have_text("Next 30 days: 1 post (2 parts, each billed), $0.215.")

        # Slots for bob, a post in the next free one (the time field steps aside), Post now, Cancel.
        editor = page.locator(f"#slots-{bob.user_id}")
        editor.locator("input[name=spec]").fill("daily 09:00")
        editor.locator("input[name=tz]").fill("Europe/Berlin")
        editor.locator("button", has_text="Save slots").click()
        expect(page.locator(".flash.ok")).to_have_text("@sandbox_bob posts at daily 09:00 (Europe/Berlin).")
        expect(editor.locator("ul.next-free li")).to_have_count(5)
        first_slot = editor.locator("ul.next-free li").first.inner_text()
        expect(page.locator("#due_at")).to_be_enabled()
        page.check("#when-slot")
        expect(page.locator("#due_at")).to_be_disabled()
        page.fill("#part-1", "in the next free slot")
        page.click("#queue-post")
        expect(page.locator(".flash.ok")).to_have_text(
            f"Queued a post for {first_slot.split(' (')[0]} (the account's next free slot).")
        slotted = page.locator("#queue tr.post", has_text="in the next free slot")
        slotted.locator("button", has_text="Post now").click()
        expect(page.locator(".flash.ok")).to_contain_text("is due now: the worker sends it on its next round.")
        expect(slotted).not_to_contain_text(first_slot.split(" (")[0])
        pages.append(page.content())
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        slotted.locator("a", has_text="Cancel").click()
        expect(page.locator("#confirm h1")).to_have_text(re.compile(r"Cancel post \d+\?"))
        page.click("#confirm-button")
        expect(page.locator(".flash.ok")).to_contain_text("Canceled post")
        expect(queued).to_have_count(1)

        row.locator("a", has_text="Disconnect").click()  # asks first: nothing is revoked yet
        expect(page.locator("#confirm h1")).to_have_text("Disconnect @sandbox_bob?")
        expect(page.locator("#confirm")).to_contain_text("This revokes @sandbox_bob's tokens at X")
        page.screenshot(path=str(tmp_path / "confirm-disconnect.png"), full_page=True)
        assert [c["status"] for c in sandbox.state("chains")["chains"]] == ["active"]
        page.click("#confirm-back")
        expect(row.locator(".status")).to_contain_text("active")
        assert [c["status"] for c in sandbox.state("chains")["chains"]] == ["active"]
        row.locator("a", has_text="Disconnect").click()
        page.click("#confirm-button")

        expect(page.locator(".flash.ok")).to_contain_text("Disconnected @sandbox_bob")
        expect(row.locator(".status")).to_contain_text("disconnected")
        expect(page.locator("#queue tr.post")).to_contain_text("is disconnected: its posts are held")
        pages.append(page.content())

    chains = sandbox.state("chains")["chains"]
    assert [(c["username"], c["status"], c["revoked_reason"]) for c in chains] == [
        ("sandbox_bob", "revoked", "revoke_endpoint")]
    assert "revoked" in [e["kind"] for e in sandbox.token_events() if e["username"] == "sandbox_bob"]
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    assert not [line for line in console if "Content Security Policy" in line or line.startswith("error")], console
    log = server.log()
    assert "GET /oauth/callback" in log and "POST /accounts/" in log
    for token in (bob.access_token, bob.refresh_token):
        assert token not in log
        assert not [html for html in pages if token in html]


def conformance_texts(reference: Path) -> list[str]:
    """Every text in twitter-text's validate.yml (length cases and extraction cases)."""
    suite: dict[str, Any] = yaml.safe_load((reference / "twitter-text" / "validate.yml").read_text())
    return [case["text"] for cases in suite["tests"].values() for case in cases if isinstance(case.get("text"), str)]


EXTRA_TEXTS = [
    "", "plain ascii", "café", "cafe\u0301", "日本語のテキスト", "👨‍👩‍👧‍👦 family", "🏳️‍🌈", "🇩🇪🇫🇷", "#️⃣ keycap",
    "👍🏿", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "a\U0001d400b", "example.com", "see example.com/path?q=1.", "http://t.co/abc123",
    "https://t.co/" + "a" * 41, "www.example.co.uk", "test.xn--p1ai", "пример.рф", "foo.com.bar.baz", "a.b",
    "https://example.com/" + "x" * 300, "-example.com", "_example.com", "user@example.com", "$example.com",
    "http://münchen.de/path", "xn--mnchen-3ya.de", "a" * 280, "a" * 281, "\ufeffinvalid", "\u200b zero width",
    "two urls https://a.com and b.org", "(https://example.com/path_(with)_parens)",
    "https://" + "a" * 64 + ".com", "https://" + "a" * 63 + ".com", "http://xn--" + "a" * 60 + ".com",
]


def test_the_live_counter_agrees_with_the_server(tmp_path: Path, sandbox: SandboxControl, reference: Path) -> None:
    base = conformance_texts(reference) + EXTRA_TEXTS
    texts = base + [f"({text}) 日本 👍🏽." for text in base]  # the same in other company
    assert len(texts) > 250
    with gunicorn(tmp_path, sandbox, workers=2) as server, chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        sign_in(page, server.url)
        assert page.evaluate("window.tweetbotText.ready") is True
        counted = page.evaluate("texts => texts.map(t => window.tweetbotText.measure(t).weightedLength)", texts)

    expected = [parse_post(text).weighted_length for text in texts]
    differ = [(text, js, py) for text, js, py in zip(texts, counted, expected, strict=True) if js != py]
    assert differ == [], differ[:10]
    assert errors == []


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_a_refused_compose_opens_at_its_message(tmp_path: Path, sandbox: SandboxControl, width: int,
                                                height: int) -> None:
    """The answer to a refused form is a long page (a full queue and history below the form): it opens
    with the reason inside the viewport, the text typed still in the form."""
    with gunicorn(tmp_path, sandbox, workers=2) as server, chromium() as browser:
        store = open_store(server.settings)
        frank = connect_user(store, sandbox, sandbox.create_users(1, "refused")[0])
        store.add_posts([Post(id=0, account_id=frank.user_id, parts=(f"queued {n} " + "words " * 30,),
                              due_at=utcnow() + timedelta(days=1, minutes=n)) for n in range(20)])
        page = browser.new_context(viewport={"width": width, "height": height}).new_page()
        sign_in(page, server.url)
        assert page.evaluate("document.documentElement.scrollHeight") > 2 * height  # the page is long
        page.fill("#part-1", "typed before a refusal")
        page.fill("#due_at", "2020-01-01T09:00")
        page.click("#queue-post")
        message = page.locator("#compose .flash.error")
        expect(message).to_have_text("Not queued: Wed 2020-01-01 09:00 UTC is in the past.")
        expect(message).to_be_in_viewport(ratio=1)
        box = message.bounding_box()
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height, box
        expect(page.locator("#part-1")).to_have_value("typed before a refusal")
        assert len(store.queued_posts()) == 20


def test_the_queue_button_waits_while_a_part_is_too_long(tmp_path: Path, sandbox: SandboxControl) -> None:
    with gunicorn(tmp_path, sandbox, workers=2) as server, chromium() as browser:
        connect_user(open_store(server.settings), sandbox, sandbox.create_users(1, "toolong")[0])
        page = browser.new_page()
        sign_in(page, server.url)
        button, reason = page.locator("#queue-post"), page.locator("#queue-blocked")
        expect(button).to_be_enabled()
        expect(reason).to_be_hidden()
        page.fill("#part-1", "x" * 300)
        expect(page.locator("#count-1")).to_have_text("300 / 280")
        expect(button).to_be_disabled()
        expect(reason).to_have_text("Not ready to queue: part 1 is over 280 characters.")
        page.click("#add-part")
        page.fill("#part-2", "y" * 281)
        expect(reason).to_have_text("Not ready to queue: part 1 is over 280 characters; "
                                    "part 2 is over 280 characters.")
        page.fill("#part-1", "x" * 280)
        page.fill("#part-2", "and the rest")
        expect(button).to_be_enabled()
        expect(reason).to_be_hidden()
        page.check("#when-now")
        expect(page.locator("#due_at")).to_be_disabled()
        button.click()
        expect(page.locator(".flash.ok")).to_have_text(
            "Queued a thread of 2 parts for now: the worker sends it on its next round.")
        [post] = open_store(server.settings).queued_posts()
        assert post.parts == ("x" * 280, "and the rest") and post.due_at <= utcnow()


def write_png(path: Path, color: tuple[int, int, int]) -> bytes:
    """A real PNG on disk (what a person picks in the file chooser); its bytes."""
    Image.new("RGB", (160, 90), color).save(path, format="PNG")
    return path.read_bytes()


def test_compose_two_images_with_alt_text_and_see_them_on_the_sandbox(tmp_path: Path,
                                                                      sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox)
    chart, photo = tmp_path / "chart.png", tmp_path / "photo.png"
    images = [write_png(chart, (220, 60, 40)), write_png(photo, (40, 90, 220))]
    alts = ["A red bar chart of sign-ups", "A blue photo of the sea"]
    five = [tmp_path / f"five-{n}.png" for n in range(5)]
    for n, path in enumerate(five):
        write_png(path, (n * 50, 200, 0))
    huge, notes = tmp_path / "huge.png", tmp_path / "notes.png"
    huge.write_bytes(images[0] + b"\0" * (5 * 1024 * 1024))  # a PNG's first bytes, over 5 MB
    notes.write_text("a text file named .png\n")
    broken = tmp_path / "broken.png"
    broken.write_bytes(images[0][:40] + b"junk" * 10)
    with gunicorn(tmp_path, sandbox, workers=2, env=env) as server, chromium() as browser:
        page = browser.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}")
                if message.location.get("url", "").startswith(server.url) else None)
        sign_in(page, server.url)
        connect_in_browser(page, sandbox, "sandbox_alice")
        page.wait_for_url(server.url + "/")
        expect(page.locator("#media-limits")).to_contain_text("1–4 images, or one GIF, or one video")

        # A PNG's first bytes, then junk: flagged before upload, and Queue waits until it is put right.
        page.fill("#part-1", "Two pictures from a real browser")
        page.set_input_files("#media-1", [str(broken)])
        expect(page.locator("#compose .previews li.file .file-problem")).to_have_text(
            "broken.png: the image cannot be read (it is cut short or damaged); choose a whole copy")
        expect(page.locator("#queue-post")).to_be_disabled()
        expect(page.locator("#queue-blocked")).to_contain_text("broken.png: the image cannot be read")

        # A form only the server can refuse (a time in the past): the reason, the text kept, the file
        # listed to choose again, and its alt text back when it is chosen again.
        page.set_input_files("#media-1", [str(chart)])
        expect(page.locator("#queue-post")).to_be_enabled()
        page.fill("#alt-1-1", "typed before the refusal")
        page.fill("#due_at", "2020-01-01T09:00")
        page.click("#queue-post")
        expect(page.locator("#compose .flash.error")).to_contain_text("Not queued: Wed 2020-01-01 09:00 UTC is in the past")
        expect(page.locator("#part-1")).to_have_value("Two pictures from a real browser")
        expect(page.locator("#compose .chosen-before li")).to_have_text(
            "chart.png: alt text “typed before the refusal”")
        page.set_input_files("#media-1", [str(chart)])
        expect(page.locator("#alt-1-1")).to_have_value("typed before the refusal")
        assert open_store(server.settings).queued_posts() == []

        # Five images are flagged before upload, and the browser will not send the form.
        page.set_input_files("#media-1", [str(p) for p in five])
        expect(page.locator("#compose .previews li.file")).to_have_count(5)
        expect(page.locator("#compose .part-problem")).to_have_text("5 files: X takes at most 4 images per post")
        assert page.evaluate("document.getElementById('media-1').checkValidity()") is False
        page.set_input_files("#media-1", [str(huge), str(notes)])
        expect(page.locator("#compose .previews li.file .file-problem")).to_have_text([
            "huge.png: over X's 5 MB limit for an image",
            "notes.png: not a file X can post (PNG, JPEG, WEBP, GIF, MP4 or MOV, read from its bytes)"])
        assert page.evaluate("document.getElementById('media-1').checkValidity()") is False
        page.click("#add-part")  # a new part comes with a file field of its own, empty
        expect(page.locator("#media-2")).to_have_attribute("name", "media-2")
        expect(page.locator("#parts .part").nth(1).locator(".previews li")).to_have_count(0)

        # Two images: a preview and an alt-text field each; queue for later, then Post now.
        page.set_input_files("#media-1", [str(chart), str(photo)])
        previews = page.locator("#parts .part").first.locator(".previews li.file")
        expect(previews).to_have_count(2)
        expect(page.locator("#parts .part").first.locator(".part-problem")).to_have_text("")
        for index, alt in enumerate(alts, start=1):
            expect(previews.nth(index - 1).locator("img.preview")).to_be_visible()
            page.fill(f"#alt-1-{index}", alt)
        expect(previews.first.locator(".alt-counter")).to_have_text(f"{len(alts[0])} / 1000")
        page.locator("#compose").screenshot(path=str(tmp_path / "compose-media.png"))
        due = (utcnow() + timedelta(days=2)).replace(hour=9, minute=30)
        page.fill("#due_at", due.strftime("%Y-%m-%dT%H:%M"))
        page.click("#queue-post")
        expect(page.locator(".flash.ok")).to_have_text(f"Queued a post with 2 images for {due:%Y-%m-%d} 09:30 UTC.")
        queued = page.locator("#queue tr.post")
        expect(queued.locator("img.thumb")).to_have_count(2)
        for index, alt in enumerate(alts):
            thumb = queued.locator("img.thumb").nth(index)
            expect(thumb).to_have_attribute("alt", alt)
            assert thumb.evaluate("img => img.complete && img.naturalWidth") == 160  # served by /media/<digest>
        expect(queued).to_contain_text("with 2 images")
        store = open_store(server.settings)
        [post] = store.queued_posts()
        assert [(ref.name, ref.alt) for ref in post.media[0]] == [("chart.png", alts[0]), ("photo.png", alts[1])]
        queued.locator("button", has_text="Post now").click()
        expect(page.locator(".flash.ok")).to_contain_text("is due now")

        worker = WorkerProcess(env, tmp_path)
        try:
            worker.wait_started()
            wait_until(lambda: store.get_post(post.id).status == POSTED, 60, "the worker to post it")
            assert worker.terminate() == 0, worker.log()
        finally:
            worker.stop_quietly()

        page.reload()
        history = page.locator("#history tr.post", has_text="Two pictures from a real browser")
        expect(history.locator("img.thumb")).to_have_count(2)
        page.screenshot(path=str(tmp_path / "dashboard-media.png"), full_page=True)

        page.goto(f"{sandbox.url}/sandbox_alice")
        shown = page.locator("#timeline li.post", has_text="Two pictures from a real browser")
        expect(shown).to_have_count(1)
        figures = shown.locator("figure.media-item")
        expect(figures).to_have_count(2)
        for index, alt in enumerate(alts):
            image = figures.nth(index).locator("img")
            expect(image).to_have_attribute("alt", alt)
            assert image.evaluate("img => img.complete && img.naturalWidth") == 160
            expect(figures.nth(index).locator("figcaption.alt")).to_have_text(f"Alt: {alt}")
        page.screenshot(path=str(tmp_path / "sandbox-timeline-media.png"), full_page=True)

    [posted] = [p for p in sandbox.posts("sandbox_alice") if "Two pictures" in p["text"]]
    assert [(m["type"], m["alt_text"]) for m in posted["media"]] == [("photo", alt) for alt in alts]
    for m, data in zip(posted["media"], images, strict=True):  # the bytes X holds are the files chosen
        assert requests.get(f"{sandbox.url}/_sandbox/media/{m['media_key']}", timeout=10).content == data
    assert (tmp_path / "sandbox-timeline-media.png").stat().st_size > 10_000
    assert (tmp_path / "dashboard-media.png").stat().st_size > 10_000
    assert (tmp_path / "compose-media.png").stat().st_size > 10_000
    refused = "error: Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    assert console.count(refused) == 1  # the refused form's page, answered 400 by design
    assert not [line for line in console if "Content Security Policy" in line
                or (line.startswith("error") and line != refused)], console


HIDE_TAB = """() => { Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
                      document.dispatchEvent(new Event('visibilitychange')); }"""
SHOW_TAB = """() => { Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});
                      document.dispatchEvent(new Event('visibilitychange')); }"""


def test_the_dashboard_follows_the_worker_without_a_reload_and_rests_in_a_hidden_tab(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox)
    with gunicorn(tmp_path, sandbox, workers=2, env=env) as server, chromium() as browser:
        store = open_store(server.settings)
        carol = connect_user(store, sandbox, sandbox.create_users(1, "livebrowser")[0])
        [post] = store.add_posts([Post(id=0, account_id=carol.user_id, parts=("goes out while you watch",),
                                       due_at=utcnow() + timedelta(days=1))])
        page = browser.new_page()
        polls: list[str] = []
        page.on("request", lambda request: polls.append(request.url) if "/fragments/" in request.url else None)
        sign_in(page, server.url)
        page.evaluate("window.notReloaded = true")
        row = page.locator(f'#queue tr.post[data-post="{post.id}"]')
        expect(row.locator(".status")).to_have_text("scheduled")

        queue.post_now(store, post.id)  # another process changes the store; the worker sends it
        worker = WorkerProcess(env, tmp_path)
        try:
            worker.wait_started()
            done = page.locator(f'#history tr.post.posted[data-post="{post.id}"]')
            expect(done).to_have_count(1, timeout=60_000)
            expect(row).to_have_count(0)
            assert worker.terminate() == 0, worker.log()
        finally:
            worker.stop_quietly()
        sent = store.get_post(post.id)
        assert sent is not None and sent.status == POSTED
        expect(done.locator("a")).to_have_attribute("href", f"{sandbox.url}/{carol.username}#post-{sent.tweet_ids[0]}")
        assert page.evaluate("window.notReloaded") is True  # swapped in, not reloaded
        assert polls

        page.evaluate(HIDE_TAB)
        page.wait_for_timeout(500)  # a poll already on its way may still land
        before = len(polls)
        page.wait_for_timeout(4_000)  # more than two polling periods
        assert len(polls) == before, "polled while the tab was hidden"
        assert page.evaluate("window.tweetbotLive.running") is False
        page.evaluate(SHOW_TAB)
        wait_until(lambda: page.evaluate("window.tweetbotLive.polls") and len(polls) > before, 10,
                   "polling to resume when the tab is visible again")


def test_an_edited_post_goes_out_with_the_new_text(tmp_path: Path, sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox)
    with gunicorn(tmp_path, sandbox, workers=2, env=env) as server, chromium() as browser:
        store = open_store(server.settings)
        dave = connect_user(store, sandbox, sandbox.create_users(1, "editor")[0])
        [post] = store.add_posts([Post(id=0, account_id=dave.user_id, parts=("the old words",),
                                       due_at=utcnow() + timedelta(days=1))])
        page = browser.new_page()
        sign_in(page, server.url)
        row = page.locator(f'#queue tr.post[data-post="{post.id}"]')
        row.locator("a", has_text="Edit").click()
        expect(page.locator("#part-1")).to_have_value("the old words")
        page.fill("#part-1", "x" * 281)
        page.click("#save-post")
        expect(page.locator("#edit .flash.error")).to_contain_text("Not saved: the post is too long or invalid")
        page.fill("#part-1", "the new words, edited in a real browser")
        page.fill("#part-2", "and a part added while editing")
        page.screenshot(path=str(tmp_path / "edit.png"), full_page=True)
        page.click("#save-post")
        expect(page.locator(".flash.ok")).to_contain_text(f"Saved post {post.id}: @{dave.username}, tomorrow")
        expect(row.locator(".text")).to_contain_text("the new words, edited in a real browser")
        row.locator("button", has_text="Post now").click()
        expect(page.locator(".flash.ok")).to_contain_text("is due now")

        worker = WorkerProcess(env, tmp_path)
        try:
            worker.wait_started()
            wait_until(lambda: (store.get_post(post.id) or post).status == POSTED
                       or post.id in [p.id for p in store.history(5) if p.status == POSTED], 60, "the worker to post it")
            assert worker.terminate() == 0, worker.log()
        finally:
            worker.stop_quietly()
        expect(page.locator(f'#history tr.post.posted[data-post="{post.id}"]')).to_have_count(1)

    texts = [p["text"] for p in sandbox.posts(dave.username)]
    assert texts == ["the new words, edited in a real browser", "and a part added while editing"]
    assert (tmp_path / "edit.png").stat().st_size > 5_000


def test_a_post_queued_in_a_calendar_slot_goes_out_and_its_cell_turns_posted_without_a_reload(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox)
    with gunicorn(tmp_path, sandbox, workers=2, env=env) as server, chromium() as browser:
        store = open_store(server.settings)
        erin = connect_user(store, sandbox, sandbox.create_users(1, "calendar")[0])
        save_slots(store, erin.user_id, parse_slots("daily 09:00", "UTC"))
        page = browser.new_page()
        sign_in(page, server.url)
        page.click("nav.pages a:has-text('Calendar')")
        expect(page.locator("#calendar h1")).to_have_text("Calendar")
        slot = page.locator("li.item.slot a.slot-box").first
        expect(slot).to_contain_text(f"09:00 @{erin.username}: empty slot")
        slots_before = page.locator("li.item.slot").count()
        page.screenshot(path=str(tmp_path / "calendar.png"), full_page=True)
        slot.click()
        expect(page.locator("#account")).to_have_value(erin.user_id)
        expect(page.locator("#due_at")).to_have_value(re.compile(r"T09:00$"))
        page.fill("#part-1", "filled from an empty calendar slot")
        page.click("#queue-post")
        expect(page).to_have_url(server.url + "/calendar")
        [post] = store.queued_posts(erin.user_id)
        cell = page.locator(f'li.item[data-post="{post.id}"]')
        expect(cell).to_have_class(re.compile(r"\bscheduled\b"))
        expect(page.locator("li.item.slot")).to_have_count(slots_before - 1)
        cell.locator("button", has_text="Post now").click()
        expect(page.locator(".flash.ok")).to_contain_text("is due now")
        page.evaluate("window.notReloaded = true")

        worker = WorkerProcess(env, tmp_path)
        try:
            worker.wait_started()
            expect(cell).to_have_class(re.compile(r"\bposted\b"), timeout=60_000)
            assert worker.terminate() == 0, worker.log()
        finally:
            worker.stop_quietly()
        sent = store.get_post(post.id)
        assert sent is not None and sent.status == POSTED
        expect(cell.locator(".state a")).to_have_attribute(
            "href", f"{sandbox.url}/{erin.username}#post-{sent.tweet_ids[0]}")
        assert page.evaluate("window.notReloaded") is True
    assert [p["text"] for p in sandbox.posts(erin.username)] == ["filled from an empty calendar slot"]


SCREENSHOTS = Path(__file__).resolve().parents[1] / ".screenshots"  # kept after the run, for a person to look at


def test_every_page_fits_a_phone_and_a_desktop(tmp_path: Path, sandbox: SandboxControl) -> None:
    """Each page at 390 × 844 and 1280 × 800: nothing wider than the screen, every control labelled, no raw
    ISO time; screenshots of each (and of the charts alone) are left in .screenshots/."""
    SCREENSHOTS.mkdir(exist_ok=True)
    env = web_env(tmp_path, sandbox)
    with gunicorn(tmp_path, sandbox, workers=2, env=env) as server, chromium() as browser:
        store = open_store(server.settings)
        frank = connect_user(store, sandbox, sandbox.create_users(1, "phonewidth")[0])
        save_slots(store, frank.user_id, parse_slots("mon-fri 09:00,13:00; sat 11:00", "Europe/Berlin"))
        long_words = "Supercalifragilisticexpialidocious internationalisation " * 4
        [post, *_] = store.add_posts([
            Post(id=0, account_id=frank.user_id, parts=(long_words, "https://example.com/" + "a" * 80),
                 due_at=utcnow() + timedelta(days=n + 1)) for n in range(3)])
        store.add_posts([Post(id=0, account_id=frank.user_id, parts=("went out " + long_words,), status=POSTED,
                              due_at=utcnow(), posted_at=utcnow(), tweet_ids=("1860000000000000009",))])
        past = [utcnow() - timedelta(days=n // 3, hours=n % 3) for n in range(24)]  # bars on the charts
        store.add_posts([Post(id=0, account_id=frank.user_id, parts=(f"earlier post {n}",), due_at=at,
                              status=FAILED if n % 7 == 3 else POSTED, posted_at=at, finished_at=at,
                              tweet_ids=(str(1860000000000000100 + n),), last_error="X refused it (403)"
                              if n % 7 == 3 else None) for n, at in enumerate(past)])
        for n in range(6):
            store.record_event("refreshed", frank.user_id, at=utcnow() - timedelta(hours=20 * n))
        hook = webhooks.subscribe(store, "https://hooks.example.com/" + "receiver/" * 8, webhooks.EVENTS)
        webhooks.emit(store, webhooks.POST_POSTED, {"post_id": post.id})
        pages = {"dashboard": "/", "calendar": "/calendar", "edit": f"/posts/{post.id}/edit",
                 "confirm-disconnect": f"/accounts/{frank.user_id}/disconnect",
                 "confirm-cancel": f"/posts/{post.id}/cancel", "webhooks": "/webhooks",
                 "confirm-remove-webhook": f"/webhooks/{hook.id}/remove"}
        for width, height in ((390, 844), (1280, 800)):
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.goto(server.url + "/signin")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(SCREENSHOTS / f"signin-{width}.png"), full_page=True)
            sign_in(page, server.url)
            for name, path in pages.items():
                page.goto(server.url + path)
                page.wait_for_load_state("load")
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= width, f"{name} is {wide} px wide at {width} px"
                unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
                    .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                    .map(e => e.name || e.id)""")
                assert unlabelled == [], f"{name}: controls without a label: {unlabelled}"
                shown = page.inner_text("body")
                assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", shown), f"{name} shows a raw ISO time"
                page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
            page.goto(server.url + "/#charts")
            page.wait_for_load_state("load")
            failed, posted = (page.locator(f"#history tr.post.{status}").first for status in ("failed", "posted"))
            background = "e => getComputedStyle(e).backgroundColor"
            assert failed.evaluate(background) != posted.evaluate(background)  # a failed row stands out
            page.locator("#charts").screenshot(path=str(SCREENSHOTS / f"charts-{width}.png"))
            context.close()
    for name in [*pages, "signin", "charts"]:
        for width in (390, 1280):
            assert (SCREENSHOTS / f"{name}-{width}.png").stat().st_size > 5_000


def test_an_open_page_keeps_its_clock_and_its_suggested_time_current(tmp_path: Path, sandbox: SandboxControl) -> None:
    """Left open across a minute, the dashboard's "it is now" line and the compose form's suggested time
    (an hour ahead) move on; a time the person typed stays as typed."""
    with gunicorn(tmp_path, sandbox, workers=2) as server, chromium() as browser:
        connect_user(open_store(server.settings), sandbox, sandbox.create_users(1, "clock")[0])
        typed, left = browser.new_page(), browser.new_page()
        for page in (typed, left):
            sign_in(page, server.url)
        typed.fill("#due_at", "2099-01-01T09:00")
        first = left.locator("#clock p").inner_text()
        suggested = left.locator("#due_at").input_value()
        # The next minute, by the server's clock; then both lines have moved on without a reload.
        wait_until(lambda: left.locator("#clock p").inner_text() != first, 75, "the clock line to move on",
                   every=0.5)
        later = left.locator("#clock p").inner_text()
        assert re.fullmatch(r"Times are in UTC; it is now \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", later), later
        expect(left.locator("#due_at")).not_to_have_value(suggested)
        moved = left.locator("#due_at").input_value()
        assert moved == (datetime_of(later) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        expect(typed.locator("#due_at")).to_have_value("2099-01-01T09:00")


def datetime_of(clock_line: str) -> datetime:
    found = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC", clock_line)
    assert found, clock_line
    return datetime.strptime(found[1], "%Y-%m-%d %H:%M")
