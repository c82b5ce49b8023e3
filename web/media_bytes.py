"""`/posts/<id>/media/<digest>`: the stored bytes of a post's media, for the thumbnails of the
queue, the history (every page of it) and the edit form.

Behind sign-in like every page. It serves only a digest that the named post (queued or
finished) refers to, with the type that post's `MediaRef` recorded when it was queued
(read from the bytes then), never a type guessed now, and `nosniff`; a stored file no
such post carries, or a name that is not a digest, is 404. A digest's bytes never change,
so the browser may keep them, privately.

The blueprint is `media` (its endpoint `media.media`, named by the templates and `web.security`).
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, abort
from flask.typing import ResponseReturnValue

from bot.models import MediaRef, Post
from bot.store import RecordMissing
from web.db import store

log = logging.getLogger("tweetbot.web.media")  # named for the blueprint: log filters need not change
bp = Blueprint("media", __name__)

MEDIA_CACHE = "private, max-age=86400"  # a digest's bytes never change; signed-in browsers only


@bp.get("/posts/<int:post_id>/media/<digest>")
def media(post_id: int, digest: str) -> ResponseReturnValue:
    """The stored bytes of a file post `post_id` carries, with its recorded type; 404 for anything else."""
    ref = carried_ref(store().get_post(post_id), digest)
    if ref is None:
        abort(404)
    try:
        data = store().get_media(digest)
    except RecordMissing:
        log.info("media %s of post %s is no longer stored", digest, post_id)
        abort(404)
    response = Response(data, mimetype=ref.mime)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = MEDIA_CACHE
    return response


def carried_ref(post: Post | None, digest: str) -> MediaRef | None:
    """The `MediaRef` of `post` (if there is one) that names `digest`."""
    refs = (ref for part in post.media for ref in part) if post is not None else ()
    return next((ref for ref in refs if ref.digest == digest), None)
