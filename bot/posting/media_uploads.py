"""Uploading a post's media before it is due: uploading is not posting.

A queued post's files go to X ahead of its time (`MEDIA_LEAD`), one file at a
time; the media ids X gives are stored on the posts at the end of the account's
round, so a crash costs at most uploading that round's files again. The post
stays `scheduled` throughout: an upload that fails or is cut short costs no
attempt and is simply done again (after a backoff),
and a part is only ever sent with all its media ids in hand (`ready_media_ids`),
never without them. An id is reused while X keeps it (`expires_after_secs`) and
uploaded again when it would expire before the post goes out.

X refusing a file for good (it could not process it, or the account lacks the
scope) fails the post with X's reason, since retrying would be refused again.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.media_checks import RECONNECT_FOR_MEDIA, can_post_media
from bot.models import ACTIVE, MEDIA_REFUSED, SCHEDULED, Account, Post, from_iso, to_iso, utcnow
from bot.posting.outcomes import mark_failed
from bot.settings import MEDIA_SCOPE
from bot.store import BROKEN, RecordMissing, Repository
from bot.tokens import TokenKeeper, backoff
from bot.when import format_utc
from bot.xclient import XApi, XBadRequest, XError, XForbidden, XMediaFailed, XRateLimited

log = logging.getLogger("tweetbot.uploads")

MEDIA_LEAD = timedelta(minutes=10)  # how long before its time a post's media go up
EXPIRY_MARGIN = timedelta(minutes=15)  # an id X drops sooner than this after now is uploaded again
UPLOAD_RETRY_FIRST = timedelta(seconds=15)
UPLOAD_RETRY_MOST = timedelta(minutes=15)


def upload_key(index: int, position: int) -> str:
    """Where a file's media id is kept in `Post.uploads`: part and place in the part."""
    return f"{index}.{position}"


def ready_media_ids(post: Post, index: int, now: datetime) -> list[str] | None:
    """X's ids for part `index`'s media, each good for a while yet; None if any is missing
    (the part must not go out without it). A part without media: []."""
    ids = []
    for position in range(len(post.media_of(index))):
        upload = post.uploads.get(upload_key(index, position))
        expires_at = from_iso(upload.get("expires_at")) if upload else None
        if upload is None or expires_at is None or expires_at - now < EXPIRY_MARGIN:
            return None
        ids.append(upload["id"])
    return ids


def needs_upload(post: Post, now: datetime) -> bool:
    """Whether a part X does not have yet lacks a usable media id."""
    return any(ready_media_ids(post, index, now) is None
               for index in range(len(post.parts))
               if not post.at_x(index))


class Uploader:
    """Uploads the media of an account's posts that are due soon, in due order."""

    def __init__(self, store: Repository, tokens: TokenKeeper, api_for: Callable[[str, str], XApi],
                 clock: Callable[[], datetime] = utcnow, should_stop: Callable[[], bool] = lambda: False) -> None:
        self.store = store
        self.tokens = tokens
        self.api_for = api_for
        self.clock = clock
        self.should_stop = should_stop
        self._failures: dict[int, tuple[int, datetime]] = {}  # post id: (failures in a row, next try)

    def posts_to_prepare(self, now: datetime, account_id: str | None = None) -> list[Post]:
        """Posts due within `MEDIA_LEAD` whose media are not all at X, and not waiting out a failure."""
        return [post for post in self.store.queued_posts(account_id, due_by=now + MEDIA_LEAD)
                if post.media and post.status == SCHEDULED and needs_upload(post, now)
                and self._failures.get(post.id, (0, now))[1] <= now]

    def prepare(self, account_id: str, account: Account | None) -> None:
        """Upload what the account's soon-due posts lack; stops between files when the worker stops.

        The ids X gives are written together when the round ends (one store write, not
        one per file), and whatever happens: a crash before that write costs only
        uploading those files again.
        """
        done: dict[int, dict[str, dict[str, str]]] = {}
        try:
            for post in self.posts_to_prepare(self.clock(), account_id):
                if self.should_stop() or account is None or account.status != ACTIVE:
                    return
                if not self._upload_post(post, account, done):
                    return  # the account must wait (rate limit, token): its later posts too
        finally:
            self._store_uploads(done)

    def _store_uploads(self, done: dict[int, dict[str, dict[str, str]]]) -> None:
        """Keep the ids on the posts still waiting to go out (one canceled meanwhile needs none)."""
        if done:
            with self.store.transaction():
                for post_id, uploads in done.items():
                    current = self.store.get_post(post_id)
                    if current is not None and not current.finished:
                        self.store.update_post(post_id, uploads=uploads)

    def _upload_post(self, post: Post, account: Account, done: dict[int, dict[str, dict[str, str]]]) -> bool:
        """Upload the post's missing files (their ids into `done`); whether the account may go on."""
        token = self.tokens.fresh_access_token(post.account_id, account)
        if token is None:
            return False
        try:
            self._upload_files(post, self.api_for(post.account_id, token), done)
        except BROKEN:
            raise
        except (XMediaFailed, XBadRequest, XForbidden, RecordMissing) as exc:
            self._fail(post, exc, account)
        except XError as exc:
            self._retry_later(post, exc)
            return not isinstance(exc, XRateLimited)
        self._failures.pop(post.id, None)
        return True

    def _upload_files(self, post: Post, api: XApi, done: dict[int, dict[str, dict[str, str]]]) -> None:
        """Each part's files X lacks, in order; each id into `done` as soon as X gives it."""
        uploads = done[post.id] = dict(post.uploads)
        for index, files in enumerate(post.media):
            if post.at_x(index):
                continue
            if ready_media_ids(post, index, self.clock()) is not None:
                continue
            for position, ref in enumerate(files):
                uploaded = api.upload(ref, self.store.get_media(ref.digest), self.should_stop)
                uploads[upload_key(index, position)] = {"id": uploaded.media_id,
                                                        "expires_at": to_iso(uploaded.expires_at) or ""}
                log.info("post %s part %d: %s is at X as media %s", post.id, index + 1, ref.name or ref.digest[:12],
                         uploaded.media_id)

    def _retry_later(self, post: Post, exc: XError) -> None:
        """No clear answer (or a rate limit): nothing is lost, the files go up again after a wait."""
        now = self.clock()
        failures = self._failures.get(post.id, (0, now))[0] + 1
        retry_at = now + backoff(failures, first=UPLOAD_RETRY_FIRST, most=UPLOAD_RETRY_MOST)
        if isinstance(exc, XRateLimited):
            retry_at = max(retry_at, exc.reset_at)
        self._failures[post.id] = (failures, retry_at)
        reason = f"uploading its media failed ({exc}); trying again at {format_utc(retry_at)}"
        with self.store.transaction():
            current = self.store.get_post(post.id)
            if current is not None and current.status == SCHEDULED:
                self.store.update_post(post.id, next_attempt_at=retry_at, last_error=reason)
        log.warning("post %s: %s", post.id, reason)

    def _fail(self, post: Post, exc: Exception, account: Account) -> None:
        """X refused a file for good, or its bytes are gone: the post cannot go out as written."""
        reason = (f"its media are no longer in the store ({exc})" if isinstance(exc, RecordMissing)
                  else f"X refused its media: {exc}")
        if isinstance(exc, XForbidden) and not can_post_media(account):
            reason += f" ({account.handle} was connected without the {MEDIA_SCOPE} scope: {RECONNECT_FOR_MEDIA})"
        with self.store.transaction():
            current = self.store.get_post(post.id)
            if current is not None and current.status == SCHEDULED:
                mark_failed(self.store, current, reason, self.clock(), MEDIA_REFUSED)
        self._failures.pop(post.id, None)
