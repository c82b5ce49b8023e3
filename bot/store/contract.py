"""The store contract: what the bot, the web app and the CLI may ask of a store, kept whole by each.

`Repository` is kept by `bot.store.file.TinyStore` (one JSON file, TinyDB, one host) and by
`bot.store.postgres.PostgresStore` (DATABASE_URL); this module imports neither. Every member is
meant for both: a behaviour is tested once, through this contract, on both stores
(`tests/test_store*.py`). See `bot.store` for the errors and what a transaction means.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bot.models import Account, Post
from bot.store.locks import Lock
from bot.store.records import BackupSummary, Claim, Delivery, Event, KeptAnswer, Reading, StoreContents, Webhook


class Repository(Protocol):
    """What the bot, the web app and the CLI may ask of a store."""

    def transaction(self) -> AbstractContextManager[None]:
        """A block run as one unit, committed whole or not at all; re-entrant on one thread (see the module)."""
    def verify(self) -> None:
        """Raise `StoreDamaged` or `TokenKeyError` unless the store is whole and TOKEN_KEY opens it (cheap when
        nothing changed since the last call)."""
    def close(self) -> None:
        """Release what the store holds open (connections); the store is not used after."""
    def backup(self, target: Path) -> BackupSummary:
        """Write the whole store as of one committed moment to the archive `target` (0600); what it holds."""
    def dump(self) -> StoreContents:
        """Everything the store holds, at one moment (for `tweetbot store copy`)."""
    def load(self, contents: StoreContents) -> None:
        """Fill an empty store with `contents`, ids kept, all or nothing (`StoreError` if it is not empty)."""
    def account_lock(self, user_id: str, timeout: float = -1, stop: Callable[[], bool] | None = None) -> Lock:
        """The account's lock across processes (held around a token refresh); waits `timeout` s when entered,
        or less once `stop()` is true. Held through a dropped connection or a transaction pooler."""
    def take_free_account_locks(self, user_ids: Iterable[str]) -> dict[str, Lock]:
        """The locks of those of the accounts `user_ids` that nobody holds now, taken (the others are passed
        over, never waited for): {user_id: its lock, held}. Each is released as `account_lock`'s is."""
    def posting_turn(self) -> Lock:
        """What a worker holds while it posts: a lease one process holds at a time where posts are
        shared by holding it (the file store: the others keep tokens fresh and wait), or a lock every
        worker holds at once where they share the due posts through claims (`claim_due`: PostgreSQL).
        Its `alone` says which."""
    def lease(self, name: str, stop: Callable[[], bool] | None = None) -> Lock:
        """A lock one process holds for as long as it does a job only one may do (posting to a file store,
        alerts, media retention)."""

    def schema_version(self) -> int:
        """The version of the layout the store is kept in (PostgreSQL: the newest migration applied)."""
    def get_meta(self, key: str, default: Any = None) -> Any:
        """A value kept under `key` by `set_meta` (JSON), or `default`."""
    def set_meta(self, key: str, value: Any) -> None:
        """Keep `value` (JSON) under `key`: small facts of the whole store (heartbeats, window counts…)."""

    def get_account(self, user_id: str) -> Account | None:
        """The account of X user `user_id`, its tokens sealed until read; None if it is not kept."""
    def find_account(self, handle: str) -> Account | None:
        """The account whose username is `handle` (with or without "@", any case) or whose X user id it is,
        or None."""
    def list_accounts(self) -> list[Account]:
        """Every account kept, whatever its status."""
    def expiring_accounts(self, by: datetime, among: Iterable[str] | None = None) -> list[Account]:
        """The active accounts whose access token expires by `by`, or whose expiry is not known (those a
        refresh round looks at, without reading every account); only of the accounts `among`, if given."""
    def get_accounts(self, user_ids: Iterable[str]) -> list[Account]:
        """The accounts of `user_ids` that exist (one read, however many)."""
    def save_account(self, account: Account) -> None:
        """Keep `account` whole (a new one, or a reconnected one replacing what was kept), tokens encrypted."""
    def update_account(self, user_id: str, **changes: Any) -> Account:
        """Change some fields of an account (tokens encrypted); it as kept after. `RecordMissing` if none."""
    def replace_pair(self, spent: Account, event: Event, release: Lock | None = None,
                     **changes: Any) -> Account | None:
        """Store a refresh's outcome: `changes` (the new token pair, its expiry…) and `event`, in one write, only
        while the account's refresh token is still `spent`'s, the one the refresh spent (a newer pair stored
        meanwhile is never written over); the account as kept after, changed or not; None if it is not kept.
        `release`, the account's lock the caller holds, may be freed by the same write (where a store can);
        else, or if it was not, the caller's release frees it."""
    def delete_account(self, user_id: str) -> None:
        """Forget the account (its posts stay, as history)."""

    def add_posts(self, posts: list[Post], run_key: str | None = None) -> list[Post]:
        """Queue `posts` in one transaction, all or none; the posts with their ids. With `run_key` (a
        generator run's key), only if no earlier call used that key: then nothing is queued and [] returned."""
    def forget_runs(self, before: datetime) -> int:
        """Forget the run keys `add_posts` kept before `before`; how many."""
    def get_post(self, post_id: int) -> Post | None:
        """A post, queued or finished, or None."""
    def queued_posts(self, account_id: str | None = None, due_by: datetime | None = None) -> list[Post]:
        """Unfinished posts (scheduled or sending), earliest due first, of one account or all; with `due_by`,
        only the scheduled ones whose time (and retry time) has come by then. Cheap while nothing changed."""
    def sending_posts(self, account_id: str | None = None) -> list[Post]:
        """The posts marked `sending` (under a claim), of one account or all, earliest due first."""
    def claim_due(self, account_id: str, now: datetime, limit: int, claimer: str,
                  post_id: int | None = None) -> list[Post]:
        """Mark up to `limit` of the account's due posts `sending` by `claimer` at `now` (only `post_id`, if
        given), earliest due first, with a `sending` event each; none while a post of the account is
        `sending`, so one account's posts go out in order, one batch at a time, whoever posts. The posts
        carry the claim (`claim_token`, `claimed_at`); outcomes are written under it (`update_post`)."""
    def claim_next(self, now: datetime, claimer: str, limit: int, skip: Iterable[str] = ()) -> Claim:
        """Claim, as `claim_due` does, the due posts of the next account that can post: of the accounts
        with a due post that are active, not held and not in `skip`, the one whose post has waited
        longest; no posts when none can be claimed now (those another worker is claiming are passed
        over). The claim carries the account as read with it (its token, to send them with)."""
    def due_accounts(self, now: datetime, limit: int | None = None) -> set[str]:
        """The accounts that can post now (active, not held) with a scheduled post whose time (and retry
        time) has come by `now`: those `claim_next` may claim, but for the ones another worker holds.
        With `limit`, only the accounts of the `limit` posts that have waited longest."""
    def take_over(self, post: Post, claimer: str, now: datetime, claimed_before: datetime) -> Post | None:
        """Claim for `claimer`, under a new token, a post left `sending` under `post.claim_token`, if that is
        still its claim and was made before `claimed_before` (decided in the write itself), with a
        `TAKE_OVER_EVENT`; the post under its new claim, or None (taken or settled by another meanwhile)."""
    def update_post(self, post_id: int, under_claim: str | None = None, event: Event | None = None,
                    **changes: Any) -> Post:
        """Change a queued post; one that becomes finished joins the history (`RecordMissing` if it is not
        queued). With `under_claim`, only while it is `sending` under that claim token, else `ClaimLost`.
        `event` is recorded with the change, in the same write (not at all if the change is refused)."""
    def mark_requeued(self, post_id: int, new_id: int) -> None:
        """Note on the failed post `post_id` that it was queued again as post `new_id` (`Post.requeued_as`),
        in the caller's transaction with the queuing; `RecordMissing` if `post_id` is not a failed post."""
    def history(self, limit: int = 50, account_id: str | None = None, status: str | None = None) -> list[Post]:
        """Finished posts (posted, failed, canceled), the most recently finished first, at most `limit`; of one
        account and in one status if given (read only as far as `limit` of those)."""
    def post_counts(self) -> dict[tuple[str, str], int]:
        """How many posts, queued and finished, each account has in each status: {(account_id, status): n}
        (for /metrics: counted by the store, never by reading every post)."""

    # What X says of posted posts (`bot.analytics`): each post's newest reading of its metrics.
    def posted_since(self, since: datetime) -> list[Post]:
        """The posted posts whose `posted_at` is at or after `since`, the earliest posted first (the
        reading plan's candidates)."""
    def add_readings(self, readings: list[Reading]) -> None:
        """Keep `readings`, each replacing its post's earlier one, in the caller's transaction if any."""
    def readings(self, post_ids: Iterable[int]) -> dict[int, Reading]:
        """The newest reading kept of each of `post_ids` that has one."""
    def reading_totals(self, read_since: datetime) -> dict[tuple[str, str], int]:
        """Each metric summed over the posts whose newest reading was made at or after `read_since`, per
        account: {(account_id, metric): total} (for /metrics: summed by the store, not post by post)."""

    def get_schedule(self, account_id: str) -> dict[str, Any] | None:
        """The account's posting slots as `save_schedule` kept them (`bot.schedules`), or None."""
    def save_schedule(self, account_id: str, schedule: dict[str, Any]) -> None:
        """Keep the account's posting slots (JSON), replacing any kept before."""

    def record_event(self, kind: str, account_id: str | None = None, post_id: int | None = None,
                     detail: str | None = None, at: datetime | None = None) -> None:
        """Add a line to the audit trail (`Event`): what happened (`kind`), to whom, words for a person."""
    def events(self, limit: int = 100, kind: str | None = None, account_id: str | None = None) -> list[Event]:
        """The newest `limit` events first, of one kind or account if given."""
    def event_counts(self, kinds: Iterable[str]) -> dict[tuple[str | None, str], int]:
        """How many events of each of `kinds` each account has: {(account_id, kind): n}."""

    def put_media(self, data: bytes) -> str:
        """Keep `data` under its SHA-256 hex digest, durably, and return the digest. Bytes already kept
        store nothing new; their stored time is renewed (a fresh upload gets the grace of one)."""
    def get_media(self, digest: str) -> bytes:
        """The bytes of `digest`: `RecordMissing` naming it if none, `StoreDamaged` naming it if what is
        kept does not match it."""
    def media_digests(self) -> dict[str, datetime]:
        """Every stored media file's digest and when it was stored (UTC)."""
    def delete_media(self, digests: Iterable[str], stored_before: datetime | None = None) -> int:
        """Delete the media of `digests` (only those stored before `stored_before`, if given, so an upload
        renewed meanwhile stays); how many were deleted."""

    def kept_answer(self, key: str, since: datetime) -> KeptAnswer | None:
        """The answer kept under `key` at or after `since`, or None. Inside a transaction the key stays locked
        until it ends, kept or not: a second request with the key waits for the first, then finds its answer."""
    def keep_answer(self, key: str, answer: KeptAnswer) -> None:
        """Keep `answer` under `key`, replacing an older one, in the caller's transaction with its change."""
    def forget_answers(self, before: datetime) -> int:
        """Forget the answers kept before `before`; how many."""
    def count_request(self, key_id: str, minute: datetime) -> int:
        """Count one request of the API key `key_id` in the minute that starts at `minute`; how many that
        minute holds now, every process's (a request from an earlier minute, a clock behind, counts in
        the newest). One atomic step: two requests at once never read the same count."""

    # Webhooks (`bot.webhooks`): the subscriptions, and the outbox of their deliveries. A delivery is
    # added in the transaction of the change it reports, so none is lost nor made up by a crash.
    def add_webhook(self, url: str, events: Iterable[str], secret: str, at: datetime) -> Webhook:
        """Keep a new subscription (its secret sealed with TOKEN_KEY); it with its id."""
    def get_webhook(self, webhook_id: int) -> Webhook | None:
        """A subscription, or None (its row locked inside a transaction)."""
    def list_webhooks(self) -> list[Webhook]:
        """Every subscription, paused or not, oldest first."""
    def update_webhook(self, webhook_id: int, **changes: Any) -> Webhook:
        """Change some fields of a subscription (read and written locked); it as kept. `RecordMissing` if none."""
    def remove_webhook(self, webhook_id: int) -> None:
        """Forget a subscription and every delivery of it. `RecordMissing` if none."""
    def add_deliveries(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Put deliveries in the outbox (in the caller's transaction, if any); them with their ids."""
    def get_delivery(self, delivery_id: int) -> Delivery | None:
        """A delivery, or None (its row locked inside a transaction)."""
    def claim_deliveries(self, now: datetime, limit: int, hold_until: datetime) -> list[Delivery]:
        """Claim up to `limit` due deliveries for one attempt each, oldest due first: unfinished, due by `now`,
        of a subscription not paused, with no live claim (a dead worker's lapses at its `claimed_until`).
        Each gets a new `claim_token` held until `hold_until`; two workers never hold the same one."""
    def update_delivery(self, delivery_id: int, under_claim: str | None = None, **changes: Any) -> Delivery:
        """Change a delivery; with `under_claim`, only while that is its claim (`ClaimLost`). `RecordMissing`
        if none."""
    def deliveries(self, limit: int = 50, webhook_id: int | None = None) -> list[Delivery]:
        """The delivery log: the newest deliveries first (of one subscription if given), unfinished and
        finished; at least the newest 200 finished ones are kept."""
    def forget_deliveries(self, before: datetime) -> int:
        """Forget the finished deliveries made before `before`, but for the newest `KEPT_DELIVERIES` finished
        ones; how many."""
