"""Webhooks, signed the Standard Webhooks way: the event names, their payloads, the signing, the delivery.

A change the bot makes (a post queued, posted, failed or held; an account that needs its owner)
calls one function here inside the transaction that writes the change: it puts one delivery per
subscribed URL in the store's outbox, so a crash can neither report a change that did not happen
nor lose one that did. The worker's `Deliverer` POSTs what is due, at least once, each event
with one `webhook-id` however often it is sent, with growing gaps for 24 h; a subscription whose
attempts fail `WEBHOOK_PAUSE_AFTER` times in a row is paused (logged once, shown by `tweetbot
webhooks list`, and a `webhook.paused` event). ALERT_WEBHOOK_URL is a subscription too (`bot.alerts`
keeps it): to the events a person must hear of, each with a `text` line, as chat webhooks want.

Each request carries `webhook-id`, `webhook-timestamp` (Unix seconds of the attempt) and
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body" keyed with the secret's bytes>`.
The secret (`whsec_` + base64 of 32 random bytes) is shown once, when the subscription is made.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import requests

from bot.models import Account, Post, utcnow
from bot.settings import Settings
from bot.store import ClaimLost, Delivery, RecordMissing, Repository, StoreError, StoreUnreachable, Webhook

log = logging.getLogger("tweetbot.webhooks")

POST_QUEUED = "post.queued"
POST_POSTED = "post.posted"
POST_FAILED = "post.failed"
POST_HELD = "post.held"
ACCOUNT_NEEDS_RECONNECT = "account.needs_reconnect"
ACCOUNT_RECONNECTED = "account.reconnected"
ACCOUNT_REFRESH_FAILING = "account.refresh_failing"
WEBHOOK_PAUSED = "webhook.paused"
EVENTS = (POST_QUEUED, POST_POSTED, POST_FAILED, POST_HELD, ACCOUNT_NEEDS_RECONNECT, ACCOUNT_RECONNECTED,
          ACCOUNT_REFRESH_FAILING, WEBHOOK_PAUSED)
#: What the subscription made from ALERT_WEBHOOK_URL takes: what needs the owner, and its mending.
ALERT_EVENTS = (ACCOUNT_NEEDS_RECONNECT, ACCOUNT_RECONNECTED, ACCOUNT_REFRESH_FAILING, WEBHOOK_PAUSED)
TEST_EVENT = "webhook.test"  # sent to one subscription by `tweetbot webhooks test`, whatever its events

SECRET_PREFIX = "whsec_"
RETRY_FOR = timedelta(hours=24)  # how long an event is tried before it is given up
MOST_GAP = timedelta(hours=6)
CLAIM_MARGIN = timedelta(seconds=5)  # past the timeout: a claim lapses only once its request cannot be in flight
PARALLEL = 4  # attempts in flight at once per worker
ERROR_LENGTH = 300


class WebhookRefused(ValueError):
    """A subscription that cannot be made as asked (its URL or an event name); the message says why."""


# -- subscriptions --------------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def subscribe(store: Repository, url: str, events: Iterable[str], now: datetime | None = None) -> Webhook:
    """Make a subscription of `url` to `events` with a fresh secret (which the caller shows once)."""
    chosen = tuple(dict.fromkeys(events))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(f"{url!r} is not a URL (expected http://… or https://…)")
    unknown = [name for name in chosen if name not in EVENTS]
    if unknown or not chosen:
        raise WebhookRefused(f"unknown event(s) {', '.join(unknown) or '(none given)'}: expected some of "
                             f"{', '.join(EVENTS)}")
    return store.add_webhook(url, chosen, new_secret(), now or utcnow())


def resume(store: Repository, webhook_id: int) -> Webhook:
    """Deliver to a paused subscription again (its waiting deliveries go out on the next round)."""
    return store.update_webhook(webhook_id, paused_at=None, pause_reason=None, failures=0)


def unsubscribe(store: Repository, webhook_id: int) -> Webhook:
    """Remove a subscription and its deliveries; it as it was. `RecordMissing` if there is none; one a
    setting made (`managed_by`) is refused: it would be made again while the setting is set."""
    with store.transaction():
        webhook = store.get_webhook(webhook_id)
        if webhook is None:
            raise RecordMissing(f"webhook {webhook_id}")
        if webhook.managed_by:
            raise WebhookRefused(f"webhook {webhook_id} is made from {webhook.managed_by}: unset that setting "
                                 "(or change it) to remove or move it")
        store.remove_webhook(webhook_id)
        return webhook


def where(url: str) -> str:
    """A URL as logs and lists show it: scheme, host and path, never its query (a token may ride there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# -- events -----------------------------------------------------------------------------------------


Data = dict[str, Any]


def emit(store: Repository, event_type: str, data: Data | Callable[[], Data], at: datetime | None = None,
         only: int | None = None, text: str | None = None) -> int:
    """Put the event in the outbox for each subscription to it (`only`: that one subscription, whatever
    its events), in the caller's transaction; how many deliveries it made. `data` may be a function:
    then it is asked only when someone subscribes (what it reads costs nothing otherwise). `text`, a line
    for a person, rides at the top of the body, where Slack's and Mattermost's incoming webhooks read it."""
    at = at or utcnow()
    with store.transaction():
        hooks = [hook for hook in store.list_webhooks()
                 if (hook.id == only if only is not None else event_type in hook.events)]
        if not hooks:
            return 0
        event_id = "msg_" + secrets.token_hex(16)
        payload = data() if callable(data) else data
        said = {"type": event_type, "timestamp": stamp(at), "data": payload, **({"text": text} if text else {})}
        body = json.dumps(said, separators=(",", ":"))
        store.add_deliveries([Delivery(0, hook.id, event_id, event_type, body, created_at=at, next_attempt_at=at)
                              for hook in hooks])
        return len(hooks)


def post_event(store: Repository, event_type: str, post: Post, at: datetime | None = None, **data: Any) -> int:
    """A post's event (`POST_QUEUED`, `POST_FAILED`, `POST_HELD`…): the post as it is, plus `data`."""
    return emit(store, event_type, {**_post_data(post), **data}, at)


def post_posted(store: Repository, post: Post, at: datetime,
                post_url: Callable[[str, str | None], str | None]) -> int:
    """`POST_POSTED`, with the tweet ids and their links (`post_url`: `Settings.post_url`)."""
    def data() -> Data:
        found = store.get_accounts([post.account_id])  # not locked: the posting transaction locks no account
        username = found[0].username if found else None
        ids = [tweet_id for tweet_id in post.tweet_ids if tweet_id]
        return {**_post_data(post), "tweet_ids": ids, "urls": [post_url(i, username) for i in ids],
                "posted_at": stamp(at)}
    return emit(store, POST_POSTED, data, at)


ACCOUNT_TEXTS = {ACCOUNT_NEEDS_RECONNECT: "tweetbot: {handle} needs its owner to reconnect it: {reason}",
                 ACCOUNT_RECONNECTED: "tweetbot: {handle} is connected again",
                 ACCOUNT_REFRESH_FAILING: "tweetbot: refreshing {handle}'s token failed {failures} times in a row "
                                          "(the last: {reason}); retrying"}


def account_event(store: Repository, event_type: str, account: Account, at: datetime | None = None,
                  **data: Any) -> int:
    """An account's event (`ACCOUNT_NEEDS_RECONNECT`…): who, its state and the last error, plus `data`."""
    text = ACCOUNT_TEXTS[event_type].format(handle=account.handle, reason=account.last_error,
                                            failures=account.refresh_failures)
    return emit(store, event_type, {"account_id": account.user_id, "username": account.username,
                                    "status": account.status, "reason": account.last_error, **data}, at, text=text)


def webhook_paused(store: Repository, webhook: Webhook, at: datetime) -> int:
    """`WEBHOOK_PAUSED`: which subscription, where to, and why."""
    shown = where(webhook.url)
    return emit(store, WEBHOOK_PAUSED, {"webhook_id": webhook.id, "url": shown, "reason": webhook.pause_reason}, at,
                text=f"tweetbot: webhook {webhook.id} ({shown}) paused: {webhook.pause_reason}; "
                     f"`tweetbot webhooks resume {webhook.id}` once it answers")


def send_test(store: Repository, webhook_id: int) -> int:
    """Queue a `webhook.test` event for one subscription (`RecordMissing`-free: 0 if there is none)."""
    return emit(store, TEST_EVENT, {"webhook_id": webhook_id, "text": "a test event from tweetbot"},
                only=webhook_id)


def redeliver(store: Repository, delivery_id: int, now: datetime | None = None) -> Delivery:
    """Send a delivery again, with its `webhook-id` and body, as soon as a worker can."""
    return store.update_delivery(delivery_id, next_attempt_at=now or utcnow(), delivered_at=None, given_up_at=None)


def _post_data(post: Post) -> dict[str, Any]:
    return {"post_id": post.id, "account_id": post.account_id, "status": post.status,
            "due_at": stamp(post.due_at), "parts": list(post.parts)}


def stamp(moment: datetime) -> str:
    """A time as payloads carry it: UTC, ISO 8601 with a Z (Standard Webhooks' example)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# -- signing and sending ------------------------------------------------------------------------------


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value for this request."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "user-agent": "tweetbot-webhooks", "webhook-id": event_id,
            "webhook-timestamp": str(timestamp), "webhook-signature": sign(secret, event_id, timestamp, body)}


def send(session: requests.Session, url: str, headers: dict[str, str], body: bytes,
         timeout: float) -> tuple[int | None, str | None]:
    """The one way out: POST `body`; the status code (None: no answer) and what went wrong, if anything.
    Redirects are not followed: a receiver answers where it was registered."""
    try:
        response = session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return None, type(exc).__name__
    response.close()
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"answered {response.status_code}"


def backoff(attempts: int, first: float) -> timedelta:
    """The gap after the `attempts`-th failed attempt in a row: `first`, then four times the gap before."""
    return min(timedelta(seconds=first * 4 ** (max(attempts, 1) - 1)), MOST_GAP)


class Deliverer:
    """The worker's delivery of the outbox, on threads of its own, so a slow receiver never holds up posting.

    Each round (`deliver_due`, every second) claims what is due, up to a delivery for each free thread, in
    one write; a thread that finishes its attempt claims the next due one itself, until none is left, so a
    burst of events goes out as fast as receivers answer, and an idle round costs one claim.
    """

    def __init__(self, settings: Settings, store: Repository, clock: Callable[[], datetime] = utcnow,
                 session: requests.Session | None = None) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.session = session or requests.Session()
        self._pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="webhook")
        self._busy = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def deliver_due(self) -> int:
        """Claim the due deliveries there are free threads for and start their attempts; how many."""
        with self._lock:
            room = PARALLEL - self._busy
            self._busy += max(room, 0)  # held for the claim, so a thread finishing meanwhile does not count twice
        claimed: list[Delivery] = []
        try:
            if room > 0:
                claimed = self._claim(room)
        finally:
            with self._lock:
                self._busy -= max(room, 0) - len(claimed)
        for delivery in claimed:
            self._pool.submit(self._drain, delivery)
        return len(claimed)

    def deliver_now(self) -> int:
        """Claim and attempt what is due in this thread (tests and one-off runs); how many attempts."""
        claimed = self._claim(PARALLEL)
        for delivery in claimed:
            self.attempt(delivery)
        return len(claimed)

    def shutdown(self) -> None:
        """Let the attempts in flight finish (each ends within WEBHOOK_TIMEOUT); claim no more."""
        self._stopping.set()
        self._pool.shutdown(wait=True)
        self.session.close()

    def _claim(self, limit: int) -> list[Delivery]:
        now = self.clock()
        return self.store.claim_deliveries(now, limit, now + timedelta(seconds=self.settings.webhook_timeout)
                                           + CLAIM_MARGIN)

    def _drain(self, delivery: Delivery) -> None:
        """Attempt `delivery`, then the next due one, until none is due or the worker stops."""
        try:
            while True:
                self.attempt(delivery)
                if self._stopping.is_set():
                    return
                more = self._claim(1)
                if not more:
                    return
                delivery = more[0]
        except StoreUnreachable:  # the store says so once a minute; the claim lapses and the next round retries
            pass
        except StoreError as exc:
            log.error("delivering webhooks stopped for this round: %s", " ".join(str(exc).split()))
        except Exception:
            log.exception("delivery %s of webhook %s failed before its outcome was stored", delivery.id,
                          delivery.webhook_id)
        finally:
            with self._lock:
                self._busy -= 1

    def attempt(self, delivery: Delivery) -> None:
        """POST the delivery once, signed, and store the outcome under its claim."""
        webhook = self.store.get_webhook(delivery.webhook_id)
        if webhook is None:
            return  # removed meanwhile, with its deliveries
        body = delivery.body.encode()
        timestamp = int(self.clock().timestamp())
        status, error = send(self.session, webhook.url, signed_headers(webhook.secret, delivery.event_id,
                                                                       timestamp, body), body,
                             self.settings.webhook_timeout)
        self._record(delivery, status, error)

    def _record(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        now = self.clock()
        with self.store.transaction():
            try:
                done = self.store.update_delivery(delivery.id, under_claim=delivery.claim_token,
                                                  **self._outcome(delivery, status, error, now))
            except ClaimLost:
                log.info("delivery %s: its claim lapsed during the attempt; another worker has it", delivery.id)
                return
            paused = self._count(done, status, error, now)
        if error is None:
            log.info("delivered %s %s to webhook %s (%s)", delivery.type, delivery.event_id, delivery.webhook_id,
                     status)
        elif done.given_up_at is not None:
            log.warning("gave up %s %s to webhook %s after %s attempt(s) in 24 h: %s", delivery.type,
                        delivery.event_id, delivery.webhook_id, done.attempts, error)
        if paused is not None:
            log.warning("webhook %s (%s) paused: %s", paused.id, where(paused.url), paused.pause_reason)

    def _outcome(self, delivery: Delivery, status: int | None, error: str | None, now: datetime) -> dict[str, Any]:
        attempts = delivery.attempts + 1
        outcome: dict[str, Any] = {"attempts": attempts, "last_attempt_at": now, "last_status": status,
                                   "last_error": error, "claim_token": None, "claimed_until": None}
        if error is None:
            return {**outcome, "delivered_at": now}
        if now >= delivery.created_at + RETRY_FOR:
            return {**outcome, "given_up_at": now}
        return {**outcome, "next_attempt_at": now + backoff(attempts, self.settings.webhook_backoff)}

    def _count(self, delivery: Delivery, status: int | None, error: str | None, now: datetime) -> Webhook | None:
        """Keep the subscription's tally of failures in a row; it if this attempt paused it."""
        webhook = self.store.get_webhook(delivery.webhook_id)
        if webhook is None:
            return None
        if error is None:
            self.store.update_webhook(webhook.id, failures=0, last_delivery_at=now, last_status=status)
            return None
        failures = webhook.failures + 1
        pause = webhook.paused_at is None and failures >= self.settings.webhook_pause_after
        changes: dict[str, Any] = {"failures": failures, "last_status": status}
        if not pause:
            self.store.update_webhook(webhook.id, **changes)
            return None
        paused = self.store.update_webhook(webhook.id, paused_at=now, **changes,
                                           pause_reason=f"{failures} failed attempts in a row (the last: {error})")
        webhook_paused(self.store, paused, now)
        return paused
