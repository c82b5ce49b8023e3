"""What every store implementation shares: typed events, and accounts sealed for keeping.

An account is kept with its tokens encrypted (TOKEN_KEY) and handed out with them
still sealed: each is decrypted on first read, if ever, so lookups cost nothing.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bot.crypto import TokenCipher
from bot.models import DUPLICATE, FAILED, FINISHED, Account, Post, Record, Sealed, SealedField, from_iso, to_iso, utcnow
from bot.store.errors import ClaimLost, RecordMissing

TOKENS = ("access_token", "refresh_token")
#: The event of a claim taken over to settle a post its worker left `sending` (`Repository.take_over`).
TAKE_OVER_EVENT = "settling"
ACCOUNT_FIELDS = frozenset(f.name for f in fields(Account))
#: The event recorded beside `Post.requeued_as` when a failed post is queued again (`bot.queue.retry`).
REQUEUED_EVENT = "requeued"
_EARLIER_REQUEUE = re.compile(r"queued again as post (\d+)")
_EARLIER_DUPLICATE = "duplicate content"


def requeued_detail(new_id: int) -> str:
    """The words of a `REQUEUED_EVENT`, for a person reading the audit trail."""
    return f"queued again as post {new_id}"


def earlier_facts(history: Iterable[Post], requeues: Iterable[Event]) -> dict[str, dict[str, Any]]:
    """The facts of failed posts a version before `Post.failure_kind` and `Post.requeued_as` kept only in
    words, as fields ({post id: {field: value}}): X's refusal as duplicate content in `last_error`, and the
    new post's id in the detail of a `REQUEUED_EVENT` (the newest one). Read once, when the file store is
    first opened by this version (PostgreSQL: migration 0004); nothing else reads those words back."""
    noted: dict[str, dict[str, Any]] = {}
    for post in history:
        said_duplicate = _EARLIER_DUPLICATE in (post.last_error or "").lower()
        if post.status == FAILED and post.failure_kind is None and said_duplicate:
            noted.setdefault(str(post.id), {})["failure_kind"] = DUPLICATE
    for event in requeues:
        found = _EARLIER_REQUEUE.fullmatch(event.detail or "")
        if found and event.post_id is not None:
            noted.setdefault(str(event.post_id), {}).setdefault("requeued_as", int(found.group(1)))
    return noted


@dataclass(frozen=True)
class Claim:
    """What `Repository.claim_next` claimed: one account's due posts, and the account as read with the claim
    (no posts and None when nothing could be claimed)."""

    posts: list[Post]
    account: Account | None = None


@dataclass(frozen=True)
class Event:
    """One line of the audit trail: refreshed, sending, posted, failed, reconnected…"""

    at: datetime
    kind: str
    account_id: str | None = None
    post_id: int | None = None
    detail: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return {"at": to_iso(self.at), "kind": self.kind, "account_id": self.account_id,
                "post_id": self.post_id, "detail": self.detail}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Event:
        return cls(at=from_iso(doc["at"]) or utcnow(), kind=doc["kind"], account_id=doc.get("account_id"),
                   post_id=doc.get("post_id"), detail=doc.get("detail"))


@dataclass(frozen=True)
class Reading(Record):
    """What one read of a posted post found at X (`bot.analytics`): its metrics under X's names, summed
    over its parts (a thread's likes are every part's), when, and which age of the reading plan it was."""

    post_id: int
    account_id: str
    read_at: datetime
    age: int  # the index in ANALYTICS_AGES of the age this read was for
    metrics: dict[str, int] = field(default_factory=dict)
    poll: list[dict[str, Any]] = field(default_factory=list)  # a poll's options: {"label", "votes"}

    _times = ("read_at",)


#: Finished webhook deliveries every store keeps whatever their age (the delivery log, `Repository.deliveries`).
KEPT_DELIVERIES = 200


@dataclass(frozen=True)
class Webhook(Record):
    """A subscription: where to POST which events (`bot.webhooks`), signed with `secret` (`whsec_…`, kept
    sealed with TOKEN_KEY like a token; `repr=False`, so no log line carries it). A subscription whose
    deliveries keep failing is paused (`paused_at`, `pause_reason`) until its owner resumes it."""

    id: int
    url: str
    events: tuple[str, ...]
    secret: str = field(repr=False)
    created_at: datetime | None = None
    paused_at: datetime | None = None
    pause_reason: str | None = None
    failures: int = 0  # consecutive failed attempts, of any of its deliveries
    managed_by: str | None = None  # the setting it is made from (ALERT_WEBHOOK_URL), if any
    last_delivery_at: datetime | None = None
    last_status: int | None = None

    _times = ("created_at", "paused_at", "last_delivery_at")
    _tuples = ("events",)


Webhook.secret = SealedField("secret")  # type: ignore[assignment]


@dataclass(frozen=True)
class Delivery(Record):
    """One event for one subscription (the outbox's row): `body` is the JSON sent, byte for byte the same
    on every attempt, and `event_id` (`msg_…`) its `webhook-id`, the same for every subscription and
    attempt, so a receiver drops repeats. Claimed by a worker for one attempt (`claim_token`, until
    `claimed_until`: a claim of a worker that died lapses); finished once delivered or given up."""

    id: int
    webhook_id: int
    event_id: str
    type: str
    body: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    last_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    given_up_at: datetime | None = None
    claim_token: str | None = None
    claimed_until: datetime | None = None

    _times = ("created_at", "next_attempt_at", "last_attempt_at", "delivered_at", "given_up_at", "claimed_until")

    @property
    def finished(self) -> bool:
        return self.delivered_at is not None or self.given_up_at is not None


def seal_webhook(webhook: Webhook, cipher: TokenCipher) -> dict[str, Any]:
    """The subscription's document, its secret encrypted."""
    return {**webhook.to_doc(), "secret": cipher.encrypt(webhook.secret)}


def unseal_webhook(doc: dict[str, Any], cipher: TokenCipher) -> Webhook:
    """The subscription with its secret sealed: decrypted when it is read (to sign), not to list or match."""
    webhook: Webhook = Webhook.from_doc({**doc, "secret": Sealed(doc["secret"], cipher.decrypt)})
    return webhook


def claimable(delivery: Delivery, now: datetime) -> bool:
    """Whether a worker may claim the delivery at `now`: unfinished, due, and no live claim on it."""
    return not delivery.finished and delivery.next_attempt_at <= now and \
        (delivery.claimed_until is None or delivery.claimed_until <= now)


def changed_delivery(delivery_id: int, delivery: Delivery | None, under_claim: str | None,
                     changes: dict[str, Any]) -> Delivery:
    """`delivery` (as read, None if gone) with `changes`; with `under_claim`, only while that is still its
    claim (`ClaimLost`, also when it is gone); without, `RecordMissing` when it is gone."""
    if delivery is None:
        if under_claim is not None:
            raise ClaimLost(f"delivery {delivery_id} is gone")
        raise RecordMissing(f"no delivery {delivery_id}")
    if under_claim is not None and delivery.claim_token != under_claim:
        raise ClaimLost(f"delivery {delivery.id} is no longer held by that claim")
    return replace(delivery, **changes)


def seal_account(account: Account, cipher: TokenCipher) -> dict[str, Any]:
    """The account's document: tokens encrypted (a token still sealed as read is kept as it was)."""
    bare = copy.copy(account)
    bare.access_token = bare.refresh_token = None
    doc = bare.to_doc()
    for name in TOKENS:
        sealed = account.sealed(name)
        doc[name] = sealed.ciphertext if sealed is not None else cipher.encrypt(getattr(account, name))
    return doc


def unseal_account(doc: dict[str, Any], cipher: TokenCipher) -> Account:
    """The account with its tokens sealed: each is decrypted on first read, if ever."""
    values = dict(doc)
    for name in TOKENS:
        sealed = values.get(name)
        values[name] = None if sealed is None else Sealed(sealed, cipher.decrypt)
    account: Account = Account.from_doc(values)
    return account


def account_patch(changes: dict[str, Any], cipher: TokenCipher) -> dict[str, Any]:
    """`changes` to an account as its document holds them, tokens encrypted (a store merges it in)."""
    patch = Account.patch({name: value for name, value in changes.items() if name not in TOKENS})
    for name in TOKENS:
        if name in changes:
            patch[name] = cipher.encrypt(changes[name])
    return patch


class _AccountKeeper(Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...
    def get_account(self, user_id: str) -> Account | None: ...
    def save_account(self, account: Account) -> None: ...
    def record_event(self, kind: str, account_id: str | None = None, post_id: int | None = None,
                     detail: str | None = None, at: datetime | None = None) -> None: ...


def update_account_in(store: _AccountKeeper, user_id: str, changes: dict[str, Any]) -> Account:
    """`Repository.update_account` for every store: read (locked), change, save, in one transaction."""
    with store.transaction():
        account = store.get_account(user_id)
        if account is None:
            raise RecordMissing(f"no account {user_id}")
        account = changed_account(account, changes)
        store.save_account(account)
        return account


def replace_pair_in(store: _AccountKeeper, spent: Account, event: Event, changes: dict[str, Any]) -> Account | None:
    """`Repository.replace_pair` for every store: read (locked), compare the refresh tokens, change and save
    with the event, in one transaction."""
    with store.transaction():
        current = store.get_account(spent.user_id)
        if current is None or current.refresh_token != spent.refresh_token:
            return current
        account = changed_account(current, changes)
        store.save_account(account)
        store.record_event(event.kind, event.account_id, event.post_id, event.detail, event.at)
        return account


def changed_account(account: Account, changes: dict[str, Any]) -> Account:
    """A copy of the account with `changes`; unchanged tokens stay sealed (no decryption, no re-encryption)."""
    account = copy.copy(account)
    for name, value in changes.items():
        if name not in ACCOUNT_FIELDS:
            raise TypeError(f"Account has no field {name!r}")
        setattr(account, name, value)
    return account


def first_sealed_token(docs: list[dict[str, Any]]) -> str | None:
    """A ciphertext to try TOKEN_KEY on (None: no account holds a token)."""
    return next((doc[name] for doc in docs for name in TOKENS if doc.get(name)), None)


def changed_post(post: Post, changes: dict[str, Any]) -> Post:
    """`post` with `changes`; one that becomes finished gets `finished_at` now unless the caller gave one
    (the retention of its media counts from then)."""
    changed = replace(post, **changes)
    if changed.status in FINISHED and post.status not in FINISHED and changes.get("finished_at") is None:
        changed = replace(changed, finished_at=utcnow())
    return changed


def take_over_detail(post: Post, claimer: str, now: datetime) -> str:
    """What a take-over's event says: whose claim, how old, who settles it now."""
    started = post.claim_started or now
    return f"claim of {post.claimed_by} made {(now - started).total_seconds():.1f} s before, settled by {claimer}"


def stamped_if_finished(post: Post) -> Post:
    """A post queued already finished (recorded after the fact) is finished as it is stored."""
    return replace(post, finished_at=utcnow()) if post.finished and post.finished_at is None else post


def _no_media(digest: str) -> bytes:
    raise RecordMissing(f"no media {digest}")


@dataclass
class StoreContents:
    """Everything a store holds, for `tweetbot store copy`: accounts as kept (tokens still
    encrypted), the queue, the history (oldest finished first), schedules, events (oldest
    first), the meta values (heartbeats, sign-in lockouts) apart from the store's own, and
    the media: each file's digest and stored time, its bytes read one file at a time
    through `read_media` (from the source store) as the target loads them, so a copy
    never holds every file in memory at once; and the webhooks with their outbox."""

    accounts: list[dict[str, Any]] = field(default_factory=list)
    queue: list[Post] = field(default_factory=list)
    history: list[Post] = field(default_factory=list)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    media: dict[str, datetime] = field(default_factory=dict)
    read_media: Callable[[str], bytes] = field(default=_no_media, compare=False, repr=False)
    webhooks: list[dict[str, Any]] = field(default_factory=list)  # as kept: each secret still sealed
    deliveries: list[Delivery] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)  # each post's newest

    def counts(self) -> dict[str, int]:
        return {"accounts": len(self.accounts), "queued posts": len(self.queue),
                "finished posts": len(self.history), "schedules": len(self.schedules),
                "events": len(self.events), "media files": len(self.media)}

    @property
    def empty(self) -> bool:
        return not (self.accounts or self.queue or self.history or self.schedules or self.events)


@dataclass
class BackupSummary:
    """What an archive holds: the moment's account ids, queued post ids, finished posts and events."""

    path: Path
    accounts: list[str] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    history: int = 0
    events: int = 0
    size: int = 0
    media: int = 0

    def describe(self) -> str:
        return (f"{len(self.accounts)} account(s), {len(self.queued)} queued post(s), {self.history} finished "
                f"post(s), {self.events} event(s) and {self.media} media file(s)")

    def held(self) -> dict[str, Any]:
        return {"accounts": self.accounts, "queued": self.queued, "history": self.history, "events": self.events}


@dataclass(frozen=True)
class KeptAnswer:
    """The answer an API write gave, kept under its idempotency key (`Repository.keep_answer`)."""

    fingerprint: str  # what was asked (method, path, body), hashed: the same key with another request is refused
    status: int
    body: Any
    kept_at: datetime
