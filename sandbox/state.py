"""The sandbox's world: one lock, and the parts it owns, each holding one kind of state.

    shared    the lock, the clock, the switches (`Options`), seeded random numbers, ids
    people    users                                   (sandbox/people.py)
    consent   clients, codes, token chains, events    (sandbox/consent.py)
    uploads   media                                   (sandbox/upload_sessions.py)
    timeline  posts and timelines                     (sandbox/timeline.py)
    traffic   faults, request counts, rate windows    (sandbox/traffic.py)
    charges   what reads cost, the credit they spend  (sandbox/charges.py)

The lock rule: the lock is taken only here and inside the parts' public methods, never
by a view. Every change is one method that holds the lock for its whole
read-modify-write (spending a refresh token, the duplicate check before storing a
post); every read a view makes is a method too, and an answer that reads several
records at once (a post with its author, media and the post it replies to) is built
inside `World.answer`, which holds the lock while it runs. The lock is re-entrant, so a
part's method may call another part's and an answer may call any reading method.

Time is the sandbox clock: the wall clock plus an offset that `POST /_sandbox/clock`
only moves forward. Code expiry, token expiry, rate windows and post timestamps use it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sandbox.charges import Charges
from sandbox.consent import Consent
from sandbox.options import ClientSpec, Options, SandboxConfig
from sandbox.people import People
from sandbox.records import Chain, Client, Fault, Media, User, iso
from sandbox.shared import Shared
from sandbox.timeline import Timeline
from sandbox.traffic import Traffic
from sandbox.upload_sessions import Uploads

T = TypeVar("T")
LIMIT_SWITCHES = ("tier", "limit_overrides", "rate_limits")
KEPT_PARTS = ("people", "consent", "uploads", "timeline", "charges")  # traffic (faults, counts, windows) is a run's own


class World:
    """The whole sandbox state, composed of its parts; every public method is thread-safe."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.shared = Shared(self.config)
        self._lock = self.shared.lock  # no view takes it: see the lock rule above
        self.people = People(self.shared)
        self.consent = Consent(self.shared, self.people)
        self.uploads = Uploads(self.shared)
        self.timeline = Timeline(self.shared, self.people, self.uploads)
        self.traffic = Traffic(self.shared)
        self.charges = Charges(self.shared)
        self.reset()

    # --- lifecycle, clock, switches -------------------------------------------------

    def reset(self) -> None:
        """Back to the start: default users, the configured clients, default options, clock 0."""
        with self._lock:
            self.shared.reset(self.config)
            for part in (self.people, self.consent, self.uploads, self.timeline, self.traffic, self.charges):
                part.reset()
            for spec in self.config.clients:
                self.consent.register_client(spec.client_id, spec.client_secret, list(spec.redirect_uris))
            for username, name in self.config.users:
                self.people.add(username, name)

    def kept(self) -> dict[str, Any]:
        """What the state file keeps (sandbox/keeping.py): the shared switches and each kept part's records.

        Live objects: pickle them under the lock (`answer`)."""
        with self._lock:
            return {"shared": self.shared.kept(), **{name: getattr(self, name).kept() for name in KEPT_PARTS}}

    def restore(self, kept: dict[str, Any]) -> None:
        """Become the world `kept` describes; the configured clients are registered again over it."""
        with self._lock:
            self.reset()
            self.shared.restore(kept["shared"], self.config)
            for name in KEPT_PARTS:
                if name in kept:  # a state file from before a part was kept: that part starts empty
                    getattr(self, name).restore(kept[name])
            for spec in self.config.clients:
                self.consent.register_client(spec.client_id, spec.client_secret, list(spec.redirect_uris))

    def now(self) -> float:
        """The sandbox clock (Unix seconds)."""
        return self.shared.now()

    @property
    def clock_offset(self) -> float:
        """How far the sandbox clock is ahead of the wall clock."""
        return self.shared.clock_offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never back: X's clock does not go back either)."""
        return self.shared.advance(seconds)

    @property
    def options(self) -> Options:
        """The current switches (read them; change them only through `update_options`)."""
        return self.shared.options

    def update_options(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply switches (see `Options.update`); window counters restart when limits change."""
        with self._lock:
            self.shared.options.update(changes)
            if any(name in changes for name in LIMIT_SWITCHES):
                self.traffic.restart_windows()
            return self.shared.options.as_json()

    def options_json(self) -> dict[str, Any]:
        """The current switches as JSON."""
        with self._lock:
            return self.shared.options.as_json()

    # --- what several views ask ------------------------------------------------------

    def add_user(self, username: str, name: str | None = None) -> User:
        """A new sandbox user; ValueError if the username is malformed or taken."""
        return self.people.add(username, name)

    def find_user(self, key: str) -> User | None:
        """A user by id or username (with or without "@")."""
        return self.people.find(key)

    def register_client(self, client_id: str, client_secret: str | None | object = ...,
                        redirect_uris: list[str] | None = None) -> Client:
        """Create or update a client (see `Consent.register_client`)."""
        return self.consent.register_client(client_id, client_secret, redirect_uris)

    def direct_grant(self, client_id: str, user_id: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        """A token pair without the browser (control API: tests of many accounts)."""
        return self.consent.direct_grant(client_id, user_id, scopes)

    def revoke_user(self, user_id: str, client_id: str | None = None) -> int:
        """Revoke every active chain of a user (the user disconnected the app at X)."""
        return self.consent.revoke_user(user_id, client_id)

    def add_fault(self, raw: dict[str, Any]) -> Fault:
        """Register a fault from control-API JSON; ValueError when malformed."""
        return self.traffic.add_fault(raw)

    def media_by_key(self, media_key: str) -> Media | None:
        """A media record by its media key ("3_<id>")."""
        return self.uploads.by_key(media_key)

    def authenticate(self, token: str) -> tuple[Chain, User] | None:
        """The chain and user behind a live access token, or None (→ X's 401)."""
        with self._lock:
            chain = self.consent.authenticate(token)
            user = self.people.by_id(chain.user_id) if chain is not None else None
            return None if chain is None or user is None else (chain, user)

    def answer(self, build: Callable[[], T]) -> T:
        """Run `build` (reads only, through the parts' methods) under the lock: one moment's answer."""
        with self._lock:
            return build()

    # --- the state, for GET /_sandbox/state -------------------------------------------

    def snapshot(self, sections: set[str] | None = None) -> dict[str, Any]:
        """Everything a test may want to check, as JSON (no token values)."""
        with self._lock:
            now = self.now()
            builders: dict[str, Callable[[], Any]] = {
                "config": self.shared.options.as_json,
                "users": lambda: [u.as_json() for u in self.people.all()],
                "clients": lambda: [c.as_json() for c in self.consent.clients()],
                "posts": self.timeline.rows,
                "token_events": self.consent.events,
                "reuse_count": self.consent.reuse_count,
                "chains": lambda: self.consent.chain_rows(now),
                "media": self.uploads.rows,
                "faults": self.traffic.fault_rows,
                "request_counts": self.traffic.request_counts,
                "requests": self.traffic.recent_requests,
            }
            state: dict[str, Any] = {"now": now, "clock_offset": self.clock_offset}
            for name, build in builders.items():
                if sections is None or name in sections:
                    state[name] = build()
            return state


def current_world() -> World:
    """The running app's world (views call this; the app factory puts it there)."""
    from flask import current_app

    return current_app.extensions["sandbox.world"]


# What a world is made from, and X's timestamps, for callers that import them with it.
__all__ = ["World", "current_world", "SandboxConfig", "ClientSpec", "iso"]
