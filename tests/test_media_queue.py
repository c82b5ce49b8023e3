"""Media refused when queued, never at 3 a.m.: each rule through the real `tweetbot` commands,
with the store compared before and after; and media queued by every way in (post, thread
file, CSV, generator)."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from test_queue_support import BotFolder, make_folder

from bot.generators import load_generators, run_generator
from bot.settings import REQUIRED_SCOPES

from media_support import image_bytes, png_of_size, video_bytes, write

MB = 1024 * 1024


@pytest.fixture
def folder(tmp_path: Path) -> BotFolder:
    folder = make_folder(tmp_path)
    folder.connect("alice", "101")
    folder.connect("oldie", "102", scopes=REQUIRED_SCOPES)  # connected before media.write was asked for
    return folder


def snapshot(folder: BotFolder) -> tuple[Any, ...]:
    """What the store holds: posts, events, and the media files."""
    store = folder.store()
    contents = store.dump()
    return ([p.to_doc() for p in contents.queue + contents.history], [e.kind for e in contents.events],
            sorted(store.media_digests()))


def refused(folder: BotFolder, *args: str) -> str:
    """Run `tweetbot ARGS`, which must refuse (exit 1) and change nothing in the store; its message."""
    before = snapshot(folder)
    result = folder.run(*args)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert snapshot(folder) == before
    return result.stderr.strip()


def test_each_refusal_names_the_file_and_the_rule_and_queues_nothing(folder: BotFolder) -> None:
    p = folder.path
    write(p, "notes.png", b"these are words, not pixels\n")
    write(p, "big.png", png_of_size(5 * MB + 200 * 1024))
    write(p, "big.gif", b"GIF89a" + bytes(15 * MB))
    write(p, "cut.png", image_bytes("PNG", 1, (64, 64), noise=True)[:500])
    write(p, "cut.mp4", video_bytes(4096)[:-100])
    write(p, "anim.gif", image_bytes("GIF", 2))
    write(p, "clip.mp4", video_bytes(4096))
    for n in range(5):
        write(p, f"img{n}.png", image_bytes("PNG", 10 + n))
    cases = [
        (["--media", "notes.png"], "notes.png: not a file X can post (expected PNG, JPEG, WEBP, GIF, MP4 or MOV"),
        (["--media", "big.png"], "big.png: 5.2 MB is over X's 5 MB limit for an image"),
        (["--media", "big.gif"], "big.gif: 15.0 MB is over X's 15 MB limit for a GIF"),
        (["--media", "missing.png"], "missing.png: no such file"),
        (["--media", "cut.png"], "cut.png: the image cannot be read"),
        (["--media", "cut.mp4"], "cut.mp4: the video is cut short"),
        ([a for n in range(5) for a in ("--media", f"img{n}.png")], "5 images: X takes at most 4 per post"),
        (["--media", "img0.png", "--media", "anim.gif"], "anim.gif: a GIF must be a post's only media"),
        (["--media", "clip.mp4", "--media", "clip.mp4"], "clip.mp4: a video must be a post's only media"),
        (["--media", "img0.png", "--alt", "x" * 1001], "img0.png: the alt text has 1001 characters; X takes at most"),
        (["--media", "img0.png", "--account", "@oldie"], "@oldie was connected without the media.write scope: "
                                                         "reconnect to post media"),
    ]
    for extra, message in cases:
        account = [] if "--account" in extra else ["--account", "@alice"]
        assert message in refused(folder, "post", "with media", *extra, *account), extra


@pytest.mark.slow
def test_a_video_over_512_mb_is_refused(folder: BotFolder) -> None:
    path = folder.path / "huge.mp4"
    with path.open("wb") as handle:  # sparse: the size without writing half a gigabyte
        handle.write(video_bytes(64))
        handle.truncate(512 * MB + 1)
    assert "huge.mp4: 512.0 MB is over X's 512 MB limit for a video" in refused(folder, "post", "v", "--media",
                                                                               "huge.mp4", "--account", "@alice")


def test_the_type_is_read_from_the_bytes_not_the_name(folder: BotFolder) -> None:
    write(folder.path, "photo.txt", image_bytes("JPEG", 3))
    write(folder.path, "movie.png", video_bytes(2048, brand=b"qt  "))
    result = folder.run("post", "a photo and more", "--media", "photo.txt", "--alt", "A photo", "--account", "@alice")
    assert result.returncode == 0, result.stderr
    assert "1 media file" in result.stdout
    result = folder.run("post", "a film", "--media", "movie.png", "--account", "@alice")
    assert result.returncode == 0, result.stderr
    photo, film = folder.store().queued_posts()
    assert [(r.kind, r.mime, r.alt) for r in photo.media[0]] == [("image", "image/jpeg", "A photo")]
    assert [(r.kind, r.mime) for r in film.media[0]] == [("video", "video/quicktime")]


def test_post_with_four_images_and_alt_texts_keeps_the_bytes_once(folder: BotFolder) -> None:
    names = [write(folder.path, f"i{n}.{fmt.lower()}", image_bytes(fmt, n)).name
             for n, fmt in enumerate(("PNG", "JPEG", "WEBP", "PNG"))]
    args = [a for n, name in enumerate(names) for a in ("--media", name, "--alt", f"alt {n}")]
    for _ in range(2):
        result = folder.run("post", "four of them", *args, "--account", "@alice")
        assert result.returncode == 0, result.stderr
    store = folder.store()
    first, second = store.queued_posts()
    assert [(r.name, r.alt) for r in first.media[0]] == [(name, f"alt {n}") for n, name in enumerate(names)]
    assert first.media == second.media
    assert sorted(store.media_digests()) == sorted(r.digest for r in first.media[0])
    assert [store.get_media(r.digest) for r in first.media[0]] == [(folder.path / n).read_bytes() for n in names]


def test_thread_file_attaches_media_to_its_parts(folder: BotFolder) -> None:
    (folder.path / "pics").mkdir()
    write(folder.path / "pics", "one.png", image_bytes("PNG", 1))
    write(folder.path / "pics", "two.gif", image_bytes("GIF", 2))
    thread = folder.path / "pics" / "thread.txt"
    thread.write_text("First part\nmedia: one.png\nalt: The first picture\n---\nSecond, no media\n---\n"
                      "media: two.gif\nThird\n", encoding="utf-8")
    result = folder.run("post", "--thread-file", str(thread), "--account", "@alice")
    assert result.returncode == 0, result.stderr
    [post] = folder.store().queued_posts()
    assert post.parts == ("First part", "Second, no media", "Third")
    assert [[(r.name, r.kind, r.alt) for r in part] for part in post.media] == [
        [("one.png", "image", "The first picture")], [], [("two.gif", "gif", None)]]


def test_thread_file_naming_a_bad_file_queues_nothing(folder: BotFolder) -> None:
    thread = folder.path / "thread.txt"
    thread.write_text("One\n---\nTwo\nmedia: nowhere.png\n", encoding="utf-8")
    assert "nowhere.png: no such file" in refused(folder, "post", "--thread-file", str(thread), "--account", "@alice")


def csv_file(folder: BotFolder, body: str) -> Path:
    path = folder.path / "posts.csv"
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


def test_csv_media_and_alt_columns(folder: BotFolder) -> None:
    (folder.path / "img").mkdir()
    for n in range(3):
        write(folder.path / "img", f"{n}.png", image_bytes("PNG", 20 + n))
    path = csv_file(folder, """
        account,due_at,text,media,alt
        @alice,2099-01-01 10:00,two pictures,img/0.png|img/1.png,first|second
        @alice,2099-01-02 10:00,one picture,img/2.png,
        @alice,2099-01-03 10:00,no picture,,
        """)
    result = folder.run("import", str(path))
    assert result.returncode == 0, result.stderr
    posts = folder.store().queued_posts()
    assert [[(r.name, r.alt) for part in p.media for r in part] for p in posts] == [
        [("0.png", "first"), ("1.png", "second")], [("2.png", None)], []]


def test_csv_with_one_bad_media_row_imports_nothing_and_names_the_row(folder: BotFolder) -> None:
    write(folder.path, "ok.png", image_bytes("PNG", 30))
    write(folder.path, "fake.png", b"not an image")
    path = csv_file(folder, """
        account,due_at,text,media
        @alice,2099-01-01 10:00,fine,ok.png
        @alice,2099-01-02 10:00,bad,fake.png
        @alice,2099-01-03 10:00,fine too,ok.png
        """)
    before = snapshot(folder)
    result = folder.run("import", str(path))
    assert result.returncode == 1
    assert "posts.csv: line 3: fake.png: not a file X can post" in result.stderr
    assert "1 bad row; nothing was queued" in result.stderr
    assert snapshot(folder) == before


def test_a_generator_may_return_media_as_paths_or_bytes(folder: BotFolder) -> None:
    write(folder.path, "chart.png", image_bytes("PNG", 40))
    (folder.path / "gen_media.py").write_text(textwrap.dedent("""
        from pathlib import Path
        def with_media():
            chart = Path(__file__).with_name("chart.png")
            return {"text": "today's chart", "media": ["chart.png", chart.read_bytes()], "alt": ["The chart"]}
        """), encoding="utf-8")
    (folder.path / "tweetbot.toml").write_text(textwrap.dedent("""
        [[generator]]
        account = "@alice"
        every = "day at 09:00"
        call = "gen_media:with_media"
        """), encoding="utf-8")
    store = folder.store()
    [spec], problems = load_generators(folder.path / "tweetbot.toml", "UTC")
    assert problems == []
    post = run_generator(spec, store)
    assert post is not None and post.parts == ("today's chart",)
    [queued] = store.queued_posts()
    assert [(r.name, r.alt) for r in queued.media[0]] == [("chart.png", "The chart"), ("media 2", None)]
    assert queued.media[0][0].digest == queued.media[0][1].digest
    assert store.get_media(queued.media[0][0].digest) == (folder.path / "chart.png").read_bytes()


def test_a_generator_returning_an_unusable_file_queues_nothing(folder: BotFolder) -> None:
    (folder.path / "gen_bad.py").write_text("def bad():\n    return {'text': 'x', 'media': [b'plain words']}\n",
                                            encoding="utf-8")
    (folder.path / "tweetbot.toml").write_text('[[generator]]\naccount = "@alice"\nevery = "day at 09:00"\n'
                                               'call = "gen_bad:bad"\n', encoding="utf-8")
    store = folder.store()
    [spec], _ = load_generators(folder.path / "tweetbot.toml", "UTC")
    before = snapshot(folder)
    assert run_generator(spec, store) is None
    after = snapshot(folder)
    assert after[0] == before[0] and after[2] == before[2]
    [event] = store.events(kind="generator_failed")
    assert "media 1: not a file X can post" in (event.detail or "")


def test_queue_history_and_accounts_show_media(folder: BotFolder) -> None:
    for n in range(3):
        write(folder.path, f"{n}.png", image_bytes("PNG", 50 + n))
    result = folder.run("post", "three pictures", "--account", "@alice", "--at", "2099-01-01 10:00",
                        *[a for n in range(3) for a in ("--media", f"{n}.png")])
    assert result.returncode == 0, result.stderr
    assert "3 media files" in result.stdout
    folder.run("post", "words only", "--account", "@alice", "--at", "2099-01-02 10:00")
    queue = {line.split()[0]: line.split() for line in folder.run("queue").stdout.splitlines()[1:3]}
    assert queue["1"][7] == "3" and queue["2"][7] == "-"  # ID ACCOUNT DATE TIME ZONE STATUS PARTS MEDIA
    assert folder.run("cancel", "1").returncode == 0
    history = folder.run("history").stdout.splitlines()
    assert history[0].split()[4] == "MEDIA" and history[1].split()[:4] == ["1", "@alice", "-", "canceled"]
    assert history[1].split()[4] == "3"
    accounts = {line.split()[0]: line for line in folder.run("accounts").stdout.splitlines()
                if line.startswith("@")}
    assert accounts["@oldie"].endswith("text only: reconnect to post media")
    assert "reconnect to post media" not in accounts["@alice"]
