"""What the compose form's files arrive as: `MediaFile`s per part, each with its alt text.

Field names (`templates/dashboard.html`, `static/media.js`): part `n` (1-based, the n-th
`part` textarea) sends its files as `media-n` (one `<input type=file multiple>`, in the
order chosen) and the alt text of its i-th file (1-based) as `alt-n-i`. The page states
and checks the limits before upload; the queue (`bot.media_checks`) checks them again, and its
check is the one that counts.

A request body may be at most `MAX_BODY` (one video at X's limit and the rest of the
form); a body without files at most `MAX_TEXT_BODY` (a form of texts has no business
being larger, and a huge one would tie up a worker while it is parsed). A larger one
gets a page that says so (413), never a traceback.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flask import render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from bot.media_checks import LIMITS, MAX_ALT, MAX_IMAGES, MB, MediaFile

#: The largest request body accepted: one video at X's limit, with room for the rest of the form.
MAX_BODY = LIMITS["video"] + 8 * MB
#: The largest body without files: a thread of 25 parts of 280 characters is some 30 kB.
MAX_TEXT_BODY = 1 * MB
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
             for index, upload in enumerate(_uploads(files, part), start=1)]
            for part in range(1, parts + 1)]


def chosen_of(media: Sequence[Sequence[MediaFile]]) -> list[list[Chosen]]:
    """What the form sent, by part, without the bytes (to list again after a refusal)."""
    return [[Chosen(item.name, item.alt or "") for item in part] for part in media]


def limits() -> dict[str, int]:
    """The limits the page states and its script checks before upload (bytes, counts, characters)."""
    return {"image": LIMITS["image"], "gif": LIMITS["gif"], "video": LIMITS["video"],
            "images": MAX_IMAGES, "alt": MAX_ALT}


def _uploads(files: MultiDict[str, FileStorage], part: int) -> list[FileStorage]:
    return [upload for upload in files.getlist(field_name(part)) if upload.filename]


def limit_text_bodies() -> None:
    """Before a request is read: a body that carries no files may be at most `MAX_TEXT_BODY`."""
    if request.mimetype != "multipart/form-data":
        request.max_content_length = min(MAX_TEXT_BODY, request.max_content_length or MAX_TEXT_BODY)


def too_large(error: RequestEntityTooLarge) -> ResponseReturnValue:
    """A body over the limit: a page that says so (nothing was queued), not a bare 413."""
    if request.mimetype != "multipart/form-data":
        return render_template("message.html", title="Too much to send at once",
                               message=f"The form sent more than {MAX_TEXT_BODY // MB} MB of text, so nothing "
                                       "was queued: a post is at most 280 weighted characters a part."), 413
    return render_template(
        "message.html", title="Too much to upload at once",
        message=f"The form sent more than {MAX_BODY // MB:,} MB, so nothing was queued. X takes an image up to "
                f"{LIMITS['image'] // MB} MB, a GIF up to {LIMITS['gif'] // MB} MB and a video up to "
                f"{LIMITS['video'] // MB} MB; choose fewer or smaller files and queue again."), 413
