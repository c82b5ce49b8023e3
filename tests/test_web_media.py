"""Media on the dashboard: the compose form's files and alt texts reach the queue and the store,
every refusal leaves the store as it was, `/media/<digest>` serves only what a listed post
carries, the queue and history show counts and thumbnails, and an account granted without
media.write says "reconnect to post media".

The real app (Flask's test client, multipart bodies as a browser sends them) with a real
store in tmp_path, against the sandbox process over HTTP for the consent flow.
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image

from bot.media_checks import LIMITS, MAX_ALT, RECONNECT_FOR_MEDIA
from bot.models import POSTED, SCHEDULED, utcnow
from bot.settings import DEFAULT_SCOPES, MEDIA_SCOPE, REQUIRED_SCOPES
from bot.store.file import TinyStore
from web import create_app
from web.panels import PAGE_SIZE

from sandbox_helpers import SandboxControl
from web_support import (  # noqa: F401 (shared fixtures, used by name)
    Browser,
    account,
    app,
    browser,
    open_store,
    text,
    web_settings,
)


def png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    """A real PNG of one colour (each colour a different file, so a different digest)."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def gif() -> bytes:
    out = io.BytesIO()
    frames = [Image.new("P", (20, 20), i) for i in (1, 2)]
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    return out.getvalue()


MP4 = b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00" + b"\x00\x00\x00\x08moov"  # the boxes a player needs, no frames


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tomorrow() -> str:
    return (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT09:00")


def files(*named: tuple[str, bytes]) -> list[tuple[io.BytesIO, str]]:
    """A file field's value as Flask's test client sends it (multipart, in this order)."""
    return [(io.BytesIO(data), name) for name, data in named]


def compose(browser: Browser, user_id: str, **fields: Any) -> Any:
    """Press Queue on the compose form with `fields` (e.g. `media-1`, `alt-1-1`), multipart as the page sends it."""
    form = {"account": user_id, "part": "A post with pictures", "due_at": tomorrow(), **fields}
    return browser.post("/posts", form, content_type="multipart/form-data")


def section(page: str, name: str) -> str:
    """One card of the dashboard (`queue`, `history`, `compose`, `accounts`)."""
    return page.split(f'<section class="card" id="{name}">')[1].split("</section>")[0]


def store_state(repo: TinyStore) -> tuple[Any, dict[str, Any]]:
    return repo.dump(), repo.media_digests()


def connected(app: Flask, browser: Browser, username: str = "sandbox_alice") -> tuple[str, TinyStore]:
    browser.connect(username)
    settings = app.config["TWEETBOT_SETTINGS"]
    return account(settings, username).user_id, open_store(settings)


def test_two_images_with_alt_texts_queue_one_post_with_both(app: Flask, browser: Browser) -> None:
    user_id, repo = connected(app, browser)
    chart, photo = png((200, 30, 30)), png((30, 30, 200))

    answer = compose(browser, user_id, **{"media-1": files(("chart.png", chart), ("photo.png", photo)),
                                          "alt-1-1": "A red chart", "alt-1-2": "  A blue photo  "})

    assert answer.status_code == 303, text(answer)
    [post] = repo.queued_posts()
    assert (post.parts, post.status, post.source) == (("A post with pictures",), SCHEDULED, "web")
    [refs] = post.media
    assert [(r.name, r.kind, r.mime, r.size, r.alt) for r in refs] == [
        ("chart.png", "image", "image/png", len(chart), "A red chart"),
        ("photo.png", "image", "image/png", len(photo), "A blue photo")]
    assert [r.digest for r in refs] == [digest(chart), digest(photo)]
    assert repo.get_media(digest(chart)) == chart and repo.get_media(digest(photo)) == photo
    assert set(repo.media_digests()) == {digest(chart), digest(photo)}
    page = text(browser.get("/"))
    assert "Queued a post with 2 images for" in page
    queue = section(page, "queue")
    assert f'<img class="thumb" src="/posts/{post.id}/media/{digest(chart)}" alt="A red chart" title="chart.png">' in queue
    assert f'<img class="thumb" src="/posts/{post.id}/media/{digest(photo)}" alt="A blue photo" title="photo.png">' in queue
    assert "with 2 images" in queue


def test_each_part_of_a_thread_keeps_its_own_files_and_alt_texts(app: Flask, browser: Browser) -> None:
    user_id, repo = connected(app, browser)
    picture, animation = png((10, 120, 10)), gif()

    answer = compose(browser, user_id, part=["first, with a picture", "", "third, with a GIF"],
                     **{"media-1": files(("green.png", picture)), "alt-1-1": "Green",
                        "media-3": files(("spin.gif", animation)), "alt-3-1": "Spinning"})

    assert answer.status_code == 303, text(answer)
    [post] = repo.queued_posts()
    assert post.parts == ("first, with a picture", "third, with a GIF")  # the empty box is no part
    assert [[(r.name, r.kind, r.alt) for r in part] for part in post.media] == [
        [("green.png", "image", "Green")], [("spin.gif", "gif", "Spinning")]]
    queue = section(text(browser.get("/")), "queue")
    assert "with 1 GIF and 1 image" in queue
    assert '<span class="media-placeholder gif">GIF: spin.gif</span>' in queue
    assert f"/media/{digest(animation)}" not in queue  # a GIF is labelled, not shown inline
    assert f'src="/posts/{post.id}/media/{digest(picture)}" alt="Green"' in queue


def test_a_video_shows_as_a_labelled_count_in_the_history(app: Flask, browser: Browser) -> None:
    user_id, repo = connected(app, browser)
    assert compose(browser, user_id, **{"media-1": files(("clip.mp4", MP4))}).status_code == 303
    [post] = repo.queued_posts()
    repo.update_post(post.id, status=POSTED, tweet_ids=("1860000000000000009",), posted_at=utcnow())

    history = section(text(browser.get("/")), "history")

    assert "with 1 video" in history
    assert '<span class="media-placeholder video">video: clip.mp4</span>' in history
    assert "<img" not in history


REFUSALS = {
    "a text file named .png": ({"media-1": files(("notes.png", b"just some text, not a picture\n"))},
                               "notes.png: not a file X can post (expected PNG, JPEG, WEBP, GIF, MP4 or MOV, "
                               "read from its bytes)"),
    "five images": ({"media-1": files(*((f"p{i}.png", png((i * 40, 0, 0))) for i in range(5)))},
                    "5 images: X takes at most 4 per post"),
    "a too-long alt text": ({"media-1": files(("ok.png", png((1, 2, 3))), ("long.png", png((3, 2, 1)))),
                             "alt-1-1": "fine", "alt-1-2": "x" * (MAX_ALT + 1)},
                            f"long.png: the alt text has {MAX_ALT + 1} characters; X takes at most {MAX_ALT}"),
    "an image and a video": ({"media-1": files(("a.png", png((9, 9, 9))), ("clip.mp4", MP4))},
                             "clip.mp4: a video must be a post's only media"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_file_queues_nothing_and_stores_no_bytes(app: Flask, browser: Browser, case: str) -> None:
    user_id, repo = connected(app, browser)
    fields, reason = REFUSALS[case]
    before = store_state(repo)

    answer = compose(browser, user_id, part="Kept after the refusal", **fields)

    assert answer.status_code == 400
    page = text(answer)
    assert f"Not queued: {reason}" in page
    assert store_state(repo) == before
    assert repo.queued_posts() == [] and repo.media_digests() == {}
    form = section(page, "compose")
    assert ">Kept after the refusal</textarea>" in form  # what was typed stays
    names = re.findall(r'<li data-name="([^"]+)"', form)
    assert names == [name for _, name in fields["media-1"]]  # the files sent are listed, to choose again
    if "alt-1-2" in fields:
        assert f'data-name="long.png" data-alt="{fields["alt-1-2"]}"' in form


def test_a_file_over_its_size_limit_is_refused(app: Flask, browser: Browser) -> None:
    user_id, repo = connected(app, browser)
    big = png((5, 5, 5)) + b"\0" * LIMITS["image"]  # a PNG's signature, over 5 MB
    before = store_state(repo)

    answer = compose(browser, user_id, **{"media-1": files(("huge.png", big))})

    assert answer.status_code == 400
    assert re.search(r"Not queued: huge\.png: 5\.0 MB is over X's 5 MB limit", text(answer)), text(answer)
    assert store_state(repo) == before


def test_a_body_over_the_limit_gets_a_page_not_a_traceback(tmp_path: Path, sandbox: SandboxControl) -> None:
    assert create_app({"SETTINGS": web_settings(tmp_path, sandbox)}).config["MAX_CONTENT_LENGTH"] > LIMITS["video"]
    small = create_app({"SETTINGS": web_settings(tmp_path, sandbox), "TESTING": True, "MAX_CONTENT_LENGTH": 50_000})
    browser = Browser(small)
    browser.sign_in()
    user_id, repo = connected(small, browser)
    before = store_state(repo)

    answer = compose(browser, user_id, **{"media-1": files(("big.png", png((1, 1, 1), (400, 400)) + b"\0" * 60_000))})

    assert answer.status_code == 413
    page = text(answer)
    assert "Too much to upload at once" in page and "nothing was queued" in page
    assert "Traceback" not in page
    assert store_state(repo) == before


def test_the_media_route_needs_sign_in_and_serves_only_what_a_post_carries(app: Flask, browser: Browser) -> None:
    user_id, repo = connected(app, browser)
    picture, stray = png((250, 200, 0)), png((0, 200, 250))
    assert compose(browser, user_id, **{"media-1": files(("sun.png", picture))}).status_code == 303
    repo.put_media(stray)  # stored, but no post refers to it
    [post] = repo.queued_posts()
    other = repo.add_posts([replace(post, id=0, media=())])[0]  # a post without it

    served = browser.client.get(f"/posts/{post.id}/media/{digest(picture)}")
    assert served.status_code == 200 and served.data == picture
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Cache-Control"].startswith("private")
    for path in (f"/posts/{post.id}/media/{digest(stray)}", f"/posts/{post.id}/media/{'0' * 64}",
                 f"/posts/{other.id}/media/{digest(picture)}", f"/posts/{post.id + 99}/media/{digest(picture)}",
                 f"/posts/{post.id}/media/..%2Ftweetbot.json", f"/posts/{post.id}/media/tweetbot",
                 f"/media/{digest(picture)}"):
        answer = browser.client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["Cache-Control"] == "no-store"

    stranger = Browser(app)  # not signed in
    refused = stranger.client.get(f"/posts/{post.id}/media/{digest(picture)}")
    assert refused.status_code == 303 and "/signin" in refused.headers["Location"]
    assert picture not in refused.data


def test_the_media_route_serves_a_posted_posts_image(app: Flask, browser: Browser) -> None:
    user_id, repo = connected(app, browser)
    picture = png((120, 0, 120))
    assert compose(browser, user_id, **{"media-1": files(("p.png", picture))}).status_code == 303
    [post] = repo.queued_posts()
    repo.update_post(post.id, status=POSTED, tweet_ids=("1860000000000000010",), posted_at=utcnow())

    history = section(text(browser.get("/")), "history")

    assert f'src="/posts/{post.id}/media/{digest(picture)}"' in history
    assert browser.client.get(f"/posts/{post.id}/media/{digest(picture)}").data == picture


def test_a_thumbnail_on_a_later_history_page_is_served(app: Flask, browser: Browser) -> None:
    """The history's second page lists posts older than the first page's: their images show too."""
    user_id, repo = connected(app, browser)
    picture = png((0, 90, 200))
    assert compose(browser, user_id, **{"media-1": files(("old.png", picture))}).status_code == 303
    [old] = repo.queued_posts()
    repo.update_post(old.id, status=POSTED, tweet_ids=("1860000000000000011",), posted_at=utcnow())
    newer = repo.add_posts([replace(old, id=0, media=(), parts=(f"newer {n}",)) for n in range(PAGE_SIZE)])
    for post in newer:
        repo.update_post(post.id, status=POSTED, tweet_ids=(f"18600000000000001{post.id:02d}",), posted_at=utcnow())

    assert f"/media/{digest(picture)}" not in section(text(browser.get("/")), "history")
    second = section(text(browser.get("/?history_page=2")), "history")
    source = f"/posts/{old.id}/media/{digest(picture)}"
    assert f'src="{source}"' in second
    served = browser.client.get(source)
    assert served.status_code == 200 and served.data == picture


def test_an_account_without_media_write_says_reconnect_to_post_media(tmp_path: Path,
                                                                     sandbox: SandboxControl) -> None:
    settings = web_settings(tmp_path, sandbox, X_SCOPES=" ".join(REQUIRED_SCOPES))
    app = create_app({"SETTINGS": settings, "TESTING": True})
    browser = Browser(app)
    browser.sign_in()
    user_id, repo = connected(app, browser, "sandbox_bob")
    assert MEDIA_SCOPE not in account(settings, "sandbox_bob").scopes
    page = text(browser.get("/"))

    row = page.split('data-account="@sandbox_bob">')[1].split("</tr>")[0]
    assert f'<span class="hint held media-hint">{RECONNECT_FOR_MEDIA}</span>' in row
    assert ">Reconnect</button>" in row
    before = store_state(repo)
    answer = compose(browser, user_id, **{"media-1": files(("a.png", png((1, 1, 1))))})
    assert answer.status_code == 400
    assert f"without the {MEDIA_SCOPE} scope: {RECONNECT_FOR_MEDIA}" in text(answer)
    assert store_state(repo) == before
    assert compose(browser, user_id, part="text still goes out").status_code == 303  # text only is fine

    # Reconnect, with the app asking for every scope again (as it does by default): the hint goes.
    asking = create_app({"SETTINGS": replace(settings, scopes=DEFAULT_SCOPES), "TESTING": True})
    again = Browser(asking)
    again.sign_in()
    again.connect("sandbox_bob")
    assert MEDIA_SCOPE in account(settings, "sandbox_bob").scopes
    assert RECONNECT_FOR_MEDIA not in text(again.get("/"))
    assert compose(again, user_id, **{"media-1": files(("a.png", png((1, 1, 1))))}).status_code == 303


def test_an_account_with_media_write_has_no_hint(app: Flask, browser: Browser) -> None:
    browser.connect("sandbox_alice")
    assert MEDIA_SCOPE in account(app.config["TWEETBOT_SETTINGS"], "sandbox_alice").scopes

    row = text(browser.get("/")).split('data-account="@sandbox_alice">')[1].split("</tr>")[0]

    assert RECONNECT_FOR_MEDIA not in row and "Reconnect" not in row


def test_the_form_states_the_limits_and_names_its_fields(app: Flask, browser: Browser) -> None:
    browser.connect("sandbox_alice")

    form = section(text(browser.get("/")), "compose")

    assert 'enctype="multipart/form-data"' in form
    assert re.search(r'<input type="file" id="media-1" name="media-1" class="media-input" multiple accept="[^"]*'
                     r'image/png', form)
    assert ("Each part may carry 1–4 images, or one GIF, or one video (PNG, JPEG, WEBP, GIF, MP4 or MOV): "
            "an image up to 5 MB, a GIF up to 15 MB, a video up to 512 MB; alt text up to 1,000 characters") in form
    assert (f'data-limit-image="{LIMITS["image"]}" data-limit-gif="{LIMITS["gif"]}" '
            f'data-limit-video="{LIMITS["video"]}"') in form
    assert 'data-max-images="4" data-max-alt="1000"' in form


def test_a_huge_text_field_is_refused_before_it_is_read(app: Flask, browser: Browser) -> None:
    user_id, repo = connected(app, browser)
    before = store_state(repo)
    answer = browser.post("/posts", {"account": user_id, "part": "x" * (2 * 1024 * 1024), "due_at": tomorrow()})
    assert answer.status_code == 413
    page = text(answer)
    assert "Too much to send at once" in page and "nothing was queued" in page and "Traceback" not in page
    assert store_state(repo) == before
    fine = browser.post("/posts", {"account": user_id, "part": "a normal post", "due_at": tomorrow()})
    assert fine.status_code == 303 and len(repo.queued_posts()) == 1
