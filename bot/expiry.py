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
from bot.models import Post, to_iso
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
    return {int(post_id): datetime.fromisoformat(entry["at"])
            for post_id, entry in (store.get_meta(EXPIRIES_KEY) or {}).items()}


class Expirer:
    """Deletes what is due (the caller holds the `expiry` lease)."""

    def __init__(self, store: Repository, x: XClient, tokens: TokenKeeper, clock: Callable[[], datetime]) -> None:
        self.store, self.x, self.tokens, self.clock = store, x, tokens, clock

    def expire_due(self) -> int:
        """Every expiry due now, earliest first; how many were ended. An account that cannot delete now (no
        usable token, X's rate limit, which is per user, or an outage) waits for the next round, and the
        other accounts' expiries go on."""
        now = self.clock()
        due = sorted(((entry["at"], int(post_id), entry) for post_id, entry in
                      (self.store.get_meta(EXPIRIES_KEY) or {}).items() if entry["at"] <= to_iso(now)))
        waiting: set[str] = set()
        ended = 0
        for _, post_id, entry in due:
            if entry["account_id"] in waiting:
                continue
            try:
                outcome = self._expire(post_id, entry)
            except (XRateLimited, XUnavailable) as exc:
                log.warning("expiring post %s waits for the next round: %s", post_id, exc)
                waiting.add(entry["account_id"])
                continue
            except XError as exc:
                outcome = f"X refused to delete it ({exc.status}): {exc}"
            self._end(post_id, entry, outcome)
            ended += 1
        return ended

    def _expire(self, post_id: int, entry: dict[str, Any]) -> str:
        """Delete the post's parts, the last first; what was done to each, in the thread's order. Parts done
        before X stopped the round are kept with the entry, so the next round neither looks them up again
        nor says a person deleted them."""
        token = self.tokens.fresh_access_token(entry["account_id"])
        if token is None:
            raise XUnavailable("the account has no usable token now")
        api = self.x.api(token)
        left, done = list(entry["tweet_ids"]), list(entry.get("done", []))
        try:
            while left:
                done.insert(0, self._expire_part(api, left[-1]))
                left.pop()
        finally:
            if left and len(done) > len(entry.get("done", [])):
                self._keep_progress(post_id, left, done)
        return "; ".join(done)

    def _expire_part(self, api: XApi, tweet_id: str) -> str:
        history = api.edit_history(tweet_id)
        if history is None:
            return f"{tweet_id} was deleted at X already"
        read_spend.record_read(self.store, self.clock(), read_spend.EXPIRY, [tweet_id], owned=False)
        if len(history) > 1:
            return f"{tweet_id} was edited at X, so it is left there"
        api.delete_post(tweet_id)
        return f"{tweet_id} deleted"

    def _keep_progress(self, post_id: int, left: list[str], done: list[str]) -> None:
        with self.store.transaction():
            noted = dict(self.store.get_meta(EXPIRIES_KEY) or {})
            if str(post_id) in noted:
                noted[str(post_id)] = {**noted[str(post_id)], "tweet_ids": left, "done": done}
                self.store.set_meta(EXPIRIES_KEY, noted)

    def _end(self, post_id: int, entry: dict[str, Any], outcome: str) -> None:
        with self.store.transaction():
            noted = dict(self.store.get_meta(EXPIRIES_KEY) or {})
            noted.pop(str(post_id), None)
            self.store.set_meta(EXPIRIES_KEY, noted)
            self.store.record_event(EXPIRED_EVENT, entry["account_id"], post_id, detail=outcome, at=self.clock())
        log.info("post %s expired: %s", post_id, outcome)
