"""Expiry: a post with the `expire_after` option is deleted from X that long after it went out (issue 23).

When such a post is posted, its expiry is noted in the store in the same transaction (meta `expiries`:
{post id: {"account_id", "tweet_ids", "at"}}). The worker's expiry job (one worker at a time, under a
lease) deletes what is due: every part of a thread, the last first (`DELETE /2/tweets/:id`, 50 per
15 minutes per user at X). Before deleting a part it looks the part up: a part a person deleted
meanwhile is not deleted again, and a post a person edited meanwhile (X keeps its edit history) is
left at X, since what is there now is theirs. The lookup is a post read, priced as X bills it
(`bot.read_spend`, kind "expiry").

Each expiry ends in an `expired` event saying what was done, and leaves the noted ones; X answering
5xx or not at all, or its rate limit, leaves it for the next round; any other refusal ends it, said
in the event.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot import read_spend
from bot.models import Post, from_iso, to_iso
from bot.store import Repository
from bot.tokens import TokenKeeper
from bot.xclient import XApi, XClient, XError, XRateLimited, XUnavailable

log = logging.getLogger("tweetbot.expiry")

EXPIRIES_KEY = "expiries"
EXPIRED_EVENT = "expired"


def note_expiry(store: Repository, post: Post, posted_at: datetime) -> None:
    """Note when a posted post with `expire_after` is to be deleted (in the caller's transaction)."""
    seconds = post.options.get("expire_after")
    if not seconds:
        return
    with store.transaction():
        noted = dict(store.get_meta(EXPIRIES_KEY) or {})
        noted[str(post.id)] = {"account_id": post.account_id, "tweet_ids": [t for t in post.tweet_ids if t],
                               "at": to_iso(posted_at + timedelta(seconds=int(seconds)))}
        store.set_meta(EXPIRIES_KEY, noted)


def expires_at(store: Repository) -> dict[int, datetime]:
    """When each post whose expiry is still to come will be deleted (for the dashboard)."""
    return {int(post_id): from_iso(entry["at"]) or datetime.min
            for post_id, entry in (store.get_meta(EXPIRIES_KEY) or {}).items()}


class Expirer:
    """Deletes what is due (the caller holds the `expiry` lease)."""

    def __init__(self, store: Repository, x: XClient, tokens: TokenKeeper, clock: Callable[[], datetime]) -> None:
        self.store, self.x, self.tokens, self.clock = store, x, tokens, clock

    def expire_due(self) -> int:
        """Every expiry due now, earliest first, until X's rate limit or an outage stops the round; how many
        were ended."""
        now = self.clock()
        due = sorted(((entry["at"], int(post_id), entry) for post_id, entry in
                      (self.store.get_meta(EXPIRIES_KEY) or {}).items() if entry["at"] <= to_iso(now)))
        ended = 0
        for _, post_id, entry in due:
            try:
                outcome = self._expire(entry)
            except (XRateLimited, XUnavailable) as exc:
                log.warning("expiring post %s waits for the next round: %s", post_id, exc)
                break
            except XError as exc:
                outcome = f"X refused to delete it ({exc.status}): {exc}"
            self._end(post_id, entry, outcome)
            ended += 1
        return ended

    def _expire(self, entry: dict[str, Any]) -> str:
        token = self.tokens.fresh_access_token(entry["account_id"])
        if token is None:
            raise XUnavailable("the account has no usable token now")
        api = self.x.api(token)
        words = []
        for tweet_id in reversed(entry["tweet_ids"]):
            words.append(self._expire_part(api, entry["account_id"], tweet_id))
        return "; ".join(reversed(words))

    def _expire_part(self, api: XApi, account_id: str, tweet_id: str) -> str:
        history = api.edit_history(tweet_id)
        if history is None:
            return f"{tweet_id} was deleted at X already"
        read_spend.record_read(self.store, self.clock(), read_spend.EXPIRY, [tweet_id], owned=False)
        if len(history) > 1:
            return f"{tweet_id} was edited at X, so it is left there"
        api.delete_post(tweet_id)
        return f"{tweet_id} deleted"

    def _end(self, post_id: int, entry: dict[str, Any], outcome: str) -> None:
        with self.store.transaction():
            noted = dict(self.store.get_meta(EXPIRIES_KEY) or {})
            noted.pop(str(post_id), None)
            self.store.set_meta(EXPIRIES_KEY, noted)
            self.store.record_event(EXPIRED_EVENT, entry["account_id"], post_id, detail=outcome, at=self.clock())
        log.info("post %s expired: %s", post_id, outcome)
