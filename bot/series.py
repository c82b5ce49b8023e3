"""Posts that make more posts (issue 23): repeats and plugs, both options of a post (`bot.post_options`).

**Repeat** (`repeat`: {"every_days": N, "texts": [...]}): when a repeating post is posted, its next
repeat is queued in the same transaction, N days after the post's due time (later multiples if the
worker was away), as a new post with the same options; canceling the queued repeat ends the series.
X refuses a text it has seen from the account lately ("duplicate content"), so a series must vary:
its texts are the post's own and its variants, taken in turn, and a text holding `{date}` gets each
post's date (in TIMEZONE); a series of one text without `{date}` is refused when it is set up.

**Plug** (`plug`: {"text", "likes", "after_hours"}): once the post has `likes` likes (as the analytics
plan last read them: inside its budget, never a read of its own) or `after_hours` hours have passed
since it went out, whichever comes first, the bot replies to it once with the plug's text. The
pending plugs are kept in the store (meta `plugs`) from the moment the post is posted; the worker's
plug job (one worker at a time) queues each reply and forgets the plug in one transaction.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.models import MediaRef, Post, from_iso, to_iso
from bot.store import Repository

log = logging.getLogger("tweetbot.series")

DATE = "{date}"
PLUGS_KEY = "plugs"
PLUG_EVENT = "plug"
SAMPLE_DATE = "2026-12-31"  # as long as any date a repeat gets: a template is checked with it


def repeat_texts(options: dict[str, Any], first: str) -> list[str]:
    """The texts a series takes in turn: the post's own, then its variants."""
    return [first, *options.get("repeat", {}).get("texts", [])]


def dated(text: str, day: datetime, zone: tzinfo) -> str:
    """A repeat's text with `{date}` filled in (the post's day in TIMEZONE)."""
    return text.replace(DATE, day.astimezone(zone).date().isoformat())


def due_then(post: Post, due_at: datetime, zone: tzinfo) -> Post:
    """The post due at `due_at`, a dated repeat's text dated by that day (a free slot may be days ahead)."""
    template = post.options.get("repeat", {}).get("template")
    return replace(post, due_at=due_at, parts=(dated(template, due_at, zone),) if template else post.parts)


def next_repeat(post: Post, posted_at: datetime, zone: tzinfo) -> Post | None:
    """The next post of a repeating post's series, not yet queued; None when the post does not repeat."""
    repeat = post.options.get("repeat")
    if not repeat:
        return None
    every = timedelta(days=int(repeat["every_days"]))
    due = post.due_at + every
    while due <= posted_at:
        due += every
    turn = int(repeat.get("turn", 0)) + 1
    template = repeat.get("template") or post.parts[0]
    texts = repeat_texts(post.options, template)
    text = dated(texts[turn % len(texts)], due, zone)
    options = {**post.options, "repeat": {**repeat, "turn": turn, "template": template}}
    return Post(id=0, account_id=post.account_id, parts=(text,), due_at=due, source="repeat", media=post.media,
                options=options)


def note_plug(store: Repository, post: Post, posted_at: datetime) -> None:
    """Keep a posted post's plug until it fires (in the caller's transaction)."""
    plug = post.options.get("plug")
    if not plug or not any(post.tweet_ids):
        return
    with store.transaction():
        pending = dict(store.get_meta(PLUGS_KEY) or {})
        pending[str(post.id)] = {"account_id": post.account_id, "tweet_id": post.tweet_ids[0],
                                 "posted_at": to_iso(posted_at), **plug}
        store.set_meta(PLUGS_KEY, pending)


def plug_digests(store: Repository) -> set[str]:
    """The files the plugs still waiting will send (media retention keeps them)."""
    return {doc["digest"] for plug in (store.get_meta(PLUGS_KEY) or {}).values() for doc in plug.get("media") or ()}


def plug_due(plug: dict[str, Any], likes: int | None, now: datetime) -> str | None:
    """Why a plug fires now (its likes reached, as last read, or its hours passed), or None while it waits."""
    if plug.get("likes") and likes is not None and likes >= int(plug["likes"]):
        return f"{likes} likes"
    hours, posted = plug.get("after_hours"), from_iso(plug["posted_at"])
    if hours is None or posted is None or now < posted + timedelta(hours=float(hours)):
        return None
    return f"{hours} h passed"


def fire_due_plugs(store: Repository, clock: Callable[[], datetime],
                   queue_reply: Callable[[Post], list[Post]]) -> int:
    """Queue the reply of every plug due now (`queue_reply` queues it), each once; how many fired."""
    now = clock()
    pending = store.get_meta(PLUGS_KEY) or {}
    readings = store.readings(int(post_id) for post_id in pending)
    fired = 0
    for post_id, plug in pending.items():
        reading = readings.get(int(post_id))
        likes = reading.metrics.get("like_count") if reading else None
        why = plug_due(plug, likes, now)
        if why is None:
            continue
        media = tuple(MediaRef.from_doc(doc) for doc in plug.get("media") or ())
        reply = Post(id=0, account_id=plug["account_id"], parts=(plug["text"],), due_at=now, source="plug",
                     options={"reply_to": plug["tweet_id"]}, media=(media,) if media else ())
        with store.transaction():
            still = dict(store.get_meta(PLUGS_KEY) or {})
            if still.pop(post_id, None) is None:
                continue  # fired meanwhile
            store.set_meta(PLUGS_KEY, still)
            queued = queue_reply(reply)
            store.record_event(PLUG_EVENT, plug["account_id"], int(post_id),
                               detail=f"{why}: reply queued as post {queued[0].id}", at=now)
        fired += 1
        log.info("plug of post %s fired: reply queued as post %s", post_id, queued[0].id)
    return fired

