"""The queue's operations: every way in (the CLI, the web form, CSV imports, slots, generators)
queues, edits, cancels, sends now and retries posts through these functions, so a bad post is
refused when it is queued, with the reason, and not at 3 a.m. by X.

Front ends only parse what they are given and render what comes back: the checks, the state
changes and the refusals (`bot.refusals`: one exception per decision a caller makes) are here,
so every front end changes the store the same way. An account's
slots are `bot.schedules`; connecting and disconnecting accounts, `bot.accounts`."""
from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from bot import webhooks
from bot.media_checks import MediaError, PartsMedia, can_post_media, check_media
from bot.models import CANCELED, DISCONNECTED, DUPLICATE, FAILED, SCHEDULED, SENDING, Account, Post, to_iso, utcnow
from bot.post_options import check_options
from bot.refusals import (
    AccountDisconnected,
    InThePast,
    MediaRefused,
    NoSuchAccount,
    NoSuchPost,
    QueueError,
    TextRefused,
    TimeRefused,
    WrongStatus,
)
from bot.schedules import NEXT_SLOT, NextSlot, free_slots, load_slots, no_slots
from bot.series import DATE, dated, due_then
from bot.store import REQUEUED_EVENT, Repository, requeued_detail
from bot.when import format_local
from xtext import length_error

PAST_GRACE = timedelta(seconds=60)  # "now" typed a moment ago is still now

__all__ = ["AccountDisconnected", "DUE_NOW_EVENT", "EDITED_EVENT", "InThePast", "LISTINGS", "MediaRefused",
           "NEXT_SLOT", "NoSuchAccount", "NoSuchPost", "PAST_GRACE", "QueueError", "REQUEUED_EVENT", "TextRefused",
           "TimeRefused", "When", "WrongStatus", "account_named", "add_posts", "cancel", "check_parts", "check_time",
           "control_problem", "draft", "draft_for", "edit_post", "existing_post", "listed", "post_now", "queue_post",
           "refused_as_duplicate", "retry", "save_posts", "slot_time", "text_problem", "waiting_post",
           "why_not_editable"]


#: When a post is to go: a time; `NEXT_SLOT`, the account's next free slot (`NoSlots` when it has none);
#: or None: its next free slot when it has slots, else now (`tweetbot post` without --at).
When = datetime | NextSlot | None


def check_parts(parts: Sequence[str]) -> tuple[str, ...]:
    """The parts of a post or thread, each within X's length rules, or `QueueError`.

    Windows line ends (a browser's form, a CSV from a spreadsheet) become newlines;
    any other control character is refused (PostgreSQL cannot even keep a NUL).
    """
    cleaned = tuple(part.replace("\r\n", "\n").strip() for part in parts)
    if not cleaned:
        raise TextRefused("the post is empty")
    for number, part in enumerate(cleaned, start=1):
        problem = text_problem(part)
        if problem:
            where = f"part {number} of the thread" if len(cleaned) > 1 else "the post"
            raise TextRefused(f"{where} {problem}")
    return cleaned


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 controls but tab and newline


def control_problem(text: str) -> str | None:
    """What is wrong with a control character in `text` ("contains a control character U+0000 at
    position 5 …"), or None when it has none but newlines and tabs."""
    bad = _CONTROL.search(text)
    if bad is None:
        return None
    return (f"contains a control character U+{ord(bad[0]):04X} at position {bad.start()} "
            "(only newlines and tabs may be in a post)")


def text_problem(text: str) -> str | None:
    """What keeps `text` (stripped) from being one post, said after "the post" or "part 2 of the
    thread": "is empty", "contains a control character …", "is too long or invalid: …"; None if it fits."""
    if not text.strip():
        return "is empty"
    control = control_problem(text)
    if control:
        return control
    reason = length_error(text)
    return f"is too long or invalid: {reason}" if reason else None


def draft(store: Repository, account: str, parts: Sequence[str], due_at: datetime,
          now: datetime | None = None, source: str = "cli", media: PartsMedia = (),
          zone: tzinfo | str = timezone.utc, options: Mapping[str, Any] | None = None, tier: str = "payg") -> Post:
    """A checked, unsaved post: the account exists and can post, the text fits, the time is ahead,
    the media are files X takes (their bytes ride on the post until `save_posts`), the options are
    ones X takes (`bot.post_options`; `tier`: X_TIER)."""
    return draft_for(account_named(store, account), parts, due_at, now, source, media, zone, options, tier)


def account_named(store: Repository, account: str) -> Account:
    """The account of a handle ("@name" or "name") or an X user id, or `NoSuchAccount`."""
    found = store.find_account(account)
    if found is None:
        raise NoSuchAccount(f"no account {account}")
    return found


def draft_for(found: Account, parts: Sequence[str], due_at: datetime,
              now: datetime | None = None, source: str = "cli", media: PartsMedia = (),
              zone: tzinfo | str = timezone.utc, options: Mapping[str, Any] | None = None,
              tier: str = "payg") -> Post:
    """`draft` for an account already looked up (an import looks each one up once per file).

    `zone` is the clock a refusal shows times on (the operator's TIMEZONE; UTC unless given)."""
    now = now or utcnow()
    if found.status == DISCONNECTED:
        raise AccountDisconnected(f"{found.handle} is disconnected: reconnect it first")
    check_time(due_at, now, zone)
    for number, (part, files) in enumerate(zip(parts, media, strict=False), start=1):
        if files and not part.strip():
            where = f"part {number} of the thread" if len(parts) > 1 else "the post"
            raise TextRefused(f"{where} has media but no text: a post needs a text too")
    checked = check_parts(parts)
    try:
        refs = check_media(found, media, len(checked))
    except MediaError as exc:
        raise MediaRefused(str(exc)) from None
    for number, attached in enumerate(refs, start=1):
        for ref in attached:
            where = f"part {number}'s {ref.name}" if len(checked) > 1 else ref.name
            if "\x00" in ref.name:
                raise MediaRefused(f"a file name of part {number} contains a NUL character")
            control = control_problem(ref.alt or "")
            if control:
                raise MediaRefused(f"the alt text of {where} {control.replace('a post', 'an alt text')}")
    kept = check_options(options or {}, bool(refs and refs[0]), tier, checked[0], len(checked))
    if kept.get("plug", {}).get("media"):
        try:
            [plug_refs] = check_media(found, [kept["plug"]["media"]], 1)
        except MediaError as exc:
            raise MediaRefused(f"the plug's media: {exc}") from None
        kept["plug"]["media"] = list(plug_refs)
    if "repeat" in kept and DATE in checked[0]:  # a dated series: each post gets its own date
        kept["repeat"]["template"] = checked[0]
        checked = check_parts([dated(checked[0], due_at, zone_of(zone))])
    return Post(id=0, account_id=found.user_id, parts=checked, due_at=due_at, source=source, media=refs,
                options=kept)


def zone_of(zone: tzinfo | str) -> tzinfo:
    """A zone given by name or as it is."""
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def check_time(due_at: datetime, now: datetime, zone: tzinfo | str = timezone.utc) -> None:
    """`TimeRefused` unless `due_at` can be a post's time: aware, and not past (beyond `PAST_GRACE`);
    `InThePast` carries both times, for a front end to say on its own clock (`zone`: this message's)."""
    if due_at.tzinfo is None:
        raise TimeRefused("the time has no time zone")
    if due_at < now - PAST_GRACE:
        raise InThePast(f"{format_local(due_at, zone)} is in the past (it is {format_local(now, zone)} now)",
                        due_at, now)


def save_posts(store: Repository, posts: Sequence[Post], run_key: str | None = None) -> list[Post]:
    """Store checked drafts in one write, their media's bytes first (each distinct file once); with
    `run_key` (a generator run's), none if that key was used before (see `Repository.add_posts`).

    Bytes stored just before a write that then fails are no post's: the retention job
    deletes them after its grace hour.
    """
    return add_posts(store, with_media_kept(store, posts), run_key=run_key)


def add_posts(store: Repository, posts: Sequence[Post], run_key: str | None = None) -> list[Post]:
    """The one place posts join the queue: `Repository.add_posts`, and their `post.queued` webhooks in the
    same transaction."""
    with store.transaction():
        added = store.add_posts(list(posts), run_key=run_key)
        for post in added:
            if not post.finished:
                webhooks.post_event(store, webhooks.POST_QUEUED, post)
        return added


def with_media_kept(store: Repository, posts: Sequence[Post]) -> list[Post]:
    """Put the bytes the drafts' media carry into the store (each distinct file once), outside any
    transaction (a video is up to 512 MB: no lock waits on it); the drafts without the bytes."""
    bare = []
    for post in posts:
        for ref in [*(ref for part in post.media for ref in part), *post.plug_media()]:
            if ref.data is not None:
                store.put_media(ref.data)
        options = post.options
        if post.plug_media():  # kept as documents, as a store keeps any option
            options = {**options, "plug": {**options["plug"], "media": [ref.to_doc() for ref in post.plug_media()]}}
        bare.append(replace(post, media=tuple(tuple(replace(ref, data=None) for ref in part)
                                              for part in post.media), options=options))
    return bare


def queue_post(store: Repository, account: str, parts: Sequence[str], when: When,
               now: datetime | None = None, source: str = "cli", media: PartsMedia = (),
               zone: tzinfo | str = timezone.utc, options: Mapping[str, Any] | None = None,
               tier: str = "payg") -> Post:
    """Check and queue one post (or thread), with its media, at `when`; returns it with its id (`zone`: the
    clock a refusal shows times on). Finding a slot and queuing are one transaction, so two callers at
    once never take the same slot; the media's bytes are stored before it."""
    now = now or utcnow()
    if isinstance(when, datetime):
        return save_posts(store, [draft(store, account, parts, when, now, source, media, zone, options, tier)])[0]
    found = account_named(store, account)
    if when is NEXT_SLOT and load_slots(store, found.user_id) is None:
        raise no_slots(found.handle)  # said before what is wrong with the post itself
    [checked] = with_media_kept(store, [draft_for(found, parts, now, now, source, media, zone, options, tier)])
    with store.transaction():
        return add_posts(store, [due_then(checked, slot_time(store, found, when, now), zone_of(zone))])[0]


def slot_time(store: Repository, account: Account, when: NextSlot | None, now: datetime,
              post_id: int | None = None) -> datetime:
    """The account's next free slot after `now` (`post_id`'s own slot is free to it); with `when` None and
    no slots, now. `NoSlots` when `NEXT_SLOT` is asked of an account without slots."""
    if when is None and load_slots(store, account.user_id) is None:
        return now
    return next(free_slots(store, account.user_id, now, ignoring=post_id))


#: What `listed` lists: posts waiting (scheduled or being sent), finished ones, or only the failed.
LISTINGS = ("queued", "finished", "failed")


def listed(store: Repository, listing: str, account: str | None = None, limit: int | None = None) -> list[Post]:
    """The posts of `listing` (`LISTINGS`), of one account (handle or X user id) or all: the waiting ones
    earliest due first, the finished ones most recently finished first (at most `limit` of those)."""
    account_id = account_named(store, account).user_id if account else None
    if listing == "queued":
        return store.queued_posts(account_id)
    if listing in ("finished", "failed"):
        return store.history(limit if limit is not None else sys.maxsize, account_id,
                             FAILED if listing == "failed" else None)
    raise QueueError(f"a listing is one of {', '.join(LISTINGS)}")


def existing_post(store: Repository, post_id: int) -> Post:
    """The post, or `QueueError` naming the id."""
    post = store.get_post(post_id)
    if post is None:
        raise NoSuchPost(f"no post {post_id}")
    return post


def waiting_post(store: Repository, post_id: int) -> Post:
    """A post that exists and is not being sent right now, or `QueueError`."""
    post = existing_post(store, post_id)
    if post.status == SENDING:
        raise WrongStatus(f"post {post_id} is being sent right now")
    return post


def cancel(store: Repository, post_id: int) -> Post:
    """Cancel a post that has not started going out."""
    with store.transaction():
        post = waiting_post(store, post_id)
        if post.status != SCHEDULED:
            raise WrongStatus(f"post {post_id} is already {post.status}")
        return store.update_post(post_id, status=CANCELED)


# -- acting on one post: send it now, or queue a failed one again ---------------------------

DUE_NOW_EVENT = "due_now"


def refused_as_duplicate(post: Post) -> bool:
    """Whether X refused the post as a duplicate: sending the same text again would be refused again."""
    return post.status == FAILED and post.failure_kind == DUPLICATE


def post_now(store: Repository, post_id: int, now: datetime | None = None) -> Post:
    """Make a scheduled post due at `now` (any retry wait dropped), so the worker sends it on its next round.

    Only the due time changes: the worker stays the only sender, so a post is still
    claimed, sent and settled in one place. A post being sent or already finished
    is refused with the reason.
    """
    now = now or utcnow()
    with store.transaction():
        post = waiting_post(store, post_id)
        if post.status == FAILED:
            raise WrongStatus(f"post {post_id} has failed: retry it instead")
        if post.status != SCHEDULED:
            raise WrongStatus(f"post {post_id} is already {post.status}")
        moved = store.update_post(post_id, due_at=now, next_attempt_at=None)
        store.record_event(DUE_NOW_EVENT, post.account_id, post_id, detail=f"was due {to_iso(post.due_at)}", at=now)
    return moved


def retry(store: Repository, post_id: int, now: datetime | None = None, source: str = "cli") -> Post:
    """Queue a failed post again as a new post due at `now`, with the same parts; the failed one stays as it was.

    The new post goes through the queue's checks (the account must still exist and be
    connected). A thread cut short keeps the ids of the parts X already has, so the
    worker resumes it at the first part X lacks, replying to the last one posted,
    instead of posting the first parts twice. Refused: a post that has not failed,
    one X refused as duplicate content (X would refuse it again), and one already
    queued again (a second click would queue the same text twice).
    """
    now = now or utcnow()
    with store.transaction():
        post = existing_post(store, post_id)
        if post.status != FAILED:
            raise WrongStatus(f"post {post_id} is {post.status}, not failed: only a failed post can be retried")
        if refused_as_duplicate(post):
            raise WrongStatus(f"post {post_id} was refused by X as duplicate content, "
                             "and X refuses the same text again, so it is not retried")
        if post.requeued_as is not None:
            raise WrongStatus(f"post {post_id} was already queued again as post {post.requeued_as}")
        if post.digests() - set(store.media_digests()):
            raise MediaRefused(f"post {post_id}'s media were deleted (MEDIA_RETENTION_DAYS after it failed): "
                             "queue it again with its files")
        fresh = replace(draft(store, post.account_id, post.parts, now, now, source),
                        tweet_ids=post.tweet_ids, media=post.media, options=post.options)
        queued = add_posts(store, [fresh])[0]
        store.mark_requeued(post_id, queued.id)
        store.record_event(REQUEUED_EVENT, post.account_id, post_id, detail=requeued_detail(queued.id), at=now)
    return queued


EDITED_EVENT = "edited"


def why_not_editable(post: Post) -> str | None:
    """Why `post` cannot be edited (being sent, finished, or a thread X has a part of), or None."""
    if post.status == SENDING:
        return f"post {post.id} is being sent right now"
    if post.status != SCHEDULED:
        return f"post {post.id} is already {post.status}"
    if any(post.tweet_ids):
        return f"post {post.id} is partly at X already: it cannot be edited"
    return None


def edit_post(store: Repository, post_id: int, account: str, parts: Sequence[str], when: datetime | NextSlot,
              now: datetime | None = None, zone: tzinfo | str = timezone.utc) -> Post:
    """Change a scheduled post's account, parts and time (`NEXT_SLOT`: the account's next free slot, the
    post's own slot free to it), checked as `draft` checks a new post; its media stay on their parts.

    Empty parts are dropped, but never one that carries media nor one before it (the media would move to
    another part), and the account must be able to post media. Refused: a post being sent, a finished
    one, and a thread X already has a part of. A new account drops the media ids uploaded for the old
    one (X ties them to their uploader).
    """
    now = now or utcnow()
    with store.transaction():
        post = existing_post(store, post_id)
        refusal = why_not_editable(post)
        if refusal:
            raise WrongStatus(refusal)
        found = account_named(store, account)
        due = when if isinstance(when, datetime) else slot_time(store, found, when, now, post_id)
        check_time(due, now, zone)
        checked = draft_for(found, _parts_keeping_media(post, parts), due, now, post.source, zone=zone)
        if post.media_count and not can_post_media(found):
            raise MediaRefused(f"{found.handle} cannot post media: reconnect it first")
        changes: dict = {"account_id": checked.account_id, "parts": checked.parts, "due_at": checked.due_at,
                         "next_attempt_at": None}
        if checked.account_id != post.account_id:
            changes["uploads"] = {}
        edited = store.update_post(post_id, **changes)
        store.record_event(EDITED_EVENT, edited.account_id, post_id, at=now)
    return edited


def _parts_keeping_media(post: Post, parts: Sequence[str]) -> list[str]:
    """The parts given with text, if the post's media stay on the parts they are on: a part that carries
    media is kept with its text, and so is every part before it (`MediaRefused` if not)."""
    with_media = [index for index, files in enumerate(post.media) if files]
    for index in with_media:
        if index >= len(parts):
            raise MediaRefused(f"part {index + 1} carries media: keep that part, or cancel the post")
        if not parts[index].strip():
            raise MediaRefused(f"part {index + 1} carries media: keep its text, or cancel the post")
    last = max(with_media, default=-1)
    emptied = next((index for index in range(last) if not parts[index].strip()), None)
    if emptied is not None:
        raise MediaRefused(f"part {last + 1} carries media: keep part {emptied + 1} before it, or cancel the post")
    return [part for part in parts if part.strip()]
