"""`/media/<digest>`: the stored bytes of a post's media, for the dashboard's thumbnails.

Behind sign-in like every page. It serves only a digest that a post the dashboard lists
(the queue and the newest history) refers to, with the type that post's `MediaRef`
recorded when it was queued (read from the bytes then), never a type guessed now, and
`nosniff`; any other stored file, or a name that is not a digest, is 404. A digest's
bytes never change, so the browser may keep them, privately.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Blueprint, Response, abort
from flask.typing import ResponseReturnValue

from bot.models import MediaRef, Post
from bot.store import RecordMissing
from web.dashboard import HISTORY_SHOWN
from web.db import store

log = logging.getLogger("tweetbot.web.media")
bp = Blueprint("media", __name__)

MEDIA_CACHE = "private, max-age=86400"  # a digest's bytes never change; signed-in browsers only


@bp.get("/media/<digest>")
def media(digest: str) -> ResponseReturnValue:
    """The stored bytes of a file a listed post carries, with its recorded type; 404 for anything else."""
    ref = find_ref(digest, _listed_posts())
    if ref is None:
        abort(404)
    try:
        data = store().get_media(digest)
    except RecordMissing:
        log.info("media %s of a listed post is no longer stored", digest)
        abort(404)
    response = Response(data, mimetype=ref.mime)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = MEDIA_CACHE
    return response


def find_ref(digest: str, posts: Iterable[Post]) -> MediaRef | None:
    """The first `MediaRef` of `posts` that names `digest`."""
    for post in posts:
        for part in post.media:
            for ref in part:
                if ref.digest == digest:
                    return ref
    return None


def _listed_posts() -> Iterable[Post]:
    """The posts the dashboard lists: the queue, then the newest of the history."""
    yield from store().queued_posts()
    yield from store().history(HISTORY_SHOWN)
