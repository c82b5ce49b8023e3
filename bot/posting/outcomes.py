"""A post's final outcomes, each one durable with its event: the one place a post becomes
`posted` or `failed`, whether the answer came from X directly or from settling.

A post being sent carries its claim (`Post.claim_token`); its outcome is written only
under that claim (`ClaimLost` otherwise: another worker settled it, and its outcome
stands). A post that is not being sent (its media refused before its turn) has no
claim, and its outcome is written as it is.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone, tzinfo

from bot import webhooks
from bot.expiry import note_expiry
from bot.models import Post
from bot.queue import add_posts
from bot.series import next_repeat, note_plug
from bot.store import Event, Repository

log = logging.getLogger("tweetbot.posting")


def mark_posted(store: Repository, post: Post, at: datetime, post_url: Callable[[str, str | None], str | None],
                tweet_ids: tuple[str | None, ...] | None = None, zone: tzinfo = timezone.utc) -> Post:
    """The post is out: every part has its tweet id (`post_url`: where a person sees one, `Settings.post_url`,
    for the webhook). What it sets going is noted with it: its expiry, its plug, its series' next post
    (`zone`: the day a dated repeat is dated by)."""
    if tweet_ids is not None:
        post = replace(post, tweet_ids=tweet_ids)
    with store.transaction():
        done = store.update_post(post.id, under_claim=post.claim_token, event=Event(
            at, "posted", post.account_id, post.id, ",".join(map(str, post.tweet_ids))), **post.as_posted(at))
        webhooks.post_posted(store, done, at, post_url)
        note_expiry(store, done, at)
        note_plug(store, done, at)
        following = next_repeat(done, at, zone)
        if following is not None:
            add_posts(store, [following])
    log.info("post %s is out: %s", post.id, ", ".join(map(str, done.tweet_ids)))
    return done


def mark_failed(store: Repository, post: Post, reason: str, at: datetime, kind: str) -> Post:
    """The post failed for good: `kind` says why as a fact (`bot.models.DUPLICATE`, `REFUSED`…), `reason`
    says it for a person (and the log says the attempts)."""
    with store.transaction():
        failed = store.update_post(post.id, under_claim=post.claim_token, event=Event(
            at, "failed", post.account_id, post.id, reason), **post.as_failed(kind, reason))
        webhooks.post_event(store, webhooks.POST_FAILED, failed, at, reason=reason, failure_kind=kind)
    log.warning("post %s failed after %d attempt(s): %s", post.id, post.attempts, reason)
    return failed
