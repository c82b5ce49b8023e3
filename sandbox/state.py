"""The sandbox's world: users, clients, codes, tokens, posts, media, events, faults, clock.

Everything lives in memory behind one lock (`World.lock`): the server is threaded and
the bot, a browser and the tests use it at once. Operations that must be atomic at X
(spending a refresh token, the duplicate check before storing a post) are single
methods here that hold the lock for their whole read-modify-write.

Time is the sandbox clock: the wall clock plus an offset that `POST /_sandbox/clock`
only moves forward. Code expiry, token expiry, rate windows and post timestamps use it.
"""
from __future__ import annotations

import base64
import hashlib
import random
import re
import secrets
import string
import threading
import time
from typing import Any

from sandbox.errors import INVALID_CODE, INVALID_TOKEN, VERIFIER_MISMATCH, OAuthError
from sandbox.limits import RateLimiter, Window, tier_table
from sandbox.options import ClientSpec, Options, SandboxConfig
from sandbox.records import (
    FAULT_MODES,
    MEDIA_KINDS,
    MEDIA_LIFETIME,
    AccessToken,
    AuthCode,
    Chain,
    Client,
    Fault,
    Media,
    Post,
    RefreshToken,
    User,
    iso,
    parse_iso,
)
from xtext import extract_urls

# Sandbox user ids are numeric strings of X's length; the first users always get the
# same ids, so a reset world looks the same every time.
USER_ID_BASE = 1_720_000_000_000_000_000
TWITTER_EPOCH_MS = 1_288_834_974_657
KNOWN_SCOPES = frozenset({
    "tweet.read", "tweet.write", "tweet.moderate.write", "users.email", "users.read", "follows.read",
    "follows.write", "offline.access", "space.read", "mute.read", "mute.write", "like.read", "like.write",
    "list.read", "list.write", "block.read", "block.write", "bookmark.read", "bookmark.write",
    "media.write", "dm.read", "dm.write",
})
DEFAULT_GRANT_SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access")
MAX_REDIRECT_URIS = 10
# RFC 7636 asks for 43-128 characters, but X's own Python tutorial sends a 40-character
# verifier (base64 of 30 random bytes, stripped) and it works at X: so any length to 128.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{1,128}$")
_MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{1,15})")


class World:
    """The whole sandbox state; every public method is thread-safe."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.reset()

    # --- lifecycle ------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the start: default users, the configured clients, default options, clock 0."""
        with self.lock:
            self.options = Options.starting(self.config)
            self.clock_offset = 0.0
            self.rng = random.Random(self.config.seed)
            self.users: dict[str, User] = {}
            self.users_by_name: dict[str, User] = {}
            self.clients: dict[str, Client] = {}
            self.codes: dict[str, AuthCode] = {}
            self.chains: dict[str, Chain] = {}
            self.access_tokens: dict[str, AccessToken] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.posts: dict[str, Post] = {}
            self.posts_by_user: dict[str, list[Post]] = {}
            self.recent_texts: dict[tuple[str, str], list[Post]] = {}
            self.media: dict[str, Media] = {}
            self.events: list[dict[str, Any]] = []
            self.faults: list[Fault] = []
            self.request_counts: dict[str, int] = {}
            self.limiter = RateLimiter()
            self.reuse_count = 0
            self._next_user = 1
            self._last_snowflake = 0
            self._next_fault = 1
            self._next_chain = 1
            for spec in self.config.clients:
                self.register_client(spec.client_id, spec.client_secret, list(spec.redirect_uris))
            for username, name in self.config.users:
                self.add_user(username, name)

    def now(self) -> float:
        """The sandbox clock (Unix seconds)."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never back: X's clock does not go back either)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.lock:
            self.clock_offset += seconds
            return self.now()

    def update_options(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply switches (see `Options.update`); window counters restart when limits change."""
        with self.lock:
            self.options.update(changes)
            if "tier" in changes or "limit_overrides" in changes or "rate_limits" in changes:
                self.limiter.reset()
            return self.options.as_json()

    # --- users and clients ----------------------------------------------------------

    def add_user(self, username: str, name: str | None = None) -> User:
        """A new sandbox user; ValueError if the username is malformed or taken."""
        if not re.fullmatch(r"[A-Za-z0-9_]{1,15}", username or ""):
            raise ValueError(f"username {username!r} must be 1-15 letters, digits or underscores")
        with self.lock:
            if username.lower() in self.users_by_name:
                raise ValueError(f"username {username!r} is taken")
            user = User(id=str(USER_ID_BASE + self._next_user), username=username,
                        name=name or username.replace("_", " ").title(), created_at=iso(self.now()))
            self._next_user += 1
            self.users[user.id] = user
            self.users_by_name[username.lower()] = user
            self.posts_by_user[user.id] = []
            return user

    def find_user(self, key: str) -> User | None:
        """A user by id or username (with or without "@")."""
        with self.lock:
            return self.users.get(key) or self.users_by_name.get(key.lstrip("@").lower())

    def register_client(self, client_id: str, client_secret: str | None | object = ...,
                        redirect_uris: list[str] | None = None) -> Client:
        """Create or update a client. Redirect URIs are added (at most 10, as at X).

        `client_secret` left out keeps an existing client's secret; `None` makes it public.
        """
        if not client_id:
            raise ValueError("client_id is required")
        uris = list(redirect_uris or [])
        for uri in uris:
            if not uri.startswith(("http://", "https://")):
                raise ValueError(f"redirect URI {uri!r} is not an http(s) URL")
        with self.lock:
            client = self.clients.get(client_id)
            if client is None:
                secret = None if client_secret is ... else client_secret
                client = Client(client_id, secret or None, [])  # type: ignore[arg-type]
            elif client_secret is not ...:
                client.client_secret = client_secret or None  # type: ignore[assignment]
            merged = client.redirect_uris + [u for u in uris if u not in client.redirect_uris]
            if len(merged) > MAX_REDIRECT_URIS:
                raise ValueError(f"at most {MAX_REDIRECT_URIS} callback URLs per client")
            client.redirect_uris = merged
            self.clients[client_id] = client
            return client

    # --- authorization codes --------------------------------------------------------

    def issue_code(self, client_id: str, user_id: str, redirect_uri: str, scopes: tuple[str, ...],
                   challenge: str, method: str) -> str:
        """A fresh authorization code for a consent just given."""
        with self.lock:
            code = _token(64)
            self.codes[code] = AuthCode(code, client_id, user_id, redirect_uri, scopes, challenge, method,
                                        self.now())
            return code

    def redeem_code(self, client: Client, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """Exchange a code for tokens: once, within its lifetime, same client, URI and PKCE."""
        with self.lock:
            grant = self.codes.get(code)
            if grant is None or grant.used or grant.client_id != client.client_id:
                raise OAuthError(400, "invalid_request", INVALID_CODE)
            # A code is spent by any attempt, right or wrong: a leaked code is worth one try.
            grant.used = True
            if self.now() > grant.issued_at + self.options.code_lifetime:
                raise OAuthError(400, "invalid_request", INVALID_CODE)
            if redirect_uri != grant.redirect_uri:
                raise OAuthError(400, "invalid_request",
                                 "Value passed for the redirect uri did not match the uri of the authorization code.")
            if not pkce_matches(verifier, grant.challenge, grant.method):
                raise OAuthError(400, "invalid_request", VERIFIER_MISMATCH)
            return self._new_chain(client.client_id, grant.user_id, grant.scopes, via="code")

    # --- tokens ---------------------------------------------------------------------

    def direct_grant(self, client_id: str, user_id: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        """A token pair without the browser (control API: tests of many accounts)."""
        with self.lock:
            if client_id not in self.clients:
                raise ValueError(f"unknown client {client_id!r}")
            if user_id not in self.users:
                raise ValueError(f"unknown user {user_id!r}")
            unknown = [s for s in scopes if s not in KNOWN_SCOPES]
            if unknown or not scopes:
                raise ValueError(f"unknown scopes {unknown}" if unknown else "scopes must not be empty")
            return self._new_chain(client_id, user_id, scopes, via="grant")

    def _new_chain(self, client_id: str, user_id: str, scopes: tuple[str, ...], via: str) -> dict[str, Any]:
        """Start a token chain (one consent) and issue its first pair."""
        chain = Chain(id=f"c{self._next_chain}", client_id=client_id, user_id=user_id, scopes=scopes,
                      created_at=self.now())
        self._next_chain += 1
        self.chains[chain.id] = chain
        answer = self._issue(chain)
        self._event("issued", chain, via=via)
        return answer

    def _issue(self, chain: Chain) -> dict[str, Any]:
        """A new access token (and refresh token with offline.access) on `chain`: X's answer."""
        now = self.now()
        lifetime = self.options.access_token_lifetime
        access = AccessToken(_token(64), chain.id, now + lifetime)
        self.access_tokens[access.token] = access
        chain.access_token, chain.access_expires_at = access.token, access.expires_at
        answer: dict[str, Any] = {"token_type": "bearer", "expires_in": lifetime,
                                  "access_token": access.token, "scope": " ".join(chain.scopes)}
        if "offline.access" in chain.scopes:
            refresh = RefreshToken(_token(64), chain.id, now)
            self.refresh_tokens[refresh.token] = refresh
            chain.refresh_token = refresh.token
            answer["refresh_token"] = refresh.token
        return answer

    def refresh(self, client: Client, token: str, scopes: tuple[str, ...] | None) -> dict[str, Any]:
        """The refresh grant: rotate, or refuse (recording every refused reuse)."""
        with self.lock:
            error = OAuthError(400, self.options.refresh_error, INVALID_TOKEN)
            record = self.refresh_tokens.get(token)
            chain = self.chains.get(record.chain_id) if record else None
            if record is None or chain is None or chain.client_id != client.client_id:
                self.events.append(self._event_row("refresh_refused", None, reason="unknown"))
                raise error
            if record.spent_at is not None:
                self.reuse_count += 1
                self._event("reuse_refused", chain, spent_at=record.spent_at)
                if self.options.reuse_revokes_chain and chain.status == "active":
                    self._revoke_chain(chain, reason="reuse")
                raise error
            if chain.status != "active":
                self._event("refresh_refused", chain, reason="revoked")
                raise error
            lifetime = self.options.refresh_token_lifetime
            if lifetime is not None and self.now() > record.issued_at + lifetime:
                self._event("refresh_refused", chain, reason="expired")
                raise error
            if scopes:
                if not set(scopes) <= set(chain.scopes):
                    raise OAuthError(400, "invalid_scope", "Value passed for the scope was invalid.")
                chain.scopes = tuple(s for s in chain.scopes if s in scopes)
            record.spent_at = self.now()
            chain.refreshes += 1
            answer = self._issue(chain)
            self._event("refreshed", chain)
            return answer

    def revoke(self, client: Client, token: str) -> None:
        """`POST /2/oauth2/revoke`: a refresh token ends its chain; an access token just itself."""
        with self.lock:
            refresh = self.refresh_tokens.get(token)
            if refresh is not None:
                chain = self.chains[refresh.chain_id]
                if chain.client_id == client.client_id and chain.status == "active":
                    self._revoke_chain(chain, reason="revoke_endpoint")
                return
            access = self.access_tokens.get(token)
            if access is not None:
                chain = self.chains[access.chain_id]
                if chain.client_id == client.client_id and not access.revoked:
                    access.revoked = True
                    self._event("revoked", chain, reason="revoke_endpoint", token_type="access_token")

    def revoke_user(self, user_id: str, client_id: str | None = None) -> int:
        """Revoke every active chain of a user (the user disconnected the app at X)."""
        with self.lock:
            hit = [c for c in self.chains.values()
                   if c.user_id == user_id and c.status == "active" and client_id in (None, c.client_id)]
            for chain in hit:
                self._revoke_chain(chain, reason="control")
            return len(hit)

    def _revoke_chain(self, chain: Chain, reason: str) -> None:
        """End a chain: its access tokens stop working, its refresh tokens too."""
        chain.status, chain.revoked_reason = "revoked", reason
        for access in self.access_tokens.values():
            if access.chain_id == chain.id:
                access.revoked = True
        self._event("revoked", chain, reason=reason)

    def authenticate(self, token: str) -> tuple[Chain, User] | None:
        """The chain and user behind a live access token, or None (→ X's 401)."""
        with self.lock:
            access = self.access_tokens.get(token)
            if access is None or access.revoked or self.now() >= access.expires_at:
                return None
            chain = self.chains[access.chain_id]
            if chain.status != "active":
                return None
            return chain, self.users[chain.user_id]

    # --- events ---------------------------------------------------------------------

    def _event(self, kind: str, chain: Chain, **detail: Any) -> None:
        """Record a token event for `chain`."""
        self.events.append(self._event_row(kind, chain, **detail))

    def _event_row(self, kind: str, chain: Chain | None, **detail: Any) -> dict[str, Any]:
        """A token event as exposed in `state.token_events`."""
        row: dict[str, Any] = {"seq": len(self.events) + 1, "kind": kind, "at": self.now(),
                               "chain": chain.id if chain else None,
                               "client_id": chain.client_id if chain else None,
                               "user_id": chain.user_id if chain else None,
                               "username": self.users[chain.user_id].username if chain else None}
        row.update(detail)
        return row

    # --- ids ------------------------------------------------------------------------

    def snowflake(self) -> str:
        """An id like X's: time-ordered, numeric, strictly increasing."""
        with self.lock:
            value = (int(self.now() * 1000) - TWITTER_EPOCH_MS) << 22
            value = max(value, self._last_snowflake + 1)
            self._last_snowflake = value
            return str(value)

    # --- posts ----------------------------------------------------------------------

    def duplicate_of(self, user_id: str, raw_text: str) -> Post | None:
        """A live post of the user with the same text within the duplicate window."""
        with self.lock:
            since = self.now() - self.options.duplicate_window
            for post in reversed(self.recent_texts.get((user_id, raw_text), [])):
                if post.deleted_at is None and post.created_at >= since:
                    return post
            return None

    def store_post(self, post: Post) -> None:
        """Keep a post (the caller did the checks under the same lock)."""
        with self.lock:
            self.posts[post.id] = post
            self.posts_by_user[post.author_id].append(post)
            self.recent_texts.setdefault((post.author_id, post.raw_text), []).append(post)

    def rewrite(self, raw_text: str) -> str:
        """The text as X returns it: & < > escaped, links as t.co links (when switched on).

        The links are the ones `bot.text` finds, so the sandbox shortens what the bot's
        length count treats as a link.
        """
        if not self.options.text_rewrite:
            return raw_text
        out, cursor = [], 0
        for url in extract_urls(raw_text):
            start = raw_text.find(url, cursor)
            if start < 0:
                continue
            out += [_escape(raw_text[cursor:start]), self.short_link()]
            cursor = start + len(url)
        out.append(_escape(raw_text[cursor:]))
        return "".join(out)

    def short_link(self) -> str:
        """A fresh `https://t.co/<10 alphanumerics>` link."""
        with self.lock:
            return "https://t.co/" + "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(10))

    def returned_text(self, raw_text: str, media_ids: tuple[str, ...]) -> str:
        """The text X returns: rewritten, and for a post with media one link more at the end."""
        text = self.rewrite(raw_text)
        if media_ids and self.options.text_rewrite:
            text = (text + " " if text else "") + self.short_link()
        return text

    @staticmethod
    def mentions(text: str) -> set[str]:
        """The lower-cased @names in a text (who a post "summons")."""
        return {m.lower() for m in _MENTION.findall(text)}

    # --- media ----------------------------------------------------------------------

    def add_media(self, owner_id: str, category: str, media_type: str) -> Media:
        """A new media id and key for an upload by `owner_id`."""
        with self.lock:
            media_id = self.snowflake()
            prefix = {"tweet_video": "7", "amplify_video": "7", "tweet_gif": "16"}.get(category, "3")
            now = self.now()
            media = Media(media_id, f"{prefix}_{media_id}", owner_id, category, media_type, now,
                          expires_at=now + MEDIA_LIFETIME)
            self.media[media_id] = media
            return media

    def expire_media(self, media_id: str) -> Media:
        """Make a media id expire now (KeyError if unknown): X no longer takes it in a post."""
        with self.lock:
            media = self.media[media_id]
            media.expires_at = min(media.expires_at, self.now())
            return media

    def media_by_key(self, media_key: str) -> Media | None:
        """A media record by its media key ("3_<id>")."""
        _, _, media_id = media_key.partition("_")
        with self.lock:
            media = self.media.get(media_id)
            return media if media is not None and media.media_key == media_key else None

    # --- faults ---------------------------------------------------------------------

    def add_fault(self, raw: dict[str, Any]) -> Fault:
        """Register a fault from control-API JSON; ValueError when malformed."""
        endpoint = raw.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise ValueError("endpoint is required, e.g. \"POST /2/tweets\" or \"*\"")
        mode = raw.get("mode") or ("status" if "status" in raw else "latency" if raw.get("latency") else None)
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {list(FAULT_MODES)}")
        status = int(raw.get("status", 503))
        probability = float(raw.get("probability", 1.0))
        latency = float(raw.get("latency", 0.0))
        times = raw.get("times")
        after = int(raw.get("after", 0))
        if not 100 <= status <= 599 or not 0.0 <= probability <= 1.0 or latency < 0 or after < 0:
            raise ValueError("status must be 100-599, probability 0-1, latency and after ≥ 0")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive whole number or null")
        with self.lock:
            fault = Fault(f"f{self._next_fault}", endpoint, mode, status, probability, latency, times, after)
            self._next_fault += 1
            self.faults.append(fault)
            return fault

    def take_fault(self, endpoint: str) -> Fault | None:
        """The fault that fires for this request, if any (counting it)."""
        with self.lock:
            if not self.faults:
                return None
            for fault in self.faults:
                if fault.endpoint not in (endpoint, "*"):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.probability < 1.0 and self.rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                return fault
            return None

    def count_request(self, endpoint: str) -> None:
        """Count a request to an X endpoint (for `state.request_counts`)."""
        with self.lock:
            self.request_counts[endpoint] = self.request_counts.get(endpoint, 0) + 1

    # --- rate limits ----------------------------------------------------------------

    def windows(self, endpoint: str) -> tuple[Window, ...]:
        """The endpoint's effective windows: the tier's, unless overridden; none when switched off."""
        if not self.options.rate_limits:
            return ()
        override = self.options.limit_overrides.get(endpoint)
        if override is not None:
            return tuple(Window.from_json(w) for w in override)
        return tier_table(self.options.tier).get(endpoint, ())

    def check_rate(self, endpoint: str, client_id: str, user_id: str) -> tuple[bool, dict[str, str]]:
        """Count one request of the caller in the endpoint's windows: (allowed, headers)."""
        with self.lock:
            windows = self.windows(endpoint)
            if not windows:
                return True, {}
            return self.limiter.check(endpoint, windows, client_id, user_id, self.now())

    # --- the state, for GET /_sandbox/state -------------------------------------------

    def snapshot(self, sections: set[str] | None = None) -> dict[str, Any]:
        """Everything a test may want to check, as JSON (no token values)."""
        with self.lock:
            now = self.now()
            builders = {
                "config": self.options.as_json,
                "users": lambda: [u.as_json() for u in self.users.values()],
                "clients": lambda: [c.as_json() for c in self.clients.values()],
                "posts": lambda: [self.post_row(p) for p in self.posts.values()],
                "token_events": lambda: list(self.events),
                "reuse_count": lambda: self.reuse_count,
                "chains": lambda: [self.chain_row(c, now) for c in self.chains.values()],
                "media": lambda: [{**m.row(), "owner_id": m.owner_id, "category": m.category, "size": m.size,
                                   "state": m.state, "expires_at": m.expires_at}
                                  for m in self.media.values()],
                "faults": lambda: [f.as_json() for f in self.faults],
                "request_counts": lambda: dict(self.request_counts),
            }
            state: dict[str, Any] = {"now": now, "clock_offset": self.clock_offset}
            for name, build in builders.items():
                if sections is None or name in sections:
                    state[name] = build()
            return state

    def post_row(self, post: Post) -> dict[str, Any]:
        """A post as exposed in `state.posts`."""
        return {"id": post.id, "author_id": post.author_id, "username": self.users[post.author_id].username,
                "text": post.raw_text, "x_text": post.text, "created_at": iso(post.created_at),
                "created_at_ts": post.created_at, "client_id": post.client_id, "reply_to": post.reply_to,
                "conversation_id": post.conversation_id, "media_ids": list(post.media_ids),
                "media": [self.media[m].row() for m in post.media_ids if m in self.media], "poll": post.poll,
                "deleted": post.deleted_at is not None}

    def chain_row(self, chain: Chain, now: float) -> dict[str, Any]:
        """A chain as exposed in `state.chains` (no token values)."""
        return {"id": chain.id, "client_id": chain.client_id, "user_id": chain.user_id,
                "username": self.users[chain.user_id].username, "scopes": list(chain.scopes),
                "status": chain.status, "revoked_reason": chain.revoked_reason, "refreshes": chain.refreshes,
                "access_expires_at": chain.access_expires_at,
                "access_expired": now >= chain.access_expires_at}


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636 check: S256 = BASE64URL(SHA256(verifier)) without padding; plain = equal."""
    if not _VERIFIER.match(verifier or ""):
        return False
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return secrets.compare_digest(base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"), challenge)
    return secrets.compare_digest(verifier, challenge)


def _escape(text: str) -> str:
    """X's entity escaping of post text (only these three characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _token(length: int) -> str:
    """An opaque token of X's look (URL-safe characters)."""
    return secrets.token_urlsafe(length)[:length]


def current_world() -> World:
    """The running app's world (views call this; the app factory puts it there)."""
    from flask import current_app

    return current_app.extensions["sandbox.world"]


__all__ = ["World", "SandboxConfig", "ClientSpec", "Options", "User", "Client", "Post", "Media", "Fault",
           "KNOWN_SCOPES", "DEFAULT_GRANT_SCOPES", "FAULT_MODES", "pkce_matches", "iso", "parse_iso",
           "current_world", "ClientSpec", "MEDIA_KINDS", "MEDIA_LIFETIME", "Chain"]
