"""`/metrics`: the bot's state in Prometheus' text format, for a scraper or a person signed in.

Everything is read from the store at the moment of the request (posts and events as the
store counts them, never by reading each one), through a collector
registered on a fresh `CollectorRegistry` each time (no process-global state, so every
gunicorn worker answers the same):

    tweetbot_posts{account,status}                      posts by status (scheduled, sending, posted, failed, canceled)
    tweetbot_queue_depth                                posts not yet finished (scheduled or sending)
    tweetbot_next_post_due_seconds                      until the earliest scheduled post is due (< 0: overdue);
                                                        absent with nothing scheduled
    tweetbot_accounts{status}                           accounts by token status
    tweetbot_token_refreshes_total{account}             refreshes stored (the store's `refreshed` events)
    tweetbot_token_refresh_failures_total{account,kind} failed refreshes: kind="passing" (`refresh_failed`: network,
                                                        5xx, backed off) or kind="refused" (`needs_reconnect`)
    tweetbot_worker_heartbeat_age_seconds               since the newest worker heartbeat; absent before the first
    tweetbot_read_spend_dollars{kind}                   what reading X cost this (UTC) month, as X bills it
    tweetbot_read_budget_dollars                        ANALYTICS_BUDGET: what reading how posts did may cost a month
    tweetbot_reading_paused                             1 while X's 402 (credit spent) or 429 pauses that reading
    tweetbot_post_metric{account,metric}                how the posts read from X in the last 30 days did, as last
                                                        read: X's counts (like_count, impression_count…) summed

Access: a signed-in session (the app's sign-in gate decides, as for any page), or
`Authorization: Bearer <METRICS_TOKEN>` when that setting is set. A request that carries
an Authorization header is judged by it alone: a wrong token is a 401, never the sign-in page.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from bot import analytics, read_spend
from bot.crypto import same_secret
from bot.models import CANCELED, FAILED, POSTED, SCHEDULED, SENDING
from bot.store import Repository, heartbeats
from web.db import now, settings, store

bp = Blueprint("metrics", __name__)
ENDPOINT = "metrics.metrics"
POST_STATUSES = (SCHEDULED, SENDING, POSTED, FAILED, CANCELED)
RECENT = timedelta(days=30)  # the readings tweetbot_post_metric sums
FAILURE_EVENTS = {"refresh_failed": "passing", "needs_reconnect": "refused"}


class StoreCollector(Collector):
    """The metrics above, read from `repo` when collected; ages and times to come are counted from `now`."""

    def __init__(self, repo: Repository, now: datetime, budget: Decimal = Decimal(0)) -> None:
        self.repo = repo
        self.now = now
        self.budget = budget

    def collect(self) -> Iterator[Metric]:
        accounts = self.repo.list_accounts()
        handles = {account.user_id: account.handle for account in accounts}
        queued = self.repo.queued_posts()

        posts = GaugeMetricFamily("tweetbot_posts", "Posts by account and status.", labels=["account", "status"])
        counts: Counter[tuple[str, str]] = Counter()
        for (account_id, status), number in self.repo.post_counts().items():
            counts[handles.get(account_id, account_id), status] += number
        for handle in sorted({handle for handle, _ in counts} | set(handles.values())):
            for status in POST_STATUSES:
                posts.add_metric([handle, status], counts.get((handle, status), 0))
        yield posts

        yield GaugeMetricFamily("tweetbot_queue_depth", "Posts not yet finished (scheduled or sending).",
                                value=len(queued))
        dues = [max(post.due_at, post.next_attempt_at or post.due_at) for post in queued if post.status == SCHEDULED]
        if dues:
            yield GaugeMetricFamily("tweetbot_next_post_due_seconds",
                                    "Seconds until the earliest scheduled post is due (negative: overdue).",
                                    value=(min(dues) - self.now).total_seconds())

        by_status = GaugeMetricFamily("tweetbot_accounts", "Accounts by token status.", labels=["status"])
        for status, number in sorted(Counter(account.status for account in accounts).items()):
            by_status.add_metric([status], number)
        yield by_status

        events = self.repo.event_counts(["refreshed", *FAILURE_EVENTS])
        refreshes = CounterMetricFamily("tweetbot_token_refreshes", "Token refreshes stored, by account.",
                                        labels=["account"])
        for handle, number in self._per_account(self._of_kind(events, "refreshed"), handles):
            refreshes.add_metric([handle], number)
        yield refreshes

        failures = CounterMetricFamily("tweetbot_token_refresh_failures",
                                       "Failed token refreshes by account: passing (backed off) or refused by X.",
                                       labels=["account", "kind"])
        for event_kind, kind in FAILURE_EVENTS.items():
            for handle, number in self._per_account(self._of_kind(events, event_kind), handles):
                failures.add_metric([handle, kind], number)
        yield failures

        spend = GaugeMetricFamily("tweetbot_read_spend_dollars", "What reading X cost this UTC month, by kind.",
                                  labels=["kind"])
        for kind, amount in sorted(read_spend.month_spend(self.repo, self.now).items()):
            spend.add_metric([kind], float(amount))
        yield spend
        yield GaugeMetricFamily("tweetbot_read_budget_dollars", "ANALYTICS_BUDGET: the most reading how posts did "
                                "may cost in a UTC month.", value=float(self.budget))
        yield GaugeMetricFamily("tweetbot_reading_paused", "1 while X's 402 or 429 pauses reading how posts did.",
                                value=1.0 if analytics.paused_until(self.repo, self.now) else 0.0)
        yield self._post_metrics(handles)

        beat = heartbeats.newest_beat(self.repo)
        if beat is not None:
            yield GaugeMetricFamily("tweetbot_worker_heartbeat_age_seconds",
                                    "Seconds since the newest worker heartbeat.",
                                    value=(self.now - beat).total_seconds())

    def _post_metrics(self, handles: dict[str, str]) -> Metric:
        """X's counts of the posts read in the last 30 days, as last read, summed per account by the store."""
        family = GaugeMetricFamily("tweetbot_post_metric", "How the posts read from X in the last 30 days did: "
                                   "X's counts as last read, summed per account.", labels=["account", "metric"])
        totals: Counter[tuple[str, str]] = Counter()
        for (account_id, name), value in self.repo.reading_totals(self.now - RECENT).items():
            totals[handles.get(account_id, account_id), name] += value
        for (handle, name), value in sorted(totals.items()):
            family.add_metric([handle, name], value)
        return family

    @staticmethod
    def _of_kind(events: dict[tuple[str | None, str], int], kind: str) -> Counter[str | None]:
        return Counter({account_id: number for (account_id, found), number in events.items() if found == kind})

    @staticmethod
    def _per_account(counted: Counter[str | None], handles: dict[str, str]) -> list[tuple[str, int]]:
        """Every account (0 for none) and any gone account still in the events, by handle."""
        totals: Counter[str] = Counter({handle: 0 for handle in handles.values()})
        for account_id, number in counted.items():
            if account_id is not None:
                totals[handles.get(account_id, account_id)] += number
        return sorted(totals.items())


def metrics_response() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store(), now(), settings().analytics_budget))
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def bearer_gate() -> ResponseReturnValue | None:
    """The first gate (`web.gates`): `/metrics` with an Authorization header is answered here, by the
    token alone. Anything else goes on to the other gates (sign-in among them)."""
    if request.endpoint != ENDPOINT or "Authorization" not in request.headers:
        return None
    scheme, _, given = request.headers["Authorization"].partition(" ")
    expected = settings().metrics_token
    if expected and scheme.lower() == "bearer" and same_secret(given.strip(), expected):
        return metrics_response()
    reason = "wrong token" if expected else "METRICS_TOKEN is not set: sign in instead"
    return Response(f"401 Unauthorized: {reason}\n", 401, content_type="text/plain; charset=utf-8",
                    headers={"WWW-Authenticate": 'Bearer realm="tweetbot metrics"', "Cache-Control": "no-store"})


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    """For a signed-in session (the sign-in gate has let it through)."""
    return metrics_response()
