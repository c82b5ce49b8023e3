"""The records a sandbox world keeps: users, clients, codes, tokens, posts, media, faults.

Plain dataclasses, no behaviour beyond their JSON rows: the parts of the world
(`sandbox/consent.py`, `sandbox/timeline.py`, `sandbox/upload_sessions.py`, `sandbox/traffic.py`)
keep them and change them under the world's lock; views only read what a part hands out.
Also X's timestamp format, which several records and answers use.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass
class User:
    """A sandbox account, like an X user."""

    id: str
    username: str
    name: str
    created_at: str

    def as_json(self) -> dict[str, Any]:
        """The JSON form for the control API."""
        return {"id": self.id, "username": self.username, "name": self.name, "created_at": self.created_at}


@dataclass
class Client:
    """A registered OAuth client."""

    client_id: str
    client_secret: str | None
    redirect_uris: list[str]

    @property
    def confidential(self) -> bool:
        """A client with a secret must authenticate with it."""
        return self.client_secret is not None

    def as_json(self) -> dict[str, Any]:
        """The JSON form for the control API."""
        return {"client_id": self.client_id, "confidential": self.confidential,
                "redirect_uris": list(self.redirect_uris)}


@dataclass
class AuthCode:
    """An authorization code waiting to be exchanged."""

    code: str
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str
    method: str
    issued_at: float
    used: bool = False


@dataclass
class Chain:
    """One consent's line of tokens: every refresh continues it; reuse may revoke it."""

    id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    created_at: float
    status: str = "active"  # or "revoked"
    refreshes: int = 0
    revoked_reason: str | None = None
    access_token: str | None = None
    access_expires_at: float = 0.0
    refresh_token: str | None = None


@dataclass
class AccessToken:
    """A bearer token."""

    token: str
    chain_id: str
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshToken:
    """A refresh token; `spent_at` is set when it was exchanged."""

    token: str
    chain_id: str
    issued_at: float
    spent_at: float | None = None


@dataclass
class Post:
    """A post as stored, with the text as sent and as X returns it."""

    id: str
    author_id: str
    raw_text: str  # as sent
    text: str  # as X returns it
    created_at: float
    client_id: str
    conversation_id: str
    reply_to: str | None = None
    in_reply_to_user_id: str | None = None
    media_ids: tuple[str, ...] = ()
    media_keys: tuple[str, ...] = ()
    poll: dict[str, Any] | None = None
    quote_tweet_id: str | None = None
    reply_settings: str | None = None
    community_id: str | None = None
    made_with_ai: bool = False
    paid_partnership: bool = False
    edit_history: tuple[str, ...] = ()  # once edited: every version's id, oldest first (shared by them all)
    deleted_at: float | None = None


@dataclass
class Media:
    """An upload: sizes, state of processing, image facts, alt text; an image's bytes.

    Only images keep their bytes (at most 5 MB each, so the timeline page can show them);
    GIFs and videos keep sizes and their first segment's head, enough to name their type.
    """

    id: str
    media_key: str
    owner_id: str
    category: str
    media_type: str
    created_at: float
    total_bytes: int | None = None
    segments: dict[int, int] = field(default_factory=dict)
    size: int = 0
    state: str = "uploading"  # uploading → pending → in_progress → succeeded | failed
    polls: int = 0
    image: dict[str, Any] | None = None
    video_type: str | None = None
    expires_at: float = 0.0
    finalized_at: float | None = None
    ready_at: float | None = None  # set when processing takes sandbox-clock seconds
    will_fail: bool = False
    alt_text: str | None = None
    data: bytes | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """"image", "gif", "video" or "subtitles", from the upload's category."""
        return MEDIA_KINDS.get(self.category, "image")

    @property
    def x_type(self) -> str:
        """The type X's media objects name: photo, animated_gif, video (subtitles: subtitles)."""
        return {"image": "photo", "gif": "animated_gif"}.get(self.kind, self.kind)

    def row(self) -> dict[str, Any]:
        """The media as listed by the control API (no bytes)."""
        return {"id": self.id, "media_key": self.media_key, "type": self.x_type, "alt_text": self.alt_text}


MEDIA_KINDS = {"tweet_image": "image", "dm_image": "image", "tweet_gif": "gif", "dm_gif": "gif",
               "tweet_video": "video", "dm_video": "video", "amplify_video": "video", "subtitles": "subtitles"}
MEDIA_LIFETIME = 24 * 60 * 60  # X's expires_after_secs for a new upload


FAULT_MODES = ("status", "drop", "store_then_status", "store_then_drop", "latency")


@dataclass
class Fault:
    """An injected failure on one endpoint (or "*"): see `sandbox/control.py`."""

    id: str
    endpoint: str
    mode: str
    status: int = 503
    probability: float = 1.0
    latency: float = 0.0
    times: int | None = None  # fire at most this often, then disappear
    after: int = 0  # let this many matching requests through first
    fired: int = 0

    def as_json(self) -> dict[str, Any]:
        """The JSON form for the control API."""
        return asdict(self)


def iso(ts: float) -> str:
    """X's timestamp format: 2026-01-31T12:00:00.000Z."""
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> float:
    """An RFC 3339 timestamp (as X's `start_time` takes) to Unix seconds; ValueError if malformed."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
