"""Media a post carries: read from the bytes, checked against X's rules when queued.

Every way into the queue gives files here as `MediaFile`s (a name and the bytes). The
type is read from the bytes, never the file name; an image is decoded whole (Pillow),
so a truncated or corrupt one is refused now, not by X at posting time. A checked
file becomes a `MediaRef` that still carries its bytes until the queue saves them in
the store (`bot.queue.save_posts`), so a refusal anywhere leaves the store untouched.
"""
from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from bot.models import Account, MediaRef
from bot.settings import MEDIA_SCOPE
from bot.store.digests import digest_of

MB = 1024 * 1024
LIMITS = {"image": 5 * MB, "gif": 15 * MB, "video": 512 * MB}  # x-api-facts §2
MAX_IMAGES = 4
MAX_ALT = 1000
ACCEPTED = "PNG, JPEG, WEBP, GIF, MP4 or MOV"
A_KIND = {"image": "an image", "gif": "a GIF", "video": "a video"}


class MediaError(ValueError):
    """A file cannot be posted; the message names the file and the rule."""


@dataclass(frozen=True)
class MediaFile:
    """A file as it reaches the queue: its name (for messages) and its bytes."""

    name: str
    data: bytes
    alt: str | None = None


PartsMedia = Sequence[Sequence[MediaFile]]  # the files of each part, in order (fewer lists than parts: none)


def read_file(path: Path | str, alt: str | None = None) -> MediaFile:
    """The file at `path`, or `MediaError` naming it."""
    path = Path(path)
    try:
        return MediaFile(path.name, path.read_bytes(), alt)
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MediaError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise MediaError(f"{path}: cannot be read ({exc.strerror})") from None


def can_post_media(account: Account) -> bool:
    """Whether the account granted the scope X's upload needs (accounts connected before
    media.write joined the scopes must reconnect)."""
    return MEDIA_SCOPE in account.scopes


RECONNECT_FOR_MEDIA = "reconnect to post media"


def check_media(account: Account, parts_media: Sequence[Sequence[MediaFile]], parts: int) -> tuple[
        tuple[MediaRef, ...], ...]:
    """Each part's files checked and turned into refs (carrying their bytes), or `MediaError`."""
    if not any(parts_media):
        return ()
    if len(parts_media) > parts:
        raise MediaError(f"media given for part {len(parts_media)}, but the post has {parts} part(s)")
    if not can_post_media(account):
        raise MediaError(f"{account.handle} was connected without the {MEDIA_SCOPE} scope: "
                         f"{RECONNECT_FOR_MEDIA} (Reconnect on the dashboard)")
    checked = [check_part(files, number if parts > 1 else None)
               for number, files in enumerate(parts_media, start=1)]
    return tuple(checked) + ((),) * (parts - len(checked))


def check_part(files: Sequence[MediaFile], number: int | None = None) -> tuple[MediaRef, ...]:
    """One part's files: 1–4 images, or one GIF, or one video (X's rule), each usable."""
    refs = tuple(inspect(item) for item in files)
    kinds = [ref.kind for ref in refs]
    where = f"part {number}: " if number else ""
    moving = [ref for ref in refs if ref.kind != "image"]
    if moving and len(refs) > 1:
        raise MediaError(f"{where}{moving[0].name}: {A_KIND[moving[0].kind]} must be a post's only media "
                         f"(X takes 1 to {MAX_IMAGES} images, or one GIF, or one video)")
    if kinds.count("image") > MAX_IMAGES:
        raise MediaError(f"{where}{len(refs)} images: X takes at most {MAX_IMAGES} per post")
    return refs


def inspect(item: MediaFile) -> MediaRef:
    """What the bytes are (type, size checked), or `MediaError` naming the file and the rule."""
    mime = sniff(item.data)
    if mime is None:
        raise MediaError(f"{item.name}: not a file X can post (expected {ACCEPTED}, read from its bytes)")
    kind = "gif" if mime == "image/gif" else mime.split("/")[0]
    if len(item.data) > LIMITS[kind]:
        raise MediaError(f"{item.name}: {_size(len(item.data))} is over X's {LIMITS[kind] // MB} MB "
                         f"limit for {A_KIND[kind]}")
    if kind == "video":
        _check_video(item)
    else:
        _check_image(item)
    alt = (item.alt or "").strip() or None
    if alt is not None and len(alt) > MAX_ALT:
        raise MediaError(f"{item.name}: the alt text has {len(alt)} characters; X takes at most {MAX_ALT}")
    return MediaRef(digest=digest_of(item.data), kind=kind, mime=mime, size=len(item.data), name=item.name,
                    alt=alt, data=item.data)


def sniff(data: bytes) -> str | None:
    """The media type by the file's first bytes (PNG, JPEG, WEBP, GIF, MP4, MOV), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    box = data[4:8]
    if box == b"ftyp":
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    if box in (b"moov", b"mdat", b"wide", b"free"):
        return "video/quicktime"
    return None


def _check_image(item: MediaFile) -> None:
    """Decode the whole image: a cut or corrupt file is refused now."""
    try:
        with Image.open(io.BytesIO(item.data)) as image:
            image.load()
            if not image.width or not image.height:
                raise MediaError(f"{item.name}: the image has no pixels")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{item.name}: the image cannot be read ({exc})") from None


def _check_video(item: MediaFile) -> None:
    """The MP4/MOV box structure holds together to the last byte and has a `moov` (the index
    a player needs); decoding frames is left to X."""
    offset, names = 0, []
    data = item.data
    while offset < len(data):
        if offset + 8 > len(data):
            raise MediaError(f"{item.name}: the video is cut short")
        size, name = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1 and offset + 16 <= len(data):
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        if size < 8 or offset + size > len(data):
            raise MediaError(f"{item.name}: the video is cut short or damaged")
        names.append(name)
        offset += size
    if b"moov" not in names:
        raise MediaError(f"{item.name}: the video has no index (moov box): it cannot be played")


def _size(count: int) -> str:
    return f"{count / MB:.1f} MB"
