"""Consent and tokens: clients, authorization codes, token chains, refresh rotation, revocation.

One consent is one `Chain`: the code exchange (or the control API's direct grant)
starts it, every refresh continues it with a new access and refresh token, and the
refresh token just spent is never good again. Spending it twice is reuse: counted,
recorded, and (by default, `reuse_revokes_chain`) the end of the chain, as X does.
Every issue, refresh, refusal and revocation is a token event, in order.

Each public method holds the world's lock for its whole read-modify-write, so two
clients racing with one refresh token get one new pair and one refusal, as at X.
"""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any

from sandbox.errors import INVALID_CODE, INVALID_TOKEN, VERIFIER_MISMATCH, OAuthError
from sandbox.people import People
from sandbox.records import AccessToken, AuthCode, Chain, Client, RefreshToken
from sandbox.shared import Part, Shared

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
REDIRECT_MISMATCH = "Value passed for the redirect uri did not match the uri of the authorization code."


class Consent(Part):
    """Registered clients, outstanding codes, token chains and their events."""

    def __init__(self, shared: Shared, people: People) -> None:
        self._people = people
        super().__init__(shared)

    def reset(self) -> None:
        """No clients, codes, chains, tokens or events."""
        with self._lock:
            self._clients: dict[str, Client] = {}
            self._codes: dict[str, AuthCode] = {}
            self._chains: dict[str, Chain] = {}
            self._access: dict[str, AccessToken] = {}
            self._refresh: dict[str, RefreshToken] = {}
            self._events: list[dict[str, Any]] = []
            self._reuse_count = 0
            self._next_chain = 1

    # --- clients --------------------------------------------------------------------

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
        with self._lock:
            client = self._clients.get(client_id)
            if client is None:
                secret = None if client_secret is ... else client_secret
                client = Client(client_id, secret or None, [])  # type: ignore[arg-type]
            elif client_secret is not ...:
                client.client_secret = client_secret or None  # type: ignore[assignment]
            merged = client.redirect_uris + [u for u in uris if u not in client.redirect_uris]
            if len(merged) > MAX_REDIRECT_URIS:
                raise ValueError(f"at most {MAX_REDIRECT_URIS} callback URLs per client")
            client.redirect_uris = merged
            self._clients[client_id] = client
            return client

    def client(self, client_id: str) -> Client | None:
        """A registered client by id."""
        with self._lock:
            return self._clients.get(client_id)

    def clients(self) -> list[Client]:
        """Every registered client, first registered first."""
        with self._lock:
            return list(self._clients.values())

    # --- authorization codes --------------------------------------------------------

    def issue_code(self, client_id: str, user_id: str, redirect_uri: str, scopes: tuple[str, ...],
                   challenge: str, method: str) -> str:
        """A fresh authorization code for a consent just given."""
        with self._lock:
            code = _token(64)
            self._codes[code] = AuthCode(code, client_id, user_id, redirect_uri, scopes, challenge, method,
                                         self._shared.now())
            return code

    def redeem_code(self, client: Client, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """Exchange a code for tokens: once, within its lifetime, same client, URI and PKCE."""
        with self._lock:
            grant = self._codes.get(code)
            if grant is None or grant.used or grant.client_id != client.client_id:
                raise OAuthError(400, "invalid_request", INVALID_CODE)
            # A code is spent by any attempt, right or wrong: a leaked code is worth one try.
            grant.used = True
            if self._shared.now() > grant.issued_at + self._shared.options.code_lifetime:
                raise OAuthError(400, "invalid_request", INVALID_CODE)
            if redirect_uri != grant.redirect_uri:
                raise OAuthError(400, "invalid_request", REDIRECT_MISMATCH)
            if not pkce_matches(verifier, grant.challenge, grant.method):
                raise OAuthError(400, "invalid_request", VERIFIER_MISMATCH)
            return self._new_chain(client.client_id, grant.user_id, grant.scopes, via="code")

    # --- tokens ---------------------------------------------------------------------

    def direct_grant(self, client_id: str, user_id: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        """A token pair without the browser (control API: tests of many accounts)."""
        with self._lock:
            if client_id not in self._clients:
                raise ValueError(f"unknown client {client_id!r}")
            if self._people.by_id(user_id) is None:
                raise ValueError(f"unknown user {user_id!r}")
            unknown = [s for s in scopes if s not in KNOWN_SCOPES]
            if unknown or not scopes:
                raise ValueError(f"unknown scopes {unknown}" if unknown else "scopes must not be empty")
            return self._new_chain(client_id, user_id, scopes, via="grant")

    def _new_chain(self, client_id: str, user_id: str, scopes: tuple[str, ...], via: str) -> dict[str, Any]:
        """Start a token chain (one consent) and issue its first pair."""
        chain = Chain(id=f"c{self._next_chain}", client_id=client_id, user_id=user_id, scopes=scopes,
                      created_at=self._shared.now())
        self._next_chain += 1
        self._chains[chain.id] = chain
        answer = self._issue(chain)
        self._event("issued", chain, via=via)
        return answer

    def _issue(self, chain: Chain) -> dict[str, Any]:
        """A new access token (and refresh token with offline.access) on `chain`: X's answer."""
        now = self._shared.now()
        lifetime = self._shared.options.access_token_lifetime
        access = AccessToken(_token(64), chain.id, now + lifetime)
        self._access[access.token] = access
        chain.access_token, chain.access_expires_at = access.token, access.expires_at
        answer: dict[str, Any] = {"token_type": "bearer", "expires_in": lifetime,
                                  "access_token": access.token, "scope": " ".join(chain.scopes)}
        if "offline.access" in chain.scopes:
            refresh = RefreshToken(_token(64), chain.id, now)
            self._refresh[refresh.token] = refresh
            chain.refresh_token = refresh.token
            answer["refresh_token"] = refresh.token
        return answer

    def refresh(self, client: Client, token: str, scopes: tuple[str, ...] | None) -> dict[str, Any]:
        """The refresh grant: rotate, or refuse (recording every refused reuse)."""
        with self._lock:
            record = self._refresh.get(token)
            chain = self._chains.get(record.chain_id) if record else None
            if record is None or chain is None or chain.client_id != client.client_id:
                self._events.append(self._event_row("refresh_refused", None, reason="unknown"))
                raise self._refused()
            self._check_refreshable(record, chain)
            if scopes:
                if not set(scopes) <= set(chain.scopes):
                    raise OAuthError(400, "invalid_scope", "Value passed for the scope was invalid.")
                chain.scopes = tuple(s for s in chain.scopes if s in scopes)
            record.spent_at = self._shared.now()
            chain.refreshes += 1
            answer = self._issue(chain)
            self._event("refreshed", chain)
            return answer

    def _check_refreshable(self, record: RefreshToken, chain: Chain) -> None:
        """Refuse a spent (reuse: maybe revoking the chain), revoked or expired refresh token."""
        if record.spent_at is not None:
            self._reuse_count += 1
            self._event("reuse_refused", chain, spent_at=record.spent_at)
            if self._shared.options.reuse_revokes_chain and chain.status == "active":
                self._revoke_chain(chain, reason="reuse")
            raise self._refused()
        if chain.status != "active":
            self._event("refresh_refused", chain, reason="revoked")
            raise self._refused()
        lifetime = self._shared.options.refresh_token_lifetime
        if lifetime is not None and self._shared.now() > record.issued_at + lifetime:
            self._event("refresh_refused", chain, reason="expired")
            raise self._refused()

    def _refused(self) -> OAuthError:
        """X's refusal of a refresh token, with the error name the `refresh_error` switch picks."""
        return OAuthError(400, self._shared.options.refresh_error, INVALID_TOKEN)

    def revoke(self, client: Client, token: str) -> None:
        """`POST /2/oauth2/revoke`: a refresh token ends its chain; an access token just itself."""
        with self._lock:
            refresh = self._refresh.get(token)
            if refresh is not None:
                chain = self._chains[refresh.chain_id]
                if chain.client_id == client.client_id and chain.status == "active":
                    self._revoke_chain(chain, reason="revoke_endpoint")
                return
            access = self._access.get(token)
            if access is not None:
                chain = self._chains[access.chain_id]
                if chain.client_id == client.client_id and not access.revoked:
                    access.revoked = True
                    self._event("revoked", chain, reason="revoke_endpoint", token_type="access_token")

    def revoke_user(self, user_id: str, client_id: str | None = None) -> int:
        """Revoke every active chain of a user (the user disconnected the app at X)."""
        with self._lock:
            hit = [c for c in self._chains.values()
                   if c.user_id == user_id and c.status == "active" and client_id in (None, c.client_id)]
            for chain in hit:
                self._revoke_chain(chain, reason="control")
            return len(hit)

    def _revoke_chain(self, chain: Chain, reason: str) -> None:
        """End a chain: its access tokens stop working, its refresh tokens too."""
        chain.status, chain.revoked_reason = "revoked", reason
        for access in self._access.values():
            if access.chain_id == chain.id:
                access.revoked = True
        self._event("revoked", chain, reason=reason)

    def authenticate(self, token: str) -> Chain | None:
        """The active chain behind a live access token, or None (→ X's 401)."""
        with self._lock:
            access = self._access.get(token)
            if access is None or access.revoked or self._shared.now() >= access.expires_at:
                return None
            chain = self._chains[access.chain_id]
            if chain.status != "active":
                return None
            return chain

    # --- events and rows, for GET /_sandbox/state --------------------------------------

    def _event(self, kind: str, chain: Chain, **detail: Any) -> None:
        """Record a token event for `chain`."""
        self._events.append(self._event_row(kind, chain, **detail))

    def _event_row(self, kind: str, chain: Chain | None, **detail: Any) -> dict[str, Any]:
        """A token event as exposed in `state.token_events`."""
        row: dict[str, Any] = {"seq": len(self._events) + 1, "kind": kind, "at": self._shared.now(),
                               "chain": chain.id if chain else None,
                               "client_id": chain.client_id if chain else None,
                               "user_id": chain.user_id if chain else None,
                               "username": self._people.username(chain.user_id) if chain else None}
        row.update(detail)
        return row

    def events(self) -> list[dict[str, Any]]:
        """Every token event so far, oldest first."""
        with self._lock:
            return list(self._events)

    def reuse_count(self) -> int:
        """How many times a spent refresh token was sent again."""
        with self._lock:
            return self._reuse_count

    def chain_rows(self, now: float) -> list[dict[str, Any]]:
        """Every chain as exposed in `state.chains` (no token values)."""
        with self._lock:
            return [self._chain_row(c, now) for c in self._chains.values()]

    def _chain_row(self, chain: Chain, now: float) -> dict[str, Any]:
        """One chain's row."""
        return {"id": chain.id, "client_id": chain.client_id, "user_id": chain.user_id,
                "username": self._people.username(chain.user_id), "scopes": list(chain.scopes),
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


def _token(length: int) -> str:
    """An opaque token of X's look (URL-safe characters)."""
    return secrets.token_urlsafe(length)[:length]
