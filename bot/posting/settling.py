"""Settling uncertain posts: did X store it or not? Read the account's recent posts and see.

X has no idempotency key, so a post whose request ended without a clear answer
(timeout, 5xx, dropped connection, a worker killed mid-call) is never simply sent
again: the account's recent posts are read first. A part found there is adopted;
a post found whole is posted; one not found is scheduled again with backoff, and
given up after MAX_ATTEMPTS requests.

A request may still be on its way to X after the process that sent it died, so a
post left `sending` by another process is settled only once its last request can
no longer land (`settle_after`): until then it, and its account's later posts, wait.
Its settler first takes its claim over (`Repository.take_over`), so one worker settles
it, and writes the outcome under that claim: a worker that still held the old claim
can no longer record over it.
"""
from __future__ import annotations

import html
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from bot import read_spend
from bot.models import DUPLICATE, GAVE_UP, UNVERIFIABLE, Post
from bot.posting.outcomes import mark_failed, mark_posted
from bot.settings import Settings
from bot.store import ClaimLost, Repository
from bot.tokens import TokenKeeper, backoff
from bot.xclient import XApi, XBadRequest, XError, XForbidden, XNotFound

log = logging.getLogger("tweetbot.settling")

SETTLE_LOOKBACK = timedelta(minutes=5)  # X's clock and ours may disagree a little
SETTLE_HISTORY = 200  # finished posts whose tweet ids an uncertain one must not adopt
LANDING_MARGIN = timedelta(seconds=5)
_URL = re.compile(r"https?://\S+", re.IGNORECASE)


def settle_after(settings: Settings) -> timedelta:
    """How long after a request left it may still land at X.

    requests applies HTTP_TIMEOUT to connecting and again to reading the answer, so
    a request that left can be in play for twice HTTP_TIMEOUT before its sender gives
    up; the margin covers X finishing work after the connection ended and the clocks
    of two hosts disagreeing by a few seconds.
    """
    return 2 * timedelta(seconds=settings.http_timeout) + LANDING_MARGIN


def comparable(text: str) -> str:
    """Text as X may echo it back: NFC, HTML entities undone, URLs (t.co-wrapped) blanked, spaces folded."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    return " ".join(_URL.sub("<url>", text).split())


def echoes(returned: str, sent: str, with_media: bool = False) -> bool:
    """Whether X's text of a post is the text we sent; X ends a post with media with one
    more link (the media's `https://t.co/…`)."""
    theirs, ours = comparable(returned), comparable(sent)
    return theirs == ours or (with_media and theirs == f"{ours} <url>".strip())


class AccountUnusable(Exception):
    """The account cannot call X now: it needs reconnecting (`retry_at` None), or its token
    could not be refreshed yet (X's token endpoint failing: try again at `retry_at`)."""

    def __init__(self, message: str, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class CannotSettleYet(Exception):
    """The account's posts could not be read now (X failing, token unusable): the post stays `sending`."""


ApiFor = Callable[[str, str], XApi]


class Settler:
    """Finds out at X what happened to uncertain posts and records the outcome, durably."""

    def __init__(self, settings: Settings, store: Repository, tokens: TokenKeeper, api_for: ApiFor,
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.store = store
        self.tokens = tokens
        self.api_for = api_for
        self.clock = clock

    def settle(self, post: Post, why: str | None = None, taken: Iterable[str] = (),
               duplicate: bool = False, waited: bool = False, still_landing: bool = False) -> Post:
        """Adopt the parts X has; then post, resume, retry later or give up. The post as stored.

        `post` may hold part ids and attempts the store does not have yet: the outcome
        writes them, under the post's claim (if the claim is gone, the post as it is now).
        `taken` holds tweet ids other posts own that the store does not know yet.
        `duplicate`: X refused a resend as duplicate content, which is evidence that an
        earlier attempt went out; if the timeline does not show it, the post fails with
        X's words. `waited`: the post was left by a run that ended and has waited until its
        requests could no longer land, so one not found goes again at once, in its due order.
        `still_landing`: its last request got no answer and may still land at X, so one not found
        yet stays `sending` (uncertain) until its claim is dead, and is settled again then.
        Raises `CannotSettleYet` when the timeline cannot be read now.
        """
        try:
            settled: Post | str = self._adopt_found_parts(post, set(taken))
        except (XForbidden, XNotFound, XBadRequest) as exc:
            settled = self._unverifiable_reason(exc)
        except (XError, AccountUnusable) as exc:
            log.warning("post %s: cannot settle yet (%s); it stays sending", post.id, exc)
            raise CannotSettleYet(str(exc)) from exc
        try:
            with self.store.transaction():
                if isinstance(settled, str):
                    return self._fail(post, settled, UNVERIFIABLE)
                return self._outcome(post, settled, why, duplicate, waited, still_landing)
        except ClaimLost:  # another worker settled it meanwhile: its outcome stands
            log.info("post %s was settled by another worker meanwhile; leaving it as it is", post.id)
            return self.store.get_post(post.id) or post

    def _outcome(self, post: Post, settled: Post, why: str | None, duplicate: bool, waited: bool,
                 still_landing: bool) -> Post:
        """What the timeline says: posted, failed (a duplicate X refused), resumed, still uncertain, or
        tried again later."""
        if not settled.missing_parts():
            return mark_posted(self.store, settled, self.clock(), self.settings.post_url, zone=self.settings.zone)
        if duplicate:
            return self._fail(settled, f"X refused it as duplicate content ({why}) and it is not among "
                                       "the account's recent posts", DUPLICATE)
        if settled.ids_at_x() != post.ids_at_x():
            return self._resume(settled)
        if still_landing:
            return self._still_uncertain(settled, why)
        return self._retry_later(settled, why, at_once=waited)

    # -- what X has ----------------------------------------------------------------------

    def _adopt_found_parts(self, post: Post, taken: set[str]) -> Post:
        """The post with the ids of the parts found among the account's recent posts (not yet stored)."""
        token = self.tokens.fresh_access_token(post.account_id)
        if token is None:
            raise AccountUnusable("the account cannot read its posts until it is reconnected")
        recent = self.api_for(post.account_id, token).recent_posts(post.account_id, since=self._since(post))
        self._price_read(post.account_id, [found["id"] for found in recent])
        taken |= self._ids_of_other_posts(post)
        found = post
        for index in post.missing_parts():
            known = found.ids_at_x()
            match = next((r["id"] for r in reversed(recent) if r["id"] not in known and r["id"] not in taken
                          and echoes(r["text"], post.parts[index], bool(post.media_of(index)))), None)
            if match is None:
                break
            found = found.with_part_at_x(index, match)
            log.info("post %s part %d was stored by X after all: %s", post.id, index + 1, match)
        return found

    def _price_read(self, account_id: str, post_ids: list[str]) -> None:
        """Keep what the timeline read cost (bot.read_spend), priced as X bills it."""
        account = self.store.get_account(account_id) if self.settings.x_app_owner else None
        owned = account is not None and self.settings.owns_app(account_id, account.username)
        read_spend.record_read(self.store, self.clock(), read_spend.SETTLE, post_ids, owned)

    @staticmethod
    def _since(post: Post) -> datetime:
        """Where in the timeline to look: from the last request, or from the due time when
        earlier requests (made at least a retry's wait before) may be the one X kept."""
        sent = post.sending_since or post.due_at
        start = post.due_at if post.attempts > 1 else sent
        return min(start, sent) - SETTLE_LOOKBACK

    def _ids_of_other_posts(self, post: Post) -> set[str]:
        """Tweet ids other posts of the account already own: two posts alike but for their links
        compare equal, and one must never adopt the other's tweet."""
        others = self.store.history(limit=SETTLE_HISTORY, account_id=post.account_id)
        others += self.store.queued_posts(post.account_id)
        return {tid for other in others if other.id != post.id for tid in other.ids_at_x()}

    # -- outcomes (each one durable) -------------------------------------------------------

    def _resume(self, post: Post) -> Post:
        """The uncertain part was stored after all: the rest of the thread goes out at once."""
        with self.store.transaction():
            again = self.store.update_post(post.id, under_claim=post.claim_token,
                                           **post.handed_back(next_attempt_at=None))
            self.store.record_event("resumed", post.account_id, post.id, at=self.clock())
        return again

    def _still_uncertain(self, post: Post, why: str | None) -> Post:
        """Not at X yet, but its request may still land: it stays `sending` under its claim (its account's
        later posts wait behind it) and is settled again once the claim is dead."""
        log.info("post %s is not at X yet, and its request may still land: it is settled again once it "
                 "cannot", post.id)
        return self.store.update_post(post.id, under_claim=post.claim_token, **post.still_sending(why))

    def _retry_later(self, post: Post, why: str | None, at_once: bool = False) -> Post:
        if post.attempts >= self.settings.max_attempts:
            return self._fail(post, f"gave up after {post.attempts} attempts without a clear answer from X "
                                    f"(last: {why or 'the worker stopped before X answered'})", GAVE_UP)
        retry_at = self.clock() if at_once else \
            self.clock() + backoff(post.attempts, first=timedelta(seconds=self.settings.retry_backoff))
        with self.store.transaction():
            again = self.store.update_post(post.id, under_claim=post.claim_token,
                                           **post.handed_back(next_attempt_at=retry_at, last_error=why))
            self.store.record_event("retry", post.account_id, post.id,
                                    detail=f"not found at X; retrying at {retry_at.isoformat()}", at=self.clock())
        log.info("post %s was not stored by X; retrying at %s", post.id, retry_at.isoformat())
        return again

    @staticmethod
    def _unverifiable_reason(exc: XError) -> str:
        """X refuses for good to show the account's posts: the outcome can never be known, so
        the post fails (sending it again might make a duplicate)."""
        return (f"X may or may not have stored it, and refuses to show the account's posts "
                f"({exc.status}: {exc}); check the account on X before retrying")

    def _fail(self, post: Post, reason: str, kind: str) -> Post:
        return mark_failed(self.store, post, reason, self.clock(), kind)

