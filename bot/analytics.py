"""How posts did: the worker reads each posted post's metrics from X at a few ages, within a budget.

The reading plan: each posted post (every part of a thread) is read once at each of ANALYTICS_AGES
(default 1h, 24h, 7d) after it was posted. A post is due when it has reached an age it has no reading
for; a worker that was away reads it once at the oldest age it reached, not once per age missed, and
a post past its last age by more than CATCH_UP is not read any more.

Each account's due posts are read in as few requests as X allows: the app owner's (X_APP_OWNER) on its
own timeline between the posts' ids, $0.001 a post returned (an owned read); everyone else's by id,
100 at a time, $0.005 a post (x-api-facts §6). `non_public_metrics` are asked only for posts under 30
days old (X shows them to their author only then).

The budget (ANALYTICS_BUDGET dollars a calendar month, UTC): before each request the worker adds its
worst case (every post it could return billed) to the month's analytics spend (`bot.read_spend`), and
sends nothing that could go over; a batch is cut to what fits, and once nothing fits reading stops
until the month ends. A 402 from X (its credit spent) pauses reading until the next UTC day; a 429
until X's reset. Posting never waits for any of this. The timeline reads that settle uncertain posts
are priced too but never cut by the budget (exactly-once comes first), so they are not counted in it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Any, NoReturn

from bot.models import ACTIVE, Account, Post
from bot.pricing import OWNED_READ_PRICE, POST_READ_PRICE, dollars
from bot.read_spend import ANALYTICS, billed_today, month_spend, record_read
from bot.settings import Settings
from bot.store import Reading, Repository
from bot.tokens import TokenKeeper
from bot.xclient import XApi, XClient, XError, XRateLimited, XUsageCapped

log = logging.getLogger("tweetbot.analytics")

PAUSED_KEY = "analytics_paused"  # meta: {"until": ISO, "reason": words}
STOPPED_KEY = "analytics_stopped"  # meta: {"month": "YYYY-MM"}, the month the budget stopped reading
CATCH_UP = timedelta(days=2)  # how long after its last age a post not read yet is still read
NON_PUBLIC_AGE = timedelta(days=30)  # X shows non_public_metrics on posts younger than this (x-api-facts §6)
IDS_PER_REQUEST = 100  # GET /2/tweets?ids=
PAGE_MIN, PAGE_MAX = 5, 100  # GET /2/users/:id/tweets max_results
READ_SCOPE = "tweet.read"
# X's names, public first; a thread's are summed over its parts.
PUBLIC = ("like_count", "retweet_count", "reply_count", "quote_count", "bookmark_count", "impression_count")
NON_PUBLIC = ("url_link_clicks", "user_profile_clicks", "engagements")
ENGAGING = ("like_count", "retweet_count", "reply_count", "quote_count", "bookmark_count")


class ReadingStopped(Exception):
    """The budget or X's answer stops this round of reading (and, for a while, the next ones)."""


@dataclass
class Due:
    """A post due for a read: which age it reached (its index in ANALYTICS_AGES)."""

    post: Post
    age: int

    @property
    def tweet_ids(self) -> list[str]:
        return [tweet_id for tweet_id in self.post.tweet_ids if tweet_id]


@dataclass
class Round:
    """What one round of reading did, for the log and the bench."""

    requests: int = 0
    posts_read: int = 0
    spent: Decimal = Decimal(0)
    stopped: str | None = None
    accounts: set[str] = field(default_factory=set)


def reached_age(post: Post, ages: Sequence[timedelta], now: datetime) -> int:
    """The index of the oldest age `post` has reached by `now`; -1 before the first."""
    if post.posted_at is None:
        return -1
    return sum(1 for age in ages if post.posted_at + age <= now) - 1


def due_reads(posts: Iterable[Post], readings: dict[int, Reading], ages: Sequence[timedelta],
              now: datetime) -> list[Due]:
    """The posts that reached an age they have no reading for yet, with that age."""
    due = []
    for post in posts:
        reached = reached_age(post, ages, now)
        kept = readings.get(post.id)
        if reached >= 0 and (kept is None or kept.age < reached) and any(post.tweet_ids):
            due.append(Due(post, reached))
    return due


def summed(found: Iterable[dict[str, Any]]) -> dict[str, int]:
    """One post's metrics from what X returned for its parts: X's names, each summed over the parts;
    the non-public ones only when X showed them ({} when X returned none of its parts)."""
    total: dict[str, int] = {}
    for part in found:
        for name in PUBLIC:
            total[name] = total.get(name, 0) + int(part["public_metrics"].get(name, 0))
        if part["non_public_metrics"]:
            for name in NON_PUBLIC:
                total[name] = total.get(name, 0) + int(part["non_public_metrics"].get(name, 0))
    return total


def engagements(metrics: dict[str, int]) -> int:
    """What people did with a post: X's own `engagements` when it was read (non-public), else the sum of
    the public counts of likes, reposts, replies, quotes and bookmarks."""
    if "engagements" in metrics:
        return metrics["engagements"]
    return sum(metrics.get(name, 0) for name in ENGAGING)


def next_month(at: datetime) -> datetime:
    """The first moment of the UTC month after `at`'s."""
    at = at.astimezone(timezone.utc)
    return datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=timezone.utc)


def next_day(at: datetime) -> datetime:
    """The first moment of the UTC day after `at`'s."""
    at = at.astimezone(timezone.utc)
    return datetime(at.year, at.month, at.day, tzinfo=timezone.utc) + timedelta(days=1)


def analytics_spent(store: Repository, at: datetime) -> Decimal:
    """What reading posts' metrics cost this UTC month (settling reads not counted)."""
    return month_spend(store, at).get(ANALYTICS, Decimal(0))


def paused_until(store: Repository, now: datetime) -> dict[str, Any] | None:
    """The pause X's 402 or 429 put on reading, while it lasts: {"until", "reason"}."""
    paused = store.get_meta(PAUSED_KEY)
    return paused if paused and datetime.fromisoformat(paused["until"]) > now else None


def status_line(settings: Settings, store: Repository, now: datetime) -> str:
    """The month's analytics spend against the budget, and what stops reading now, as the dashboard says it."""
    if not settings.analytics_budget:
        return "Reading how posts did is off (ANALYTICS_BUDGET=0)."
    spent = analytics_spent(store, now)
    line = f"Reading how posts did: {dollars(spent)} of the {dollars(settings.analytics_budget)} budget this month."
    paused = paused_until(store, now)
    if paused:
        line += f" Paused until {paused['until'][:16].replace('T', ' ')} UTC: {paused['reason']}"
    stopped = store.get_meta(STOPPED_KEY)
    if stopped and stopped.get("month") == f"{now.astimezone(timezone.utc):%Y-%m}":
        line += f" Stopped by the budget; reading resumes {next_month(now):%Y-%m-%d} 00:00 UTC."
    return line


class Reader:
    """Reads what is due, account by account, within the budget (one worker at a time: the caller
    holds the `analytics` lease)."""

    def __init__(self, settings: Settings, store: Repository, x: XClient, tokens: TokenKeeper,
                 clock: Callable[[], datetime]) -> None:
        self.settings, self.store, self.x, self.tokens, self.clock = settings, store, x, tokens, clock

    def read_due(self) -> Round:
        """One round: every account's due posts, until the budget or X stops it."""
        done = Round()
        now = self.clock()
        if not self.settings.analytics_budget or paused_until(self.store, now):
            return done
        ages = self.settings.analytics_ages
        posts = self.store.posted_since(now - ages[-1] - CATCH_UP)
        due = due_reads(posts, self.store.readings(p.id for p in posts), ages, now)
        by_account: dict[str, list[Due]] = {}
        for item in due:
            by_account.setdefault(item.post.account_id, []).append(item)
        known: dict[str, list[Post]] = {}
        for post in posts:
            known.setdefault(post.account_id, []).append(post)
        accounts = {a.user_id: a for a in self.store.get_accounts(by_account)}
        try:
            for account_id, items in by_account.items():
                account = accounts.get(account_id)
                if account is not None and account.status == ACTIVE and READ_SCOPE in account.scopes:
                    self._read_account(account, items, known[account_id], done)
        except ReadingStopped as exc:
            done.stopped = str(exc)
        if done.requests:
            log.info("read the metrics of %s post(s) of %s account(s) in %s request(s): %s", done.posts_read,
                     len(done.accounts), done.requests, dollars(done.spent))
        return done

    def _read_account(self, account: Account, items: list[Due], known: list[Post], done: Round) -> None:
        token = self.tokens.fresh_access_token(account.user_id, account)
        if token is None:
            return
        api = self.x.api(token)
        owned = self.settings.owns_app(account.user_id, account.username)
        now = self.clock()
        for non_public in (True, False):
            group = [d for d in items if self._young(d.post, now) == non_public]
            if not group:
                continue
            if owned:
                for run in timeline_runs(group, known):
                    self._read_run(api, account, run, non_public, done)
            else:
                for start in range(0, len(group), IDS_PER_REQUEST):
                    self._read_ids(api, group[start:start + IDS_PER_REQUEST], non_public, done)

    @staticmethod
    def _young(post: Post, now: datetime) -> bool:
        return post.posted_at is not None and now - post.posted_at < NON_PUBLIC_AGE

    def _read_ids(self, api: XApi, items: list[Due], non_public: bool, done: Round) -> None:
        """`GET /2/tweets?ids=` for `items` (at most 100 ids a request), cut to what the budget allows."""
        while items:
            batch = self._batch_that_fits(items)
            if not batch:
                self._stop_for_budget()
            ids = [tid for item in batch for tid in item.tweet_ids]
            self._keep(batch, self._call(partial(api.metrics_by_ids, ids, non_public)), owned=False, done=done)
            items = items[len(batch):]

    def _batch_that_fits(self, items: list[Due]) -> list[Due]:
        """The first of `items` whose tweets fit in one request by id and in what is left of the budget,
        each tweet at POST_READ_PRICE unless X billed it earlier today."""
        left = self.settings.analytics_budget - analytics_spent(self.store, self.clock())
        free = billed_today(self.store, self.clock())
        batch, tweets = [], 0
        for item in items:
            cost = sum((POST_READ_PRICE for tid in item.tweet_ids if tid not in free), Decimal(0))
            if tweets + len(item.tweet_ids) > IDS_PER_REQUEST or cost > left:
                break
            batch.append(item)
            tweets += len(item.tweet_ids)
            left -= cost
        return batch

    def _read_run(self, api: XApi, account: Account, run: list[Due], non_public: bool, done: Round) -> None:
        """The account's own timeline between the first and last ids of `run`, page by page (owned reads)."""
        ids = sorted(int(tid) for item in run for tid in item.tweet_ids)
        since_id, until_id = str(ids[0] - 1), str(ids[-1] + 1)
        found: list[dict[str, Any]] = []
        page: str | None = None
        while True:
            size = max(PAGE_MIN, min(PAGE_MAX, len(ids) - len(found)))
            if not self._page_fits(size):
                self._stop_for_budget()
            answer, page = self._call(partial(
                api.metrics_on_timeline, account.user_id, since_id, until_id, size, non_public, page))
            found.extend(answer)
            self._keep([], answer, owned=True, done=done)
            if page is None:
                break
        self._keep(run, found, owned=True, done=done, billed=False)

    def _page_fits(self, size: int) -> bool:
        """Whether a timeline page of `size` owned reads, all billed, stays within the month's budget."""
        return analytics_spent(self.store, self.clock()) + size * OWNED_READ_PRICE <= self.settings.analytics_budget

    def _stop_for_budget(self) -> NoReturn:
        now = self.clock()
        spent = analytics_spent(self.store, now)
        self.store.set_meta(STOPPED_KEY, {"month": f"{now.astimezone(timezone.utc):%Y-%m}"})
        reason = (f"the month's reading budget stops it: {dollars(spent)} of {dollars(self.settings.analytics_budget)} "
                  f"spent; reading resumes {next_month(now):%Y-%m-%d} 00:00 UTC")
        log.warning("reading stopped: %s", reason)
        raise ReadingStopped(reason)

    def _call(self, request: Any) -> Any:
        """One request to X; a 402 or 429 pauses reading (and ends the round), other errors end the round."""
        try:
            return request()
        except XUsageCapped as exc:
            self._pause(next_day(self.clock()), f"X answered {exc.status}: the account's credit is spent ({exc})")
        except XRateLimited as exc:
            self._pause(exc.reset_at, f"X's rate limit for reads ({exc})")
        except XError as exc:
            log.warning("reading metrics failed, tried again next round: %s", exc)
            raise ReadingStopped(str(exc)) from exc

    def _pause(self, until: datetime, reason: str) -> NoReturn:
        self.store.set_meta(PAUSED_KEY, {"until": until.astimezone(timezone.utc).isoformat(), "reason": reason})
        log.warning("reading paused until %s: %s", until.isoformat(), reason)
        raise ReadingStopped(reason)

    def _keep(self, items: list[Due], found: list[dict[str, Any]], owned: bool, done: Round,
              billed: bool = True) -> None:
        """Record what a request cost (`billed`) and the readings of `items` it found, in one transaction."""
        now = self.clock()
        by_id = {part["id"]: part for part in found}
        # A post X no longer has (its author deleted it) is read as {}: its age is done, not asked again.
        readings = [Reading(item.post.id, item.post.account_id, now, item.age,
                            summed(by_id[tid] for tid in item.tweet_ids if tid in by_id),
                            by_id.get(item.tweet_ids[0], {}).get("poll", [])) for item in items]
        with self.store.transaction():
            if billed:
                done.spent += record_read(self.store, now, ANALYTICS, list(by_id), owned)
                done.requests += 1
            self.store.add_readings(readings)
        done.posts_read += len(readings)
        done.accounts.update(item.post.account_id for item in items)


def timeline_runs(due: list[Due], known: list[Post]) -> list[list[Due]]:
    """The due posts cut into runs that hold no other post of the account the bot knows of (a timeline
    read between a run's first and last ids returns, and bills, every post in between), at most
    PAGE_MAX tweets each."""
    due_ids = {item.post.id for item in due}
    order = sorted(((int(tid), post.id) for post in known for tid in post.tweet_ids if tid),
                   key=lambda pair: pair[0])
    items = {item.post.id: item for item in due}
    runs: list[list[Due]] = [[]]
    placed: set[int] = set()
    tweets = 0
    for _, post_id in order:
        if post_id in placed:
            continue  # a thread's later part: its post is in a run already
        if post_id not in due_ids or tweets + len(items[post_id].tweet_ids) > PAGE_MAX:
            runs.append([])
            tweets = 0
        if post_id in due_ids:
            runs[-1].append(items[post_id])
            placed.add(post_id)
            tweets += len(items[post_id].tweet_ids)
    return [run for run in runs if run]
