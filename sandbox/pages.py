"""Pages for people: `/` lists the sandbox users, `/<username>` shows a timeline.

So a demo can show the posts "on X". Text is the text as posted, escaped by Jinja's
autoescape (never marked safe): a post is untrusted input, and so is alt text. Images
come from `/_sandbox/media/<media_key>` (same origin, no inline script or style
attribute, so a strict CSP holds); GIFs and videos show as labelled placeholders.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, url_for
from flask.typing import ResponseReturnValue

from sandbox.metrics import poll_tally
from sandbox.records import Post, iso
from sandbox.state import World, current_world

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> ResponseReturnValue:
    """Every sandbox user with their number of live posts."""
    world = current_world()

    def build() -> tuple[list[tuple[Any, int]], list[Any]]:
        counts = world.timeline.live_counts()
        return [(user, counts.get(user.id, 0)) for user in world.people.all()], world.consent.clients()
    rows, clients = world.answer(build)
    return render_template("index.html", rows=rows, clients=clients)


def _poll_with_votes(world: World, post: Post) -> list[str] | None:
    """A post's poll options with their votes now ("tea (12)"), as the page shows them."""
    if not post.poll:
        return None
    tally = poll_tally(world.config.seed, post.id, post.poll, world.now() - post.created_at)
    return [f"{label} ({count:,} votes)" for label, count in tally]


@bp.get("/<username>")
def timeline(username: str) -> ResponseReturnValue:
    """One user's live posts, newest first."""
    world = current_world()
    user = world.find_user(username)
    if user is None or user.id == username:
        abort(404)
    posts = world.answer(lambda: [{"id": p.id, "text": p.raw_text, "created_at": iso(p.created_at),
                                   "reply_to": p.reply_to, "media": _media(world, p),
                                   "poll": _poll_with_votes(world, p)}
                                  for p in world.timeline.live_posts(user.id)])
    return render_template("timeline.html", user=user, posts=posts)


def _media(world: World, post: Post) -> list[dict[str, Any]]:
    """A post's media for the page: type, alt text, and the image URL where the bytes are kept."""
    shown = []
    for media_id in post.media_ids:
        media = world.uploads.get(media_id)
        if media is None:
            continue
        src = url_for("control.media_file", media_key=media.media_key) if media.data is not None else None
        shown.append({"key": media.media_key, "type": media.x_type, "alt": media.alt_text, "src": src})
    return shown
