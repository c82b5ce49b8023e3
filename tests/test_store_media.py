"""Media kept by the store (issue 11), through the contract, on both stores: each distinct file once,
checked against its digest when read, forgotten once no post needs it, carried by backups and copies.

Every test takes `store_at` (a TinyDB file and a PostgreSQL database of its own) unless it is
about one store's own way of keeping the bytes (the file store's backups and file modes).
"""
from __future__ import annotations

import io
import os
import random
import subprocess
import tarfile
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from bot.models import CANCELED, FAILED, POSTED, SENDING, MediaRef, Post, utcnow
from bot.retention import UPLOAD_GRACE, forget_finished_media
from bot.store import RecordMissing, Repository, StoreContents, StoreDamaged
from bot.store.digests import digest_of
from bot.store.file.store import media_folder
from bot.store.postgres.store import CHUNK

from conftest import TWEETBOT, tweetbot_env
from store_support import FILE, POSTGRES, StoreAt

RETENTION = timedelta(days=7)
NO_SANDBOX = "http://127.0.0.1:9"  # nothing here talks to X


def blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def ref(data: bytes, name: str = "chart.png") -> MediaRef:
    return MediaRef(digest_of(data), "image", "image/png", len(data), name, alt=f"alt text of {name}")


def post_with(account: str, *media: bytes, status: str = "scheduled", **fields: object) -> Post:
    return Post(id=0, account_id=account, parts=("a post with media",), due_at=utcnow() + timedelta(hours=1),
                status=status, media=(tuple(ref(data) for data in media),), **fields)  # type: ignore[arg-type]


def media_files(at: StoreAt) -> list[str]:
    """The file store's media files as they are on disk."""
    folder = media_folder(Path(at.location))
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def chunk_rows(at: StoreAt) -> list[tuple[str, int, int]]:
    """PostgreSQL's pieces: (digest, seq, length) of every row."""
    with psycopg.connect(at.admin_url) as conn:
        rows = conn.execute("SELECT digest, seq, length(data) FROM media_chunks ORDER BY digest, seq").fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


# --- the contract --------------------------------------------------------------------------------


def test_media_round_trips_and_is_kept_in_pieces(store_at: StoreAt) -> None:
    store = store_at.open()
    video, image, empty = blob(2 * CHUNK + 12_345, seed=1), blob(70_000, seed=2), b""
    assert store.media_digests() == {}
    before = utcnow()
    digests = [store.put_media(data) for data in (video, image, empty)]
    after = utcnow()
    assert digests == [digest_of(video), digest_of(image), digest_of(empty)]
    again = store_at.open()  # another process's view of the same store
    assert [again.get_media(d) for d in digests] == [video, image, empty]
    stored = again.media_digests()
    assert set(stored) == set(digests)
    assert all(before - timedelta(seconds=1) <= at <= after + timedelta(seconds=1) for at in stored.values())
    assert all(at.utcoffset() == timedelta(0) for at in stored.values())
    if store_at.database:  # 1 MiB pieces, never one huge value
        assert [(seq, size) for d, seq, size in chunk_rows(store_at) if d == digest_of(video)] == [
            (0, CHUNK), (1, CHUNK), (2, 12_345)]
        assert max(size for _, _, size in chunk_rows(store_at)) == CHUNK
    else:
        assert media_files(store_at) == sorted(digests)


def test_the_same_image_put_by_ten_posts_is_stored_once(store_at: StoreAt) -> None:
    store = store_at.open()
    image = blob(CHUNK + 1, seed=3)  # two pieces in PostgreSQL
    stored_before = store.media_digests()
    posts = []
    for n in range(10):
        digest = store.put_media(image)  # each post's upload, as the web and the CLI do it
        posts.append(post_with(f"{n}", image))
        assert digest == digest_of(image)
    saved = store.add_posts(posts)
    assert stored_before == {}
    assert list(store.media_digests()) == [digest_of(image)]
    assert {d for post in saved for d in post.digests()} == {digest_of(image)}
    if store_at.kind == FILE:
        assert media_files(store_at) == [digest_of(image)]
    else:
        assert [(seq, size) for _, seq, size in chunk_rows(store_at)] == [(0, CHUNK), (1, 1)]
    assert store.get_media(digest_of(image)) == image


def test_a_second_put_of_the_same_bytes_renews_their_stored_time(store_at: StoreAt) -> None:
    """A new upload of old bytes is fresh: it gets the grace hour of an upload (see bot.retention)."""
    store = store_at.open()
    image = blob(5_000, seed=4)
    first = store.put_media(image)
    stored_first = store.media_digests()[first]
    assert store.put_media(image) == first
    assert store.media_digests()[first] > stored_first
    assert len(store.media_digests()) == 1


def test_a_missing_digest_is_record_missing_naming_it(store_at: StoreAt) -> None:
    store = store_at.open()
    store.put_media(b"some other bytes")
    never = digest_of(b"never stored")
    with pytest.raises(RecordMissing, match=never):
        store.get_media(never)
    for name in ("../tweetbot.json", "", never.upper()):  # no path and no other spelling reaches a file
        with pytest.raises(RecordMissing):
            store.get_media(name)
    assert store.delete_media([never, "../tweetbot.json"]) == 0
    assert len(store.media_digests()) == 1


def damage(at: StoreAt, digest: str) -> None:
    """Flip one byte of the kept bytes: in the file, or in a piece in PostgreSQL."""
    if at.kind == FILE:
        path = media_folder(Path(at.location)) / digest
        data = bytearray(path.read_bytes())
        data[CHUNK + 10] ^= 0xFF
        path.write_bytes(bytes(data))
        return
    with psycopg.connect(at.admin_url, autocommit=True) as conn:
        changed = conn.execute("UPDATE media_chunks SET data = set_byte(data, 10, get_byte(data, 10) # 255) "
                               "WHERE digest = %s AND seq = 0", (digest,)).rowcount
    assert changed == 1


def test_damaged_media_is_store_damaged_naming_it(store_at: StoreAt) -> None:
    store = store_at.open()
    image = blob(CHUNK + 100, seed=5)
    digest = store.put_media(image)
    assert store.get_media(digest) == image
    damage(store_at, digest)
    with pytest.raises(StoreDamaged, match=digest):
        store_at.open().get_media(digest)


def test_delete_media_counts_what_it_deleted_and_spares_the_fresh(store_at: StoreAt) -> None:
    store = store_at.open()
    old, fresh = store.put_media(b"old bytes"), store.put_media(b"fresh bytes")
    stored = store.media_digests()
    assert store.delete_media([fresh], stored_before=stored[fresh]) == 0  # stored at, not before
    assert store.delete_media([old, fresh, old]) == 2
    assert store.delete_media([old]) == 0
    assert store.media_digests() == {}
    with pytest.raises(RecordMissing):
        store.get_media(old)


def test_a_load_that_fails_on_a_media_file_leaves_no_media(store_at: StoreAt) -> None:
    """What `tweetbot store copy` relies on: the third file cannot be read, so the two before it go too."""
    files = [blob(CHUNK + n, seed=30 + n) for n in range(3)]
    by_digest = {digest_of(data): data for data in files}

    def read(digest: str) -> bytes:
        if digest == digest_of(files[2]):
            raise StoreDamaged(f"the media {digest} is damaged")
        return by_digest[digest]

    store = store_at.open()
    contents = StoreContents(queue=[post_with("9", *files)], media=dict.fromkeys(by_digest, utcnow()),
                             read_media=read)
    with pytest.raises(StoreDamaged):
        store.load(contents)
    assert store.media_digests() == {} and store.queued_posts() == []
    if store_at.kind == FILE:
        assert media_files(store_at) == []
    else:
        assert chunk_rows(store_at) == []


# --- finished_at ------------------------------------------------------------------------------------


def test_a_post_that_finishes_gets_finished_at_unless_given(store_at: StoreAt) -> None:
    store = store_at.open()
    posts = store.add_posts([post_with("1", b"x") for _ in range(5)])
    given = datetime(2026, 1, 2, 3, 4, 5, 600_000).astimezone()
    assert all(p.finished_at is None for p in posts)
    store.update_post(posts[4].id, status=SENDING)
    before = utcnow()
    store.update_post(posts[0].id, status=POSTED, tweet_ids=("1",))
    store.update_post(posts[1].id, status=FAILED, last_error="403")
    store.update_post(posts[2].id, status=CANCELED)
    after = utcnow()
    store.update_post(posts[3].id, status=POSTED, finished_at=given)
    again = store_at.open()
    stamps = [again.get_post(p.id).finished_at for p in posts]  # type: ignore[union-attr]
    assert all(stamp is not None and before <= stamp <= after for stamp in stamps[:3]), stamps
    assert stamps[3] == given
    assert stamps[4] is None and again.get_post(posts[4].id).status == SENDING  # type: ignore[union-attr]
    assert {p.id: p.finished_at for p in again.history(limit=10)}[posts[0].id] == stamps[0]


# --- retention ----------------------------------------------------------------------------------------


def finished_post(store: Repository, data: bytes, account: str = "1") -> Post:
    """A post that carried `data` and was posted just now."""
    store.put_media(data)
    (queued,) = store.add_posts([post_with(account, data)])
    return store.update_post(queued.id, status=POSTED, tweet_ids=("5",))


def test_a_finished_posts_media_is_kept_for_the_retention_period_then_forgotten(store_at: StoreAt) -> None:
    store = store_at.open()
    image = blob(3_000, seed=6)
    done = finished_post(store, image)
    assert done.finished_at is not None
    end = done.finished_at + RETENTION
    assert forget_finished_media(store, end - timedelta(minutes=1), RETENTION) == 0
    assert store.get_media(digest_of(image)) == image
    assert forget_finished_media(store, end + timedelta(minutes=1), RETENTION) == 1
    assert store.media_digests() == {}
    with pytest.raises(RecordMissing):
        store.get_media(digest_of(image))


def test_media_a_queued_post_uses_is_kept_until_that_post_is_done_too(store_at: StoreAt) -> None:
    store = store_at.open()
    shared, own = blob(4_000, seed=7), blob(4_000, seed=8)
    first = finished_post(store, shared)
    store.put_media(own)
    (queued,) = store.add_posts([post_with("2", shared, own)])
    later = (first.finished_at or utcnow()) + RETENTION + timedelta(days=30)
    assert forget_finished_media(store, later, RETENTION) == 0  # the queued post still needs both
    assert set(store.media_digests()) == {digest_of(shared), digest_of(own)}
    store.update_post(queued.id, status=SENDING)
    assert forget_finished_media(store, later, RETENTION) == 0  # sending: still needed
    canceled = store.update_post(queued.id, status=CANCELED)
    assert canceled.finished_at is not None
    assert forget_finished_media(store, canceled.finished_at + timedelta(days=1), RETENTION) == 0
    assert forget_finished_media(store, canceled.finished_at + RETENTION + timedelta(seconds=1), RETENTION) == 2
    assert store.media_digests() == {}


def test_a_fresh_upload_no_post_names_yet_survives_the_grace_hour(store_at: StoreAt) -> None:
    store = store_at.open()
    digest = store.put_media(blob(2_000, seed=9))
    stored_at = store.media_digests()[digest]
    assert forget_finished_media(store, utcnow(), RETENTION) == 0
    assert forget_finished_media(store, stored_at + UPLOAD_GRACE - timedelta(seconds=1), RETENTION) == 0
    assert digest in store.media_digests()
    assert forget_finished_media(store, stored_at + UPLOAD_GRACE + timedelta(seconds=1), RETENTION) == 1
    assert store.media_digests() == {}


def test_retention_removes_what_a_crash_mid_put_left_in_the_media_folder(tmp_path: Path) -> None:
    at = StoreAt(FILE, str(tmp_path / "tweetbot.json"))
    store = at.open()
    kept = store.put_media(b"a stored file")
    folder = media_folder(Path(at.location))
    old, fresh = folder / f".{digest_of(b'x')}.a1b2c3.tmp", folder / f".{digest_of(b'y')}.d4e5f6.tmp"
    old.write_bytes(b"half a file")
    fresh.write_bytes(b"a put in flight")
    a_day_ago = (utcnow() - timedelta(days=1)).timestamp()
    os.utime(old, (a_day_ago, a_day_ago))
    assert set(store.media_digests()) == {kept}  # a temp file is no stored file
    assert forget_finished_media(store, utcnow(), RETENTION) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted([kept, fresh.name])


def test_retention_reads_as_deep_into_the_history_as_the_period_reaches(store_at: StoreAt) -> None:
    """1,200 finished posts (more than one page of history), the image on the one that finished first."""
    store = store_at.open()
    image = blob(1_000, seed=10)
    store.put_media(image)
    now = utcnow()
    oldest = post_with("3", image, status=POSTED, finished_at=now - timedelta(days=6))
    rest = [Post(id=0, account_id="3", parts=(f"done {n}",), due_at=now, status=POSTED,
                 finished_at=now - timedelta(days=5, seconds=-n)) for n in range(1_199)]
    store.add_posts([oldest, *rest])
    assert store.history(limit=2_000)[-1].digests() == {digest_of(image)}
    assert forget_finished_media(store, now + 2 * UPLOAD_GRACE, RETENTION) == 0  # past the upload's grace
    assert forget_finished_media(store, now + timedelta(days=1, hours=1), RETENTION) == 1


# --- backup and restore (the file store: PostgreSQL is backed up with the database's own tools) ------


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWEETBOT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def filled_file_store(tmp_path: Path) -> tuple[StoreAt, dict[str, str], dict[str, bytes]]:
    """A file store with a queued post carrying two images (one of several MiB) and an upload no post
    names yet; (where, its CLI environment, the media by digest)."""
    at = StoreAt(FILE, str(tmp_path / "live" / "tweetbot.json"))
    env = tweetbot_env(tmp_path / "live", NO_SANDBOX, TOKEN_KEY=at.key, STORE_PATH=at.location)
    store = at.open()
    media = {store.put_media(data): data for data in (blob(3 * CHUNK + 1, seed=11), blob(900, seed=12),
                                                      blob(50, seed=13))}
    big, small, _ = media.values()
    store.add_posts([post_with("7", big, small)])
    return at, env, media


@pytest.mark.slow
def test_backup_and_restore_bring_the_media_back(tmp_path: Path) -> None:
    live, env, media = filled_file_store(tmp_path)
    stored = live.open().media_digests()
    archive = tmp_path / "backups" / "with-media.tar.gz"
    made = run_cli(env, tmp_path, "backup", str(archive))
    assert made.returncode == 0, made.stderr
    assert "and 3 media file(s)" in made.stdout
    with tarfile.open(archive, "r:gz") as opened:
        assert sorted(n for n in opened.getnames() if n.startswith("media/")) == sorted(f"media/{d}" for d in media)

    fresh = StoreAt(FILE, str(tmp_path / "fresh" / "tweetbot.json"), key=live.key)
    assert not media_folder(Path(fresh.location)).exists()
    restored = run_cli(dict(env, STORE_PATH=fresh.location), tmp_path, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    back = fresh.open()
    assert back.media_digests() == stored  # the same files, each with the time it was stored
    assert {d: back.get_media(d) for d in media} == media
    (post,) = back.queued_posts()
    assert {back.get_media(d) for d in post.digests()} <= set(media.values()) and len(post.digests()) == 2


@pytest.mark.slow
def test_a_restore_over_a_store_sets_its_media_aside(tmp_path: Path) -> None:
    live, env, media = filled_file_store(tmp_path)
    archive = tmp_path / "backup.tar.gz"
    assert run_cli(env, tmp_path, "backup", str(archive)).returncode == 0
    other = live.open().put_media(b"put after the backup")
    refused = run_cli(env, tmp_path, "restore", str(archive))
    assert refused.returncode == 2 and "is not empty" in refused.stderr
    assert run_cli(env, tmp_path, "restore", str(archive), "--force").returncode == 0
    assert set(live.open().media_digests()) == set(media)
    kept = [p for p in Path(live.location).parent.iterdir() if p.name.startswith("tweetbot.media.replaced-")]
    assert len(kept) == 1 and other in {p.name for p in kept[0].iterdir()}


def test_a_damaged_media_file_fails_the_backup_with_its_name(tmp_path: Path) -> None:
    live, env, media = filled_file_store(tmp_path)
    big = next(iter(media))
    damage(live, big)
    archive = tmp_path / "backups" / "damaged.tar.gz"
    made = run_cli(env, tmp_path, "backup", str(archive))
    assert made.returncode == 2 and big in made.stderr and "Traceback" not in made.stderr
    assert len(made.stderr.strip().splitlines()) == 1
    assert not archive.exists() and os.listdir(archive.parent) == []


@pytest.mark.slow
def test_a_restore_refuses_an_archive_whose_media_was_changed(tmp_path: Path) -> None:
    live, env, media = filled_file_store(tmp_path)
    archive = tmp_path / "backup.tar.gz"
    assert run_cli(env, tmp_path, "backup", str(archive)).returncode == 0
    small = [d for d, data in media.items() if len(data) == 50][0]
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(archive, "r:gz") as source, tarfile.open(forged, "w:gz") as target:
        for member in source:
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == f"media/{small}":
                data = bytes([data[0] ^ 1]) + data[1:]
            target.addfile(member, io.BytesIO(data))
    fresh = str(tmp_path / "fresh" / "tweetbot.json")
    refused = run_cli(dict(env, STORE_PATH=fresh), tmp_path, "restore", str(forged))
    assert refused.returncode == 2 and small in refused.stderr, refused.stderr
    assert not Path(fresh).exists() and not media_folder(Path(fresh)).exists()


# --- store copy ------------------------------------------------------------------------------------------


def env_for(tmp_path: Path, source: StoreAt) -> dict[str, str]:
    env = tweetbot_env(tmp_path, NO_SANDBOX, TOKEN_KEY=source.key, **source.env())
    if source.database:
        env.pop("STORE_PATH")
    return env


def copy_to(tmp_path: Path, source: StoreAt, target: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env_for(tmp_path, source), tmp_path, "store", "copy", "--to", target)


def held_media(at: StoreAt) -> tuple[dict[str, datetime], dict[str, bytes]]:
    store = at.open()
    try:
        stored = store.media_digests()
        return stored, {digest: store.get_media(digest) for digest in stored}
    finally:
        store.close()


@pytest.mark.slow
def test_store_copy_carries_media_file_to_postgres_and_back(tmp_path: Path, database_url: str) -> None:
    source, _, media = filled_file_store(tmp_path)
    stored = source.open().media_digests()
    in_pg = StoreAt(POSTGRES, database_url, key=source.key)
    assert held_media(in_pg) == ({}, {})
    to_pg = copy_to(tmp_path, source, database_url)
    assert to_pg.returncode == 0, to_pg.stderr
    assert "3 media files" in to_pg.stdout
    assert held_media(in_pg) == (stored, media)
    assert len(chunk_rows(in_pg)) == 4 + 1 + 1  # 3 MiB + 1 byte: four pieces; two small files: one each

    back = StoreAt(FILE, str(tmp_path / "back" / "tweetbot.json"), key=source.key)
    to_file = copy_to(tmp_path, in_pg, back.location)
    assert to_file.returncode == 0, to_file.stderr
    assert held_media(back) == (stored, media)
    assert media_files(back) == sorted(media)


def test_a_copy_that_fails_in_the_media_copies_nothing_into_postgres(tmp_path: Path, database_url: str) -> None:
    source, _, media = filled_file_store(tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:  # refuse the big file's third piece
        conn.execute("CREATE FUNCTION refuse_piece() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'refused piece % of %', NEW.seq, NEW.digest; END $$")
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON media_chunks FOR EACH ROW WHEN (NEW.seq = 2) "
                     "EXECUTE FUNCTION refuse_piece()")
    target = StoreAt(POSTGRES, database_url, key=source.key)
    before = target.raw()
    result = copy_to(tmp_path, source, database_url)
    assert result.returncode != 0 and "Copied" not in result.stdout
    assert "refused piece 2" in result.stderr
    assert target.raw() == before
    assert held_media(target) == ({}, {}) and target.open().queued_posts() == []


def test_a_copy_from_postgres_with_a_damaged_file_leaves_no_file_store(tmp_path: Path, database_url: str) -> None:
    """The newest file is damaged, so the others were written before the copy failed: they are gone."""
    source = StoreAt(POSTGRES, database_url)
    store = source.open()
    media = [blob(CHUNK + 1 + n, seed=20 + n) for n in range(4)]
    digests = [store.put_media(data) for data in media]
    store.add_posts([post_with("8", *media)])
    damage(source, digests[-1])
    target = StoreAt(FILE, str(tmp_path / "target" / "tweetbot.json"), key=source.key)
    Path(target.location).parent.mkdir()
    result = copy_to(tmp_path, source, target.location)
    assert result.returncode == 2 and digests[-1] in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert list(Path(target.location).parent.iterdir()) == []
