"""A post's final outcomes, each one durable with its event: the one place a post becomes
`posted` or `failed`, whether the answer came from X directly or from settling.

A post being sent carries its claim (`Post.claim_token`); its outcome is written only
under that claim (`ClaimLost` otherwise: another worker settled it, and its outcome
stands). A post that is not being sent (its media refused before its turn) has no
claim, and its outcome is written as it is.
"""
from __future__ import annotations

import logging
from datetime import datetime

from bot.models import FAILED, POSTED, Post, finished_claim
from bot.store import Repository

log = logging.getLogger("tweetbot.posting")


def mark_posted(store: Repository, post: Post, at: datetime,
                tweet_ids: tuple[str | None, ...] | None = None) -> Post:
    """The post is out: every part has its tweet id."""
    with store.transaction():
        done = store.update_post(post.id, under_claim=post.claim_token, **finished_claim(
            status=POSTED, posted_at=at, last_error=None, tweet_ids=tweet_ids or post.tweet_ids,
            attempts=post.attempts))
        store.record_event("posted", post.account_id, post.id, detail=",".join(map(str, done.tweet_ids)), at=at)
    log.info("post %s is out: %s", post.id, ", ".join(map(str, done.tweet_ids)))
    return done


def mark_failed(store: Repository, post: Post, reason: str, at: datetime) -> Post:
    """The post failed for good; the reason is for a person (and the log says the attempts)."""
    with store.transaction():
        failed = store.update_post(post.id, under_claim=post.claim_token, **finished_claim(
            status=FAILED, last_error=reason, tweet_ids=post.tweet_ids, attempts=post.attempts))
        store.record_event("failed", post.account_id, post.id, detail=reason, at=at)
    log.warning("post %s failed after %d attempt(s): %s", post.id, post.attempts, reason)
    return failed
