"""Media uploads: sessions, segments, finishing, processing, alt text, expiry.

Images are ready when finished; GIFs and videos are `pending` and then move on, one
step per STATUS poll, or by the sandbox clock when `media_processing_seconds` > 0.
`media_processing` makes every GIF/video (`failed`) or only the next one (`fail_next`)
fail. Each public method holds the world's lock for its whole change and hands back a
copy of the media as it left it, so an answer built from it says one moment's state.
"""
from __future__ import annotations

import copy
from typing import Any

from sandbox.errors import MEDIA_INVALID_MESSAGE, invalid_request, not_found
from sandbox.records import MEDIA_LIFETIME, Media
from sandbox.shared import Part
from sandbox.sniff import image_info, video_type

HEAD_BYTES = 64 * 1024
UNRECOGNIZED = "media type unrecognized."
FINALIZED = "This upload has been finalized already."


class Uploads(Part):
    """Every upload of the world, by media id."""

    def reset(self) -> None:
        """No media."""
        with self._lock:
            self._media: dict[str, Media] = {}

    # --- uploading ------------------------------------------------------------------

    def start(self, owner_id: str, category: str, media_type: str, total_bytes: int | None = None) -> Media:
        """A new upload by `owner_id` (INIT of a chunked one, or the start of a simple one)."""
        with self._lock:
            media_id = self._shared.snowflake()
            prefix = {"tweet_video": "7", "amplify_video": "7", "tweet_gif": "16"}.get(category, "3")
            now = self._shared.now()
            media = Media(media_id, f"{prefix}_{media_id}", owner_id, category, media_type, now,
                          expires_at=now + MEDIA_LIFETIME, total_bytes=total_bytes)
            self._media[media_id] = media
            return copy.copy(media)

    def upload(self, owner_id: str, category: str, media_type: str, data: bytes) -> Media:
        """A simple upload: made and finished in one step."""
        with self._lock:
            media = self._media[self.start(owner_id, category, media_type).id]
            media.size, media.total_bytes, media.segments = len(data), len(data), {0: len(data)}
            self._finish(media, data)
            return copy.copy(media)

    def append(self, owner_id: str, media_id: str, segment: int, data: bytes) -> Media:
        """Keep one segment of a chunked upload; sending an index again replaces it."""
        with self._lock:
            media = self._own(owner_id, media_id)
            if media.state != "uploading":
                raise invalid_request(FINALIZED, {"id": [media_id]})
            media.segments[segment] = len(data)
            if media.kind == "image":
                media.chunks[segment] = data
            elif segment == 0:
                media.chunks[0] = data[:HEAD_BYTES]
            return copy.copy(media)

    def finalize(self, owner_id: str, media_id: str) -> Media:
        """End a chunked upload: every segment there, adding up to `total_bytes`, of a known type."""
        with self._lock:
            media = self._own(owner_id, media_id)
            if media.state != "uploading":
                raise invalid_request(FINALIZED, {"id": [media_id]})
            size = sum(media.segments.values())
            if size != media.total_bytes or sorted(media.segments) != list(range(len(media.segments))):
                raise invalid_request(f"File size does not match total_bytes: received {size} of "
                                      f"{media.total_bytes} bytes in segments {sorted(media.segments)}",
                                      {"total_bytes": [str(media.total_bytes)]})
            data = b"".join(media.chunks[i] for i in sorted(media.chunks))
            if media.kind in ("image", "gif") and image_info(data) is None:
                raise invalid_request(UNRECOGNIZED, {"id": [media_id]})
            media.size, media.chunks = size, {}
            self._finish(media, data)
            return copy.copy(media)

    def _finish(self, media: Media, data: bytes) -> None:
        """Keep what the sandbox keeps of the bytes; images are ready, GIFs and videos wait for processing."""
        if media.kind in ("image", "gif"):
            media.image = image_info(data)
        if media.kind == "image":
            media.data = data
        if media.kind == "video":
            media.video_type = video_type(data) or media.media_type
        if media.kind in ("image", "subtitles"):
            media.state = "succeeded"
            return
        options = self._shared.options
        media.state, media.finalized_at = "pending", self._shared.now()
        if options.media_processing_seconds > 0:
            media.ready_at = media.finalized_at + options.media_processing_seconds
        if options.media_processing == "fail_next":
            media.will_fail, options.media_processing = True, "succeeded"

    # --- processing -----------------------------------------------------------------

    def status(self, owner_id: str, media_id: str) -> Media:
        """A STATUS poll: processing moves on (see the module docstring) and the poll is counted."""
        with self._lock:
            media = self._own(owner_id, media_id)
            if media.state == "uploading":
                raise invalid_request("This upload has not been finalized.", {"media_id": [media_id]})
            self._settle(media, polled=True)
            media.polls += 1
            return copy.copy(media)

    def _settle(self, media: Media, polled: bool = False) -> None:
        """Move processing on: one step per poll, or by the sandbox clock when it takes seconds."""
        if media.state not in ("pending", "in_progress"):
            return
        if media.ready_at is not None and self._shared.now() >= media.ready_at:
            media.state = self._outcome(media)
        elif media.ready_at is not None:
            media.state = "in_progress" if polled else media.state
        elif polled:
            media.state = "in_progress" if media.state == "pending" else self._outcome(media)

    def _outcome(self, media: Media) -> str:
        """How processing ends: `failed` when switched so for all or for this upload."""
        return "failed" if media.will_fail or self._shared.options.media_processing == "failed" else "succeeded"

    def usable(self, owner_id: str, media_ids: tuple[str, ...]) -> tuple[str, ...]:
        """The media keys of the ids, if each is the owner's, processed (`succeeded`), not expired,
        and together 1–4 images or one GIF or one video: else X's 400.

        X's words for the mix rule are not on record; it answers the other cases with
        "Your media IDs are invalid.", so the sandbox does for all of them.
        """
        with self._lock:
            found = []
            for media_id in media_ids:
                media = self._media.get(media_id)
                if media is not None:
                    self._settle(media)
                if (media is None or media.owner_id != owner_id or media.state != "succeeded"
                        or self._shared.now() >= media.expires_at or media.kind == "subtitles"):
                    raise invalid_request(MEDIA_INVALID_MESSAGE, {"media.media_ids": list(media_ids)})
                found.append(media)
            if len(found) > 1 and any(m.kind != "image" for m in found):
                raise invalid_request(MEDIA_INVALID_MESSAGE, {"media.media_ids": list(media_ids)})
            return tuple(m.media_key for m in found)

    # --- metadata and expiry ----------------------------------------------------------

    def set_alt_text(self, owner_id: str, media_id: str, alt_text: str | None) -> Media:
        """Give the owner's media its alt text (None: leave it as it is)."""
        with self._lock:
            media = self._own(owner_id, media_id, parameter="id")
            if alt_text is not None:
                media.alt_text = alt_text
            return copy.copy(media)

    def expire(self, media_id: str) -> Media | None:
        """Make a media id expire now (None if unknown): X no longer takes it in a post."""
        with self._lock:
            media = self._media.get(media_id)
            if media is None:
                return None
            media.expires_at = min(media.expires_at, self._shared.now())
            return copy.copy(media)

    # --- reading --------------------------------------------------------------------

    def get(self, media_id: str) -> Media | None:
        """A media record by id (the record itself: read it inside `World.answer` to read one moment)."""
        with self._lock:
            return self._media.get(media_id)

    def by_key(self, media_key: str) -> Media | None:
        """A media record by its media key ("3_<id>")."""
        _, _, media_id = media_key.partition("_")
        with self._lock:
            media = self._media.get(media_id)
            return media if media is not None and media.media_key == media_key else None

    def rows(self) -> list[dict[str, Any]]:
        """Every upload as exposed in `state.media`."""
        with self._lock:
            return [{**m.row(), "owner_id": m.owner_id, "category": m.category, "size": m.size,
                     "state": m.state, "expires_at": m.expires_at} for m in self._media.values()]

    def post_media_rows(self, media_ids: tuple[str, ...]) -> list[dict[str, Any]]:
        """The rows of a post's media that the world still has."""
        with self._lock:
            return [self._media[m].row() for m in media_ids if m in self._media]

    def _own(self, owner_id: str, media_id: str, parameter: str = "media_id") -> Media:
        """The owner's upload session or media; another user's is as good as unknown."""
        media = self._media.get(media_id)
        if media is None or media.owner_id != owner_id:
            raise not_found("media", media_id, parameter=parameter)
        return media
