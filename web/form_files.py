"""What the compose form's files arrive as: `MediaFile`s per part, each with its alt text.

Field names (`templates/dashboard.html`, `static/media.js`): part `n` (1-based, the n-th
`part` textarea) sends its files as `media-n` (one `<input type=file multiple>`, in the
order chosen) and the alt text of its i-th file (1-based) as `alt-n-i`. The page states
and checks the limits before upload; the queue (`bot.media_checks`) checks them again, and its
check is the one that counts. How large a request body may be is `web.gates`'s.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from werkzeug.datastructures import FileStorage, MultiDict

from bot.media_checks import LIMITS, MAX_ALT, MAX_IMAGES, MediaFile

#: What the file fields accept (the queue reads the type from the bytes whatever this says).
ACCEPT = "image/png,image/jpeg,image/webp,image/gif,video/mp4,video/quicktime,.png,.jpg,.jpeg,.webp,.gif,.mp4,.mov"


@dataclass(frozen=True)
class Chosen:
    """A file the form sent (its name and alt text), listed again after a refusal: a browser never
    refills a file field, so the page asks for the file again and keeps what was typed for it."""

    name: str
    alt: str


def field_name(part: int) -> str:
    """The file field of part `part` (1-based)."""
    return f"media-{part}"


def alt_name(part: int, index: int) -> str:
    """The alt-text field of the `index`-th file (1-based) of part `part` (1-based)."""
    return f"alt-{part}-{index}"


def files_of(files: MultiDict[str, FileStorage], form: Mapping[str, str], parts: int) -> list[list[MediaFile]]:
    """Each of the first `parts` parts' files, read whole, each with its alt text (an empty field sends none)."""
    return [[MediaFile(upload.filename or f"file {index}", upload.read(), form.get(alt_name(part, index)) or None)
             for index, upload in enumerate(_sent(files, part), start=1)]
            for part in range(1, parts + 1)]


def chosen_of(media: Sequence[Sequence[MediaFile]]) -> list[list[Chosen]]:
    """What the form sent, by part, without the bytes (to list again after a refusal)."""
    return [[Chosen(item.name, item.alt or "") for item in part] for part in media]


def limits() -> dict[str, int]:
    """The limits the page states and its script checks before upload (bytes, counts, characters)."""
    return {"image": LIMITS["image"], "gif": LIMITS["gif"], "video": LIMITS["video"],
            "images": MAX_IMAGES, "alt": MAX_ALT}


def _sent(files: MultiDict[str, FileStorage], part: int) -> list[FileStorage]:
    return [upload for upload in files.getlist(field_name(part)) if upload.filename]
