"""The X client seam: every call tweetbot makes to X (or the sandbox) goes through here.

Posts, media and the token endpoint are called through the transport's cheap path
(`bot.transport`); the reads whose answers tweepy parses go through tweepy's client,
its session attached to the same transport. Every call has a timeout. X's answers and
tweepy's and requests' exceptions are translated here, at the edge, into the small
error tree below, so the rest of the bot handles X's failures by kind.
"""
from __future__ import annotations

import hmac
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
import tweepy

from bot.models import MediaRef, utcnow
from bot.settings import Settings
from bot.transport import TWEEPY_API_BASE, Transport

TOKEN_URL = TWEEPY_API_BASE + "/2/oauth2/token"
REVOKE_URL = TWEEPY_API_BASE + "/2/oauth2/revoke"
USER_AGENT = f"Python/{platform.python_version()} Requests/{requests.__version__} Tweepy/{tweepy.__version__}"
"""What tweepy's own client says it is, on the requests that go around it."""


# -- errors -------------------------------------------------------------------------

class XError(Exception):
    """Base of every failure talking to X; `status` is the HTTP status when there was one."""

    #: Whether a post's request answered so counts toward MAX_ATTEMPTS: not when X asks us to wait (429,
    #: a usage cap), so waiting never uses up a post's attempts (nor does uploading media again: the
    #: dispatcher's `_counted`).
    counts_as_attempt = True

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class XUnavailable(XError):
    """X did not answer clearly (5xx, timeout, dropped connection): the request may have taken effect."""


class XNoAnswer(XUnavailable):
    """No answer came at all (a timeout, a dropped connection): the request may still be taking effect at
    X, and may land after its sender gave up (a 5xx is an answer: X was done with the request by then)."""


class XUnauthorized(XError):
    """401: the access token is expired, revoked or unknown."""


class XForbidden(XError):
    """403: X refuses this request for good (duplicate content, missing scope, policy)."""


class XDuplicate(XForbidden):
    """403 for duplicate content: X refuses the same text again for a while (and an earlier request for
    the same post may be the one X kept)."""


class XBadRequest(XError):
    """400: X refuses the request as malformed (too long, unknown field)."""


class XMediaExpired(XBadRequest):
    """400 for media ids X does not know (expired, or lost): uploading the files again mends that."""


class XNotFound(XError):
    """404: no such resource."""


class XRateLimited(XError):
    """429: too many requests until `reset_at`."""

    counts_as_attempt = False

    def __init__(self, message: str, reset_at: datetime, status: int = 429) -> None:
        super().__init__(message, status)
        self.reset_at = reset_at


class XUsageCapped(XError):
    """402 or the 429 usage cap: the app's plan has no room left; a person must act."""

    counts_as_attempt = False


class TokenRejected(XError):
    """The token endpoint refused a code or refresh token as invalid, spent or revoked."""


class ClientRejected(XError):
    """The token endpoint refused our client credentials (wrong id or secret): a configuration error."""


class XMediaFailed(XError):
    """X took the upload but could not process it (`processing_info.state` is `failed`): its reason."""


# -- tokens -------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint grants."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime
    scopes: tuple[str, ...]

    @classmethod
    def from_response(cls, token: dict[str, Any], received_at: datetime) -> TokenSet:
        scope = token.get("scope") or ()
        scopes = tuple(scope.split() if isinstance(scope, str) else scope)
        return cls(token["access_token"], token.get("refresh_token"),
                   received_at + timedelta(seconds=_lifetime(token.get("expires_in"))), scopes)


ACCESS_TOKEN_LIFETIME = 7200.0  # seconds: X's two hours (x-api-facts), where an answer does not say


def _lifetime(expires_in: Any) -> float:
    """The access token's lifetime as X's answer gives it; X's two hours where it gives none we can read
    (X has spent the refresh token by then: nothing in its answer may lose the new pair)."""
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return ACCESS_TOKEN_LIFETIME
    return seconds if 0 < seconds <= 10 * 365 * 86400 else ACCESS_TOKEN_LIFETIME


@dataclass(frozen=True)
class ConsentStart:
    """Where to send the browser, and what the callback must be checked against."""

    url: str
    state: str
    code_verifier: str


def states_match(expected: str | None, received: str | None) -> bool:
    """Constant-time comparison of the OAuth `state`."""
    return bool(expected) and bool(received) and hmac.compare_digest(str(expected), str(received))


def allow_local_http(settings: Settings) -> None:
    """oauthlib refuses to build an http authorize URL; the local sandbox speaks http on loopback, so
    allow that case only."""
    urls = (settings.authorize_url, settings.api_base)
    if any(urlsplit(url).scheme == "http" and urlsplit(url).hostname in _LOOPBACK for url in urls):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class XClient:
    """Calls the configured X (or sandbox): the OAuth token endpoint, and the API as one user (`api`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.transport = Transport(settings.api_base, settings.http_timeout, 2 * settings.post_concurrency)
        allow_local_http(settings)

    # -- OAuth ----------------------------------------------------------------------

    def start_consent(self) -> ConsentStart:
        """A fresh PKCE verifier and state, and the authorize URL that carries them (built by oauthlib)."""
        settings = self.settings
        handler = tweepy.OAuth2UserHandler(client_id=settings.x_client_id, redirect_uri=settings.redirect_uri,
                                           scope=list(settings.scopes), client_secret=settings.x_client_secret)
        verifier = handler._client.create_code_verifier(128)
        challenge = handler._client.create_code_challenge(verifier, "S256")
        url, state = handler.authorization_url(settings.authorize_url, code_challenge=challenge,
                                               code_challenge_method="S256")
        return ConsentStart(url, state, verifier)

    def exchange_code(self, code: str, code_verifier: str) -> TokenSet:
        """Trade the callback's code (with the flow's verifier) for tokens. The caller has checked `state`."""
        received_at = utcnow()
        token = self._token_call({"grant_type": "authorization_code", "code": code, "code_verifier": code_verifier,
                                  "redirect_uri": self.settings.redirect_uri, "client_id": self.settings.x_client_id})
        return TokenSet.from_response(token, received_at)

    def refresh(self, refresh_token: str, now: datetime | None = None) -> TokenSet:
        """Spend `refresh_token` for a new pair. The caller must store the result at once.

        No scope is sent: the new pair keeps what the account granted, even if X_SCOPES
        changed since (the scopes X reports are stored). `now` is the caller's clock: the
        new token's expiry is counted from it.
        """
        received_at = now or utcnow()
        token = self._token_call(self._identified({"grant_type": "refresh_token", "refresh_token": refresh_token}))
        return TokenSet.from_response(token, received_at)

    def revoke(self, token: str) -> None:
        """Revoke a token at X (disconnect)."""
        response = self._oauth_post(REVOKE_URL, self._identified({"token": token, "token_type_hint": "access_token"}))
        if response.status_code >= 400:
            raise XError(f"revoke refused: {response.status_code} {response.text[:200]}", response.status_code)

    def _oauth_post(self, url: str, data: dict[str, str]) -> requests.Response:
        """A form to one of X's OAuth endpoints, as our client; its answer, unless X failed (5xx) or asks
        us to wait (429)."""
        response = _call(lambda: self.transport.request("POST", url, headers=_FORM_HEADERS, data=data,
                                                        auth=self._basic_auth()))
        return _raise_for_server_error(response)

    def _identified(self, data: dict[str, str]) -> dict[str, str]:
        """`data` with our client id, as a public client (no secret) says who it is."""
        return data if self.settings.confidential_client else {**data, "client_id": self.settings.x_client_id}

    def _basic_auth(self) -> tuple[str, str] | None:
        """A confidential client's credentials, which X wants as Basic auth (x-api-facts §1)."""
        secret = self.settings.x_client_secret
        return (self.settings.x_client_id, secret) if secret else None

    def _token_call(self, data: dict[str, str]) -> dict[str, Any]:
        """POST `data` to the token endpoint; X's answer, or the error that says what it means."""
        response = self._oauth_post(TOKEN_URL, data)
        body = _json(response)
        error = body.get("error")
        description = str(body.get("error_description") or error or f"no access token (HTTP {response.status_code})")
        if error in ("unauthorized_client", "invalid_client"):
            raise ClientRejected(f"X refused the client credentials: {description}", response.status_code)
        if error in ("invalid_request", "invalid_grant"):
            raise TokenRejected(f"X refused the token: {description}", response.status_code)
        if error or not isinstance(body.get("access_token"), str):
            # Anything else (a proxy's HTML page, a garbled answer) says nothing about the token.
            raise XUnavailable(f"X's token answer made no sense: {description}", response.status_code)
        return body

    # -- API ----------------------------------------------------------------------------

    def api(self, access_token: str) -> XApi:
        """The API as the user whose access token this is."""
        return XApi(self.transport, access_token)


_FORM_HEADERS = {"Accept": "application/json", "User-Agent": USER_AGENT,
                 "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}


class XApi:
    """The endpoints the bot uses, as one user (OAuth 2.0 user context: `user_auth=False`).

    A post and the media calls go through `request` (the transport's cheap path); the reads
    whose answers tweepy parses go through its client, built on first use.
    """

    def __init__(self, transport: Transport, access_token: str) -> None:
        self.transport = transport
        self.headers = {"Authorization": f"Bearer {access_token}", "User-Agent": USER_AGENT}
        self.access_token = access_token
        self._client: tweepy.Client | None = None

    @property
    def client(self) -> tweepy.Client:
        if self._client is None:
            self._client = tweepy.Client(bearer_token=self.access_token)
            self.transport.attach(self._client.session)
        return self._client

    def request(self, method: str, path: str, **parts: Any) -> dict[str, Any]:
        """One call to X's API (`path`: "/2/…"; `parts` as `Transport.request` takes them) with the timeout,
        transport and error translation of every call; X's answer."""
        response = _api_call(lambda: _raise_like_tweepy(self.transport.request(
            method, TWEEPY_API_BASE + path, headers=self.headers, **parts)))
        return _json(response)

    def me(self) -> dict[str, str]:
        response = _api_call(lambda: self.client.get_me(user_auth=False))
        return {"id": str(response.data.id), "username": response.data.username, "name": response.data.name}

    def create_post(self, text: str, reply_to: str | None = None, media_ids: list[str] | None = None,
                    options: dict[str, Any] | None = None) -> str:
        """Post `text` (as a reply to `reply_to` in a thread, with uploaded media, and X's other body fields
        in `options`: a poll, reply_settings, community_id…); the new post's id."""
        body: dict[str, Any] = {"text": text, **(options or {})}
        if reply_to:
            body["reply"] = {"in_reply_to_tweet_id": reply_to}
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        return str(self.request("POST", "/2/tweets", json=body)["data"]["id"])

    def upload(self, ref: MediaRef, data: bytes, should_stop: Callable[[], bool] = lambda: False,
               sleep: Callable[[float], None] = time.sleep) -> Uploaded:
        """Upload one file as X's v2 upload wants it, with its alt text; X's id for it and its expiry.

        Images go in one request; GIFs and videos in chunks, then X's processing is
        polled as `check_after_secs` says. `XMediaFailed` when X cannot process it.
        """
        return MediaUpload(self, ref, data, should_stop, sleep).run()

    def media_request(self, method: str, path: str, **parts: Any) -> dict[str, Any]:
        """One call to X's media endpoints: the `data` of its answer."""
        return self.request(method, path, **parts).get("data") or {}

    def edit_history(self, post_id: str) -> list[str] | None:
        """The ids of the post's versions, oldest first (more than one: a person edited it), or None when
        X no longer has it (a post read, billed as one)."""
        response = _api_call(lambda: self.client.get_tweet(post_id, tweet_fields=["edit_history_tweet_ids"],
                                                           user_auth=False))
        if response.data is None:
            return None
        return [str(i) for i in (response.data.edit_history_tweet_ids or [post_id])]

    def delete_post(self, post_id: str) -> None:
        _api_call(lambda: self.client.delete_tweet(post_id, user_auth=False))

    def recent_posts(self, user_id: str, since: datetime | None = None,
                     max_results: int = 100) -> list[dict[str, str]]:
        """The user's posts, newest first (since `since`, when given)."""
        start = None if since is None else since.astimezone(timezone.utc).replace(microsecond=0)
        response = _api_call(lambda: self.client.get_users_tweets(
            user_id, max_results=max_results, start_time=start, user_auth=False))
        if not response.data and response.errors:
            # X reports a user it cannot find as a 200 with "Not Found Error" entries (some logs
            # show a 404): the same XNotFound either way, never "no posts" (that would resend).
            raise XNotFound(_errors_detail(response.errors), 404)
        return [{"id": str(post.id), "text": post.text} for post in response.data or []]

    def metrics_by_ids(self, ids: list[str], non_public: bool) -> list[dict[str, Any]]:
        """The metrics of up to 100 posts (`GET /2/tweets?ids=`): each found post's id and its
        `public_metrics` (and `non_public_metrics`, if asked and X shows them); posts gone are left out."""
        response = _api_call(lambda: self.client.get_tweets(
            ids, tweet_fields=_metrics_fields(non_public), **POLL_EXPANSION, user_auth=False))
        return _metrics_answer(response)

    def metrics_on_timeline(self, user_id: str, since_id: str, until_id: str, max_results: int, non_public: bool,
                            page: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """The metrics of the user's posts between two ids, one page of `max_results` (5–100) newest
        first (`GET /2/users/:id/tweets`: an owned read when the user owns the app); the next page's token."""
        response = _api_call(lambda: self.client.get_users_tweets(
            user_id, since_id=since_id, until_id=until_id, max_results=max_results, pagination_token=page,
            tweet_fields=_metrics_fields(non_public), **POLL_EXPANSION, user_auth=False))
        return _metrics_answer(response), (response.meta or {}).get("next_token")


def _metrics_fields(non_public: bool) -> list[str]:
    return ["public_metrics", *(["non_public_metrics"] if non_public else [])]


POLL_EXPANSION: dict[str, Any] = {"expansions": ["attachments.poll_ids"], "poll_fields": ["options", "voting_status"]}


def _metrics_answer(response: Any) -> list[dict[str, Any]]:
    """Each post of a read: its id, its metrics, and its poll's options with their votes (if it has one)."""
    polls = {str(poll.id): poll for poll in (response.includes or {}).get("polls", [])}
    found = []
    for post in response.data or []:
        poll_ids = (post.attachments or {}).get("poll_ids") or []
        poll = polls.get(str(poll_ids[0])) if poll_ids else None
        found.append({"id": str(post.id), "public_metrics": dict(post.public_metrics or {}),
                      "non_public_metrics": dict(post.non_public_metrics or {}),
                      "poll": [{"label": o["label"], "votes": int(o.get("votes", 0))} for o in poll.options]
                      if poll is not None else []})
    return found


# -- media upload ---------------------------------------------------------------------

SEGMENT_BYTES = 4 * 1024 * 1024
"""Chunk size: under the 5 MB per segment X's chunked upload has always taken, 128 segments
for a 512 MB video (X numbers them 0–999), and a lost segment costs little to resend."""
SEGMENT_TRIES = 3  # a segment that X answers 5xx is sent again, this many times in all
MAX_PROCESSING_WAIT = 600.0  # seconds of STATUS polling before the upload counts as unanswered
CATEGORIES = {"image": "tweet_image", "gif": "tweet_gif", "video": "tweet_video"}


@dataclass(frozen=True)
class Uploaded:
    """X's id for an uploaded file, usable in a post until `expires_at`."""

    media_id: str
    expires_at: datetime


class MediaUpload:
    """One file's way to X: simple or chunked, then processing, then its alt text."""

    def __init__(self, api: XApi, ref: MediaRef, data: bytes, should_stop: Callable[[], bool],
                 sleep: Callable[[float], None]) -> None:
        self.api, self.ref, self.data = api, ref, data
        self.should_stop, self.sleep = should_stop, sleep

    def run(self) -> Uploaded:
        started = utcnow()
        media = self._simple() if self.ref.kind == "image" else self._chunked()
        media = self._processed(media)
        if self.ref.alt:
            self.api.media_request("POST", "/2/media/metadata", json={
                "id": media["id"], "metadata": {"alt_text": {"text": self.ref.alt}}})
        lasts = timedelta(seconds=int(media.get("expires_after_secs") or 86400))
        return Uploaded(str(media["id"]), started + lasts)

    def _simple(self) -> dict[str, Any]:
        return self.api.media_request("POST", "/2/media/upload", data={"media_category": "tweet_image"},
                                      files={"media": (self.ref.name or "media", self.data, self.ref.mime)})

    def _chunked(self) -> dict[str, Any]:
        started = self.api.media_request("POST", "/2/media/upload/initialize", json={
            "media_type": self.ref.mime, "total_bytes": len(self.data), "media_category": CATEGORIES[self.ref.kind]})
        media_id = str(started["id"])
        for index, offset in enumerate(range(0, len(self.data), SEGMENT_BYTES)):
            if self.should_stop():
                raise XUnavailable("the upload was interrupted: the worker is stopping")
            self._append(media_id, index, self.data[offset:offset + SEGMENT_BYTES])
        return self.api.media_request("POST", f"/2/media/upload/{media_id}/finalize")

    def _append(self, media_id: str, index: int, segment: bytes) -> None:
        """One segment; a 5xx or a dropped connection sends it again (X keeps the last copy of an index)."""
        for tries in range(1, SEGMENT_TRIES + 1):
            try:
                self.api.media_request("POST", f"/2/media/upload/{media_id}/append",
                                       data={"segment_index": str(index)}, files={"media": ("blob", segment)})
                return
            except XUnavailable:
                if tries == SEGMENT_TRIES:
                    raise
                self.sleep(tries)

    def _processed(self, media: dict[str, Any]) -> dict[str, Any]:
        """Poll STATUS while X is processing, waiting `check_after_secs` between polls."""
        waited = 0.0
        while (info := media.get("processing_info") or {}).get("state") in ("pending", "in_progress"):
            pause = float(info.get("check_after_secs") or 1)
            if self.should_stop() or waited + pause > MAX_PROCESSING_WAIT:
                raise XUnavailable(f"X was still processing {self.ref.name or 'the media'} after {waited:.0f} s")
            self.sleep(pause)
            waited += pause
            media = self.api.media_request("GET", "/2/media/upload",
                                           params={"command": "STATUS", "media_id": media["id"]})
        if info.get("state") == "failed":
            error = info.get("error") or {}
            reason = error.get("message") or error.get("name") or "no reason given"
            raise XMediaFailed(f"X could not process {self.ref.name or 'the media'}: {reason}")
        return media


# -- translation at the edge ---------------------------------------------------------

def _raise_like_tweepy(response: requests.Response) -> requests.Response:
    """tweepy's exception for a failed answer (as `tweepy.Client.request` raises it), so that
    `_api_call` translates media calls exactly as it translates posting."""
    status = response.status_code
    errors = {400: tweepy.BadRequest, 401: tweepy.Unauthorized, 403: tweepy.Forbidden, 404: tweepy.NotFound,
              429: tweepy.TooManyRequests}
    if status in errors:
        raise errors[status](response)
    if status >= 500:
        raise tweepy.TwitterServerError(response)
    if not 200 <= status < 300:
        raise tweepy.HTTPException(response)
    return response


def _call(call: Any) -> Any:
    try:
        return call()
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        raise XNoAnswer(f"X did not answer: {type(exc).__name__}") from exc


def _raise_for_server_error(response: requests.Response) -> requests.Response:
    if response.status_code >= 500:
        raise XUnavailable(f"X answered {response.status_code}", response.status_code)
    if response.status_code == 429:
        raise _rate_limited(response)
    return response


def _api_call(call: Any) -> Any:
    try:
        return _call(call)
    except tweepy.TooManyRequests as exc:
        raise _rate_limited(exc.response) from exc
    except tweepy.Unauthorized as exc:
        raise XUnauthorized(_detail(exc), 401) from exc
    except tweepy.Forbidden as exc:
        detail = _detail(exc)
        raise (XDuplicate if "duplicate content" in detail.lower() else XForbidden)(detail, 403) from exc
    except tweepy.BadRequest as exc:
        detail = _detail(exc)
        raise (XMediaExpired if "media ids are invalid" in detail.lower() else XBadRequest)(detail, 400) from exc
    except tweepy.NotFound as exc:
        raise XNotFound(_detail(exc), 404) from exc
    except tweepy.TwitterServerError as exc:
        raise XUnavailable(_detail(exc), exc.response.status_code) from exc
    except tweepy.HTTPException as exc:
        status = exc.response.status_code
        if status == 402:
            raise XUsageCapped(_detail(exc), 402) from exc
        raise XError(_detail(exc), status) from exc


def _rate_limited(response: requests.Response) -> XError:
    body = _json(response)
    if body.get("title") == "UsageCapExceeded" or "usage-capped" in str(body.get("type", "")):
        return XUsageCapped(body.get("detail") or "usage cap exceeded", 429)
    reset = response.headers.get("x-user-limit-24hour-reset") if _daily_exhausted(response) else None
    reset = reset or response.headers.get("x-rate-limit-reset")
    reset_at = (datetime.fromtimestamp(int(reset), timezone.utc) if reset and reset.isdigit()
                else utcnow() + timedelta(minutes=15))
    return XRateLimited(body.get("detail") or "Too Many Requests", reset_at)


def _daily_exhausted(response: requests.Response) -> bool:
    return response.headers.get("x-user-limit-24hour-remaining") == "0"


def _json(response: requests.Response | None) -> dict[str, Any]:
    try:
        body = response.json() if response is not None else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _errors_detail(errors: list[Any]) -> str:
    """The details of the `errors` entries of a 200 answer, e.g. "Could not find user with id: [1]."."""
    return "; ".join(str(e.get("detail") or e.get("message")) for e in errors if isinstance(e, dict)) or "not found"


def _detail(exc: tweepy.HTTPException) -> str:
    """X's own words: its errors' messages (the specific ones), else the problem's detail, else the status."""
    body = _json(exc.response)
    messages = [str(e.get("message") or e.get("detail")) for e in body.get("errors", []) if isinstance(e, dict)]
    return "; ".join(messages) or str(body.get("detail") or f"X answered {exc.response.status_code}")
