"""The records the bot keeps: accounts (who consented) and posts (what to say, when).

Times are timezone-aware UTC datetimes in Python and ISO 8601 strings on disk.
Tokens are plain text here and encrypted only by the store. An account read from
the store holds its tokens sealed and decrypts one only when it is read, so a
lookup (by handle, for a list, for a status) costs no decryption.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any, TypeVar, overload

# Account states
ACTIVE = "active"
NEEDS_RECONNECT = "needs_reconnect"
DISCONNECTED = "disconnected"

# Post states: scheduled → sending → posted | failed | canceled
SCHEDULED = "scheduled"
SENDING = "sending"
POSTED = "posted"
FAILED = "failed"
CANCELED = "canceled"
FINISHED = frozenset({POSTED, FAILED, CANCELED})
Moment = TypeVar("Moment", datetime, str)

# Why a post failed (`Post.failure_kind`), written when it fails: what a person and a retry decide by
DUPLICATE = "duplicate"  # X refused the text as duplicate content: the same text would be refused again
REFUSED = "refused"  # X said no clearly (400, 403, a second 401)
MEDIA_REFUSED = "media"  # X refused its media, or their bytes are gone from the store
GAVE_UP = "gave_up"  # no clear answer from X after MAX_ATTEMPTS requests
UNVERIFIABLE = "unverifiable"  # X refuses to show the account's posts: whether it went out cannot be known


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_iso(moment: datetime | None) -> str | None:
    """UTC, always with microseconds: one fixed width, so stored times compare as strings."""
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def from_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def ready_time(due_at: Moment, next_attempt_at: Moment | None) -> Moment:
    """When a scheduled post may go: its due time, or its retry time if that is later. The one rule both
    stores index posts by; it holds for datetimes and for their stored ISO form alike (`to_iso`: one fixed
    width, so the strings compare as the times do). PostgreSQL's claimed-post update spells it in SQL."""
    return due_at if next_attempt_at is None or next_attempt_at <= due_at else next_attempt_at


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    """The dataclass's field names, worked out once per class (documents are read by the ten thousand)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    return names


class Record:
    """A dataclass that converts to and from a JSON document (datetimes as ISO)."""

    _times: tuple[str, ...] = ()
    _tuples: tuple[str, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        return self._stored({f.name: getattr(self, f.name) for f in fields(self)})  # type: ignore[arg-type]

    @classmethod
    def patch(cls, changes: dict[str, Any]) -> dict[str, Any]:
        """`changes` to some fields, as they are in a document (a store merges it into the stored one)."""
        unknown = set(changes) - _field_names(cls)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
        return cls._stored(changes)

    @classmethod
    def _stored(cls, values: dict[str, Any]) -> dict[str, Any]:
        """`values` (some or all fields) as a document holds them: datetimes as ISO, tuples as lists."""
        return cls._converted(values, to_iso, list)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Any:
        known = _field_names(cls)
        return cls(**cls._converted({k: v for k, v in doc.items() if k in known}, from_iso, tuple))

    @classmethod
    def _converted(cls, values: dict[str, Any], time: Callable[[Any], Any],
                   sequence: Callable[[Any], Any]) -> dict[str, Any]:
        """A copy of `values` with the time fields present passed through `time`, the tuple fields through
        `sequence`: the one place both directions (record to document, document to record) are written."""
        converted = dict(values)
        for name in cls._times:
            if name in converted:
                converted[name] = time(converted[name])
        for name in cls._tuples:
            if name in converted:
                converted[name] = sequence(converted[name])
        return converted


class Sealed:
    """A token as the store keeps it (ciphertext), opened on first read and then remembered."""

    __slots__ = ("ciphertext", "_opener", "_opened")
    _UNOPENED: Any = object()

    def __init__(self, ciphertext: str, opener: Callable[[str], str | None]) -> None:
        self.ciphertext = ciphertext
        self._opener = opener
        self._opened: str | None = self._UNOPENED

    def open(self) -> str | None:
        if self._opened is self._UNOPENED:
            self._opened = self._opener(self.ciphertext)
        return self._opened


class SealedField:
    """A secret the store keeps encrypted (an account's token, a webhook's signing secret): a plain
    `str | None` to every reader, possibly `Sealed` underneath, so reading a record decrypts nothing
    until that field is read.

    Installed on the dataclass after it is built, so the dataclass keeps its plain
    default and `repr=False`, and every assignment (its `__init__`, `dataclasses.replace`,
    a test) goes through `__set__`.
    """

    def __init__(self, name: str) -> None:
        self.slot = f"_{name}_value"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> None: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> str | None: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> str | None:
        if obj is None:
            return None  # the dataclass default
        value = obj.__dict__.get(self.slot)
        return value.open() if isinstance(value, Sealed) else value

    def __set__(self, obj: object, value: str | Sealed | None) -> None:
        obj.__dict__[self.slot] = value


@dataclass
class Account(Record):
    """An X user who granted the bot access."""

    user_id: str
    username: str
    name: str = ""
    scopes: tuple[str, ...] = ()
    access_token: str | None = field(default=None, repr=False)  # see SealedField below
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    refreshed_at: datetime | None = None
    connected_at: datetime | None = None
    status: str = ACTIVE
    last_error: str | None = None
    refresh_failures: int = 0
    next_refresh_at: datetime | None = None
    hold_until: datetime | None = None
    hold_reason: str | None = None

    _times = ("expires_at", "refreshed_at", "connected_at", "next_refresh_at", "hold_until")
    _tuples = ("scopes",)

    @property
    def handle(self) -> str:
        return f"@{self.username}"

    def sealed(self, name: str) -> Sealed | None:
        """The token `name` as the store gave it, if it has not been replaced since (else None)."""
        value = self.__dict__.get(f"_{name}_value")
        return value if isinstance(value, Sealed) else None


Account.access_token = SealedField("access_token")  # type: ignore[assignment]
Account.refresh_token = SealedField("refresh_token")  # type: ignore[assignment]


@dataclass(frozen=True)
class MediaRef:
    """One image, GIF or video attached to a part: its bytes are in the store under `digest`."""

    digest: str  # sha256 of the bytes, hex: the store keeps each distinct file once
    kind: str  # "image", "gif" or "video" (read from the bytes, not the name)
    mime: str
    size: int
    name: str = ""  # the file's name as given, for messages and pages
    alt: str | None = None  # alt text, up to 1,000 characters
    data: bytes | None = field(default=None, repr=False, compare=False)  # until the queue stores it

    def to_doc(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "data"}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> MediaRef:
        known = _field_names(cls)
        return cls(**{k: v for k, v in doc.items() if k in known})


@dataclass(frozen=True)
class Post(Record):
    """One queued post, or a thread when it has several parts.

    Frozen: a change is a new post (`dataclasses.replace`), so both stores may hand the
    same parsed posts to every reader of an unchanged queue. `uploads` is a dict: it is
    never changed in place either (a change is a new dict, as `bot.posting.media_uploads` makes it)."""

    id: int
    account_id: str
    parts: tuple[str, ...]
    due_at: datetime
    status: str = SCHEDULED
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sending_since: datetime | None = None
    tweet_ids: tuple[str | None, ...] = ()
    posted_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    source: str = "cli"
    claimed_by: str | None = None  # the worker whose claim marked it `sending` (and, once posted, sent it)
    claim_token: str | None = None  # while `sending`: its claim's token; an outcome is written only under it
    claimed_at: datetime | None = None  # when that claim was made (a settler's take-over renews it)
    media: tuple[tuple[MediaRef, ...], ...] = ()  # per part (empty: no media at all)
    uploads: dict[str, dict[str, str]] = field(default_factory=dict)  # "part.index": X's media id, expiry
    finished_at: datetime | None = None  # set by the store when the post becomes posted, failed or canceled
    failure_kind: str | None = None  # once failed: why, as one of DUPLICATE, REFUSED, MEDIA_REFUSED, GAVE_UP…
    requeued_as: int | None = None  # once failed: the post it was queued again as (`bot.queue.retry`)
    options: dict[str, Any] = field(default_factory=dict)  # X's names, for its first part (`bot.post_options`)

    _times = ("due_at", "next_attempt_at", "sending_since", "posted_at", "created_at", "finished_at", "claimed_at")
    _tuples = ("parts", "tweet_ids")

    def to_doc(self) -> dict[str, Any]:
        doc = super().to_doc()
        doc["media"] = [[ref.to_doc() for ref in part] for part in self.media]
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Any:
        media = tuple(tuple(MediaRef.from_doc(ref) for ref in part) for part in doc.get("media") or ())
        return super().from_doc({**doc, "media": media})

    @classmethod
    def patch(cls, changes: dict[str, Any]) -> dict[str, Any]:
        doc = super().patch(changes)
        if "media" in doc:
            doc["media"] = [[ref.to_doc() for ref in part] for part in doc["media"]]
        return doc

    def media_of(self, index: int) -> tuple[MediaRef, ...]:
        """The media of part `index` (none when the post has no media there)."""
        return self.media[index] if index < len(self.media) else ()

    @property
    def media_count(self) -> int:
        return sum(len(part) for part in self.media)

    def digests(self) -> set[str]:
        """Every stored file this post's media need, its plug's too (`bot.series`)."""
        return {ref.digest for part in self.media for ref in part} | {ref.digest for ref in self.plug_media()}

    def plug_media(self) -> list[MediaRef]:
        """The files its plug's reply carries (refs as queued, or as the store keeps them)."""
        plug = self.options.get("plug") or {}
        return [item if isinstance(item, MediaRef) else MediaRef.from_doc(item) for item in plug.get("media") or ()]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def text(self) -> str:
        return self.parts[0]

    # -- which parts X has ------------------------------------------------------------------

    def at_x(self, index: int) -> bool:
        """Whether X has part `index` (its tweet id is known)."""
        return index < len(self.tweet_ids) and bool(self.tweet_ids[index])

    def ids_at_x(self) -> set[str]:
        """The tweet ids of the parts X is known to have."""
        return {tid for tid in self.tweet_ids if tid}

    def missing_parts(self) -> list[int]:
        """The indexes of the parts X does not have yet, in order."""
        return [index for index in range(len(self.parts)) if not self.at_x(index)]

    def with_part_at_x(self, index: int, tweet_id: str) -> Post:
        """The post with part `index` known to be X's `tweet_id`."""
        ids = list(self.tweet_ids) + [None] * (len(self.parts) - len(self.tweet_ids))
        ids[index] = tweet_id
        return replace(self, tweet_ids=tuple(ids))

    # -- transitions: the changes a store writes (`update_post`), each clearing what it must ------------

    def progress(self) -> dict[str, Any]:
        """What a send has learnt so far and every outcome writes: the parts X has, the attempts made."""
        return {"tweet_ids": self.tweet_ids, "attempts": self.attempts}

    def handed_back(self, **changes: Any) -> dict[str, Any]:
        """Back to the queue: scheduled, its claim gone, its progress kept, plus `changes` (a retry time,
        the reason it waits)."""
        return {"status": SCHEDULED, "sending_since": None, "claimed_by": None, "claim_token": None,
                "claimed_at": None, **self.progress(), **changes}

    def as_posted(self, at: datetime) -> dict[str, Any]:
        """Out: every part at X, and finished then (the worker's clock, which the reading plan counts ages
        by). The claim ends; the worker that sent it stays named."""
        return {**self._claim_ended(), **self.progress(), "status": POSTED, "posted_at": at, "finished_at": at,
                "last_error": None}

    def as_failed(self, kind: str, reason: str) -> dict[str, Any]:
        """Failed for good: why, as a fact (`kind`: DUPLICATE, REFUSED…) and in words (`reason`)."""
        return {**self._claim_ended(), **self.progress(), "status": FAILED, "failure_kind": kind,
                "last_error": reason}

    def still_sending(self, why: str | None) -> dict[str, Any]:
        """Still `sending` under its claim, its progress written (an outcome not known yet)."""
        return {**self.progress(), "last_error": why}

    @staticmethod
    def _claim_ended() -> dict[str, Any]:
        return {"claim_token": None, "claimed_at": None}

    @property
    def ready_at(self) -> datetime:
        """When it may go (`ready_time`): the worker claims it once this has come."""
        return ready_time(self.due_at, self.next_attempt_at)

    @property
    def claim_started(self) -> datetime | None:
        """When the claim it is `sending` under was made (older claims: when it began sending)."""
        return self.claimed_at or self.sending_since
