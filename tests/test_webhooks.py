"""Signed durable webhooks (bot.webhooks): the outbox in the store, written with the change it reports,
delivered at least once with one id per event, signed as the `standardwebhooks` package verifies,
retried with growing gaps, paused (and said so) when a receiver keeps failing.

Every delivery the receiver here gets is verified with `standardwebhooks.Webhook(secret).verify`, the
reference implementation, never with our own signing code.
"""
from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook as Verifier

from bot import alerts, queue, webhooks
from bot.api_keys import create_key
from bot.crypto import TokenCipher
from bot.models import POSTED, Account, Post, utcnow
from bot.posting.outcomes import mark_posted
from bot.settings import load_settings
from bot.store import ClaimLost, Delivery, Repository
from bot.store.file import TinyStore
from bot.store.file.backup import restore_backup
from bot.store.postgres import PostgresStore
from bot.webhooks import POST_FAILED, POST_POSTED, POST_QUEUED, Deliverer
from web import create_app

from conftest import TWEETBOT, tweetbot_env
from sandbox_helpers import SandboxControl
from store_support import StoreAt
from test_posting import TWEETS, Rig
from web_support import Browser, text, web_env
from worker_support import (
    WorkerProcess,
    connect_accounts,
    connect_user,
    open_test_store,
    wait_until,
)


@dataclass
class Received:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def message(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every request and answers `answer` (the test sets it)."""

    def __init__(self) -> None:
        self.answer = 204
        self.received: list[Received] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = owner.answer
                owner.received.append(Received(status, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks?token=in-the-query"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """Every request received, each verified by the reference implementation (raises if one is not)."""
        return [Verifier(secret).verify(r.body, r.headers) for r in self.received]

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.message["type"] == event_type]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


class Clock:
    """The deliverer's clock, moved by the test: the backoff is waited for by moving it, never by sleeping."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def a_post(account_id: str = "42", text: str = "hello") -> Post:
    return Post(id=0, account_id=account_id, parts=(text,), due_at=utcnow())


# -- the store: subscriptions and the outbox ----------------------------------------------------------


def test_a_subscription_keeps_its_secret_sealed_and_its_deliveries_go_with_it(store_at: StoreAt) -> None:
    store = store_at.open()
    made = webhooks.subscribe(store, "https://example.test/in", [POST_POSTED, POST_FAILED])
    assert made.secret.startswith("whsec_") and len(made.secret) > 40
    assert made.secret not in repr(made)
    again = store_at.open()
    assert again.list_webhooks() == [made] and again.get_webhook(made.id) == made
    assert webhooks.emit(store, POST_POSTED, {"post_id": 1}) == 1
    assert webhooks.emit(store, POST_QUEUED, {"post_id": 1}) == 0  # not subscribed to
    store_at.wait_until_settled()
    raw = store_at.raw()
    assert made.secret.encode() not in raw and made.secret.removeprefix("whsec_").encode() not in raw
    [delivery] = again.deliveries()
    assert delivery.event_id.startswith("msg_") and delivery.type == POST_POSTED
    assert json.loads(delivery.body)["data"] == {"post_id": 1}
    again.remove_webhook(made.id)
    assert store.list_webhooks() == [] and store.deliveries() == []


def test_a_claim_holds_a_delivery_for_one_attempt_and_a_lapsed_claim_is_claimed_again(store_at: StoreAt) -> None:
    store, other = store_at.open(), store_at.open()
    hook = webhooks.subscribe(store, "https://example.test/in", [POST_POSTED])
    for n in range(3):
        webhooks.emit(store, POST_POSTED, {"n": n})
    now = utcnow() + timedelta(seconds=1)
    first = store.claim_deliveries(now, 2, now + timedelta(seconds=10))
    second = other.claim_deliveries(now, 5, now + timedelta(seconds=10))
    assert len(first) == 2 and len(second) == 1
    assert {d.id for d in first}.isdisjoint({d.id for d in second})
    assert other.claim_deliveries(now, 5, now + timedelta(seconds=10)) == []  # every claim is live
    later = now + timedelta(seconds=11)
    lapsed = other.claim_deliveries(later, 5, later + timedelta(seconds=10))
    assert len(lapsed) == 3  # their claims lapsed: a worker that died holds nothing
    with pytest.raises(ClaimLost):
        store.update_delivery(first[0].id, under_claim=first[0].claim_token, delivered_at=later)
    done = other.update_delivery(lapsed[0].id, under_claim=lapsed[0].claim_token, delivered_at=later)
    assert done.finished
    store.update_webhook(hook.id, paused_at=later, pause_reason="test")
    much_later = later + timedelta(minutes=5)
    assert store.claim_deliveries(much_later, 5, much_later + timedelta(seconds=10)) == []  # paused: none
    assert [d.id for d in store.deliveries()] == sorted((d.id for d in lapsed), reverse=True)


def test_four_stores_claiming_at_once_never_hold_the_same_delivery(store_at: StoreAt) -> None:
    store = store_at.open()
    webhooks.subscribe(store, "https://example.test/in", [POST_POSTED])
    for n in range(40):
        webhooks.emit(store, POST_POSTED, {"n": n})
    now = utcnow() + timedelta(seconds=1)
    taken: list[list[int]] = [[] for _ in range(4)]

    def claim_all(mine: list[int]) -> None:
        claimer = store_at.open()  # a store of its own, as another worker process has
        while batch := claimer.claim_deliveries(now, 3, now + timedelta(minutes=1)):
            mine.extend(d.id for d in batch)

    threads = [threading.Thread(target=claim_all, args=(mine,)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [delivery_id for mine in taken for delivery_id in mine]
    assert sorted(every) == sorted(d.id for d in store.deliveries(limit=100))  # each claimed once, none left


def test_an_event_is_written_with_its_change_and_not_at_all_when_the_change_fails(store_at: StoreAt) -> None:
    store = store_at.open()
    webhooks.subscribe(store, "https://example.test/in", [POST_QUEUED, POST_POSTED])
    [queued] = queue.add_posts(store, [a_post()])
    [delivery] = store.deliveries()
    assert delivery.type == POST_QUEUED and json.loads(delivery.body)["data"]["post_id"] == queued.id
    with pytest.raises(RuntimeError), store.transaction():
        queue.add_posts(store, [a_post(text="never queued")])
        raise RuntimeError("the transaction fails after the change")
    claimed = store.claim_due("42", utcnow(), 5, "test-worker")[0]
    with pytest.raises(ClaimLost):  # a claim another worker took over: its outcome is not written, nor told
        mark_posted(store, replace(claimed, claim_token="not-the-claim"), utcnow(), store_at.settings().post_url,
                    ("1",))
    store_at.wait_until_settled()
    fresh = store_at.open()
    assert [p.parts for p in fresh.queued_posts()] == [("hello",)]
    assert [d.type for d in fresh.deliveries()] == [POST_QUEUED]
    mark_posted(store, claimed, utcnow(), store_at.settings().post_url, ("1812",))
    posted = [d for d in fresh.deliveries() if d.type == POST_POSTED]
    assert len(posted) == 1 and json.loads(posted[0].body)["data"]["tweet_ids"] == ["1812"]
    assert json.loads(posted[0].body)["data"]["urls"] == [store_at.settings().post_url("1812", None)]


def test_old_finished_deliveries_are_forgotten_but_the_newest_200_and_the_unfinished(store_at: StoreAt) -> None:
    store = store_at.open()
    hook = webhooks.subscribe(store, "https://example.test/in", [POST_POSTED])
    long_ago, lately = utcnow() - timedelta(days=40), utcnow() - timedelta(days=1)

    def made(n: int, at: datetime, finished: bool) -> Delivery:
        return Delivery(0, hook.id, f"msg_{n}", POST_POSTED, "{}", created_at=at, next_attempt_at=at,
                        delivered_at=at if finished else None)

    store.add_deliveries([made(n, long_ago, True) for n in range(205)] + [made(205, long_ago, False)])
    store.add_deliveries([made(206, lately, True)])
    assert store.forget_deliveries(utcnow() - timedelta(days=30)) == 6
    kept = store.deliveries(limit=1000)
    assert len(kept) == 201 and sum(d.finished for d in kept) == 200
    assert {d.event_id for d in kept if not d.finished} == {"msg_205"} and kept[0].event_id == "msg_206"
    assert store.forget_deliveries(utcnow() - timedelta(days=30)) == 0


def test_subscriptions_and_their_outbox_travel_with_a_store_copy_and_a_backup(
        store_at: StoreAt, tmp_path: Path, second_database_url: str) -> None:
    store, cipher = store_at.open(), TokenCipher([store_at.key])
    hook = webhooks.subscribe(store, "https://example.test/in", [POST_POSTED])
    webhooks.emit(store, POST_POSTED, {"post_id": 1})
    webhooks.emit(store, POST_POSTED, {"post_id": 2})
    first = store.deliveries()[-1]
    store.update_delivery(first.id, delivered_at=utcnow(), last_status=200, attempts=1)
    backup = store.backup(tmp_path / "backup.tar.gz")
    restored_at = tmp_path / "restored" / "tweetbot.json"
    restored_at.parent.mkdir()
    restore_backup(backup.path, restored_at, cipher)
    copies: list[Repository] = [TinyStore(tmp_path / "copy" / "tweetbot.json", cipher),
                                PostgresStore(second_database_url, cipher), TinyStore(restored_at, cipher)]
    for target in copies[:2]:
        target.load(store.dump())
    for target in copies:
        assert target.list_webhooks() == [hook] and target.deliveries() == store.deliveries()
        assert webhooks.subscribe(target, "https://example.test/more", [POST_FAILED]).id == hook.id + 1
        assert webhooks.emit(target, POST_FAILED, {}) == 1 and target.deliveries()[0].id == first.id + 2
    copies[1].close()


# -- delivering: signed, retried with growing gaps, paused --------------------------------------------------


def deliverer_for(store_at: StoreAt, clock: Clock, **variables: str) -> Deliverer:
    environ = {"SECRET_KEY": "s" * 32, "ADMIN_PASSWORD": "store-test-password", "TOKEN_KEY": store_at.key,
               **store_at.env(), **variables}
    return Deliverer(load_settings(dotenv_path=None, environ=environ), store_at.open(), clock)


def test_deliveries_are_signed_as_the_reference_verifies_with_one_id_per_event(
        store_at: StoreAt, receiver: Receiver) -> None:
    store, clock = store_at.open(), Clock()
    first = webhooks.subscribe(store, receiver.url, [POST_POSTED])
    second = webhooks.subscribe(store, receiver.url, [POST_POSTED, POST_FAILED])
    webhooks.emit(store, POST_POSTED, {"post_id": 7, "text": "ünïcode ✓"}, at=clock.now)
    deliverer = deliverer_for(store_at, clock)
    try:
        assert deliverer.deliver_now() == 2
    finally:
        deliverer.shutdown()
    ids = {d.event_id for d in store.deliveries()}
    assert len(ids) == 1 and {r.headers["webhook-id"] for r in receiver.received} == ids  # one event, one id
    for hook in (first, second):  # each subscription's request verifies with its own secret only
        mine = [r for r in receiver.received if _verifies(hook.secret, r)]
        assert len(mine) == 1
        assert Verifier(hook.secret).verify(mine[0].body, mine[0].headers) == {
            "type": POST_POSTED, "timestamp": mine[0].message["timestamp"], "data": {"post_id": 7, "text": "ünïcode ✓"}}
    assert all(d.delivered_at is not None and d.last_status == 204 and d.attempts == 1 for d in store.deliveries())


def _verifies(secret: str, request: Received) -> bool:
    try:
        Verifier(secret).verify(request.body, request.headers)
    except Exception:
        return False
    return True


def test_a_receiver_answering_500_gets_retries_with_growing_gaps_then_the_subscription_pauses_and_says_so(
        store_at: StoreAt, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tweetbot")
    receiver.answer = 500
    store, clock = store_at.open(), Clock()
    hook = webhooks.subscribe(store, receiver.url, [POST_FAILED])
    webhooks.emit(store, POST_FAILED, {"post_id": 1, "reason": "X refused it"}, at=clock.now)
    deliverer = deliverer_for(store_at, clock, WEBHOOK_PAUSE_AFTER="4", WEBHOOK_BACKOFF="1")
    gaps = []
    try:
        while store.get_webhook(hook.id).paused_at is None:  # type: ignore[union-attr]
            assert deliverer.deliver_now() == 1
            [delivery] = store.deliveries()
            assert delivery.last_attempt_at == clock.now and delivery.last_status == 500
            gaps.append(delivery.next_attempt_at - clock.now)
            clock.now = delivery.next_attempt_at  # the next attempt is due: move the clock there
        assert deliverer.deliver_now() == 0  # paused: nothing is sent
    finally:
        deliverer.shutdown()
    assert len(gaps) == 4 and all(a < b for a, b in zip(gaps, gaps[1:], strict=False)), gaps
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1 and len(receiver.received) == 4
    receiver.verified(hook.secret)
    paused = store.get_webhook(hook.id)
    assert paused is not None and paused.paused_at is not None and "4 failed attempts in a row" in (
        paused.pause_reason or "")
    said = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
    assert len(said) == 1 and f"webhook {hook.id}" in said[0] and "token=" not in said[0]
    assert all(hook.secret not in r.getMessage() for r in caplog.records)
    # Resumed, it delivers what waited, under the same id.
    webhooks.resume(store, hook.id)
    receiver.answer = 200
    deliverer = deliverer_for(store_at, clock)
    try:
        assert deliverer.deliver_now() == 1
    finally:
        deliverer.shutdown()
    assert store.deliveries()[0].delivered_at is not None
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1


def test_alert_webhook_url_is_a_subscription_to_what_needs_the_owner_with_a_line_for_chat(
        store_at: StoreAt, receiver: Receiver) -> None:
    """ALERT_WEBHOOK_URL is kept as a subscription (made, kept, moved, removed with the setting): what
    needs the owner reaches it through the outbox, signed, each with a `text` line (what Slack's incoming
    webhooks show), and a subscription of anyone else that pauses is told to it."""
    store, clock = store_at.open(), Clock()
    made = alerts.keep_alert_subscription(store, receiver.url, clock.now)
    assert made is not None and made.events == webhooks.ALERT_EVENTS and made.managed_by == "ALERT_WEBHOOK_URL"
    assert alerts.keep_alert_subscription(store, receiver.url, clock.now) == made  # every round: the same one
    with pytest.raises(webhooks.WebhookRefused, match="unset that setting"):
        webhooks.unsubscribe(store, made.id)
    with Receiver() as failing:
        failing.answer = 500
        other = webhooks.subscribe(store, failing.url, [POST_FAILED])
        webhooks.emit(store, POST_FAILED, {"post_id": 1}, at=clock.now)
        flagged = replace(Account(user_id="7", username="carol"), status="needs_reconnect",
                          last_error="X refused the refresh token")
        webhooks.account_event(store, webhooks.ACCOUNT_NEEDS_RECONNECT, flagged, clock.now)
        deliverer = deliverer_for(store_at, clock, WEBHOOK_PAUSE_AFTER="1")
        try:
            assert deliverer.deliver_now() == 2  # the failing one (now paused) and the account's
            assert deliverer.deliver_now() == 1  # the pause, told to the owner
        finally:
            deliverer.shutdown()
    said = [r.message for r in receiver.received]
    assert [m["type"] for m in said] == [webhooks.ACCOUNT_NEEDS_RECONNECT, webhooks.WEBHOOK_PAUSED]
    assert said[0]["text"] == "tweetbot: @carol needs its owner to reconnect it: X refused the refresh token"
    assert said[1]["data"]["webhook_id"] == other.id and f"webhook {other.id}" in said[1]["text"]
    receiver.verified(store.get_webhook(made.id).secret)  # type: ignore[union-attr]
    moved = alerts.keep_alert_subscription(store, receiver.url + "&moved=1", clock.now)
    assert moved is not None and moved.id != made.id and store.get_webhook(made.id) is None
    assert alerts.keep_alert_subscription(store, None, clock.now) is None
    assert [hook.id for hook in store.list_webhooks()] == [other.id]


def test_a_delivery_is_given_up_after_24_hours_and_redelivered_on_demand_with_its_id(
        store_at: StoreAt, receiver: Receiver) -> None:
    receiver.answer = 503
    store, clock = store_at.open(), Clock()
    hook = webhooks.subscribe(store, receiver.url, [POST_FAILED])
    webhooks.emit(store, POST_FAILED, {"post_id": 1}, at=clock.now - timedelta(hours=24))  # made a day ago
    deliverer = deliverer_for(store_at, clock, WEBHOOK_PAUSE_AFTER="100")
    try:
        assert deliverer.deliver_now() == 1
        [given_up] = store.deliveries()
        assert given_up.given_up_at is not None and given_up.finished
        assert deliverer.deliver_now() == 0
        receiver.answer = 200
        webhooks.redeliver(store, given_up.id, clock.now)
        assert deliverer.deliver_now() == 1
    finally:
        deliverer.shutdown()
    assert [r.headers["webhook-id"] for r in receiver.received] == [given_up.event_id] * 2
    receiver.verified(hook.secret)
    assert store.deliveries()[0].delivered_at is not None


# -- the worker: real processes against the sandbox ------------------------------------------------------


def worker_env(tmp_path: Path, sandbox: SandboxControl, store_env: dict[str, str], **more: str) -> dict[str, str]:
    return tweetbot_env(tmp_path, sandbox.url, **{"RETRY_BACKOFF": "0.5", "WEBHOOK_BACKOFF": "0.2",
                                                  "WEBHOOK_TIMEOUT": "2", **store_env, **more})


@pytest.mark.slow
def test_a_post_goes_out_and_its_events_arrive_signed(
        tmp_path: Path, sandbox: SandboxControl, store_env: dict[str, str], receiver: Receiver) -> None:
    env = worker_env(tmp_path, sandbox, store_env)
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="hook")
    hook = webhooks.subscribe(store, receiver.url, [POST_QUEUED, POST_POSTED])
    post = queue.queue_post(store, account.handle, ["out, and told"], utcnow())
    worker = WorkerProcess(env, tmp_path)
    try:
        wait_until(lambda: receiver.of_type(POST_POSTED), 30, "post.posted at the receiver")
        assert worker.terminate() == 0
    finally:
        worker.stop_quietly()
    messages = receiver.verified(hook.secret)
    assert [m["type"] for m in messages] == [POST_QUEUED, POST_POSTED]
    [at_x] = sandbox.posts()
    posted = messages[1]["data"]
    assert posted["post_id"] == post.id and posted["status"] == POSTED and posted["tweet_ids"] == [at_x["id"]]
    assert posted["urls"] == [f"{sandbox.url}/{account.username}#post-{at_x['id']}"]
    assert hook.secret not in worker.log()


@pytest.mark.slow
def test_a_worker_killed_before_post_posted_was_delivered_delivers_it_after_the_restart_with_the_same_id(
        tmp_path: Path, sandbox: SandboxControl, store_env: dict[str, str], receiver: Receiver) -> None:
    receiver.answer = 500  # refused until the kill
    env = worker_env(tmp_path, sandbox, store_env)
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="killed")
    hook = webhooks.subscribe(store, receiver.url, [POST_POSTED])
    (post,) = store.add_posts([a_post(account.user_id, "out before the kill")])
    worker = WorkerProcess(env, tmp_path)
    try:
        wait_until(lambda: receiver.of_type(POST_POSTED), 30, "a refused post.posted")
        worker.kill()
    finally:
        worker.stop_quietly()
    assert store.get_post(post.id).status == POSTED  # type: ignore[union-attr]
    assert all(d.delivered_at is None for d in store.deliveries())
    receiver.answer = 200
    again = WorkerProcess(env, tmp_path, name="again")
    try:
        wait_until(lambda: any(r.status == 200 for r in receiver.received), 30, "post.posted accepted")
        assert again.terminate() == 0
    finally:
        again.stop_quietly()
    messages = receiver.verified(hook.secret)
    assert {m["data"]["post_id"] for m in messages} == {post.id}
    refused = [r.headers["webhook-id"] for r in receiver.received if r.status == 500]
    accepted = [r.headers["webhook-id"] for r in receiver.received if r.status == 200]
    assert refused and accepted == [refused[0]] and set(refused) == {refused[0]}
    [delivery] = store.deliveries()
    assert delivery.event_id == refused[0] and delivery.delivered_at is not None
    assert hook.secret not in worker.log() + again.log()


@pytest.mark.slow
def test_the_worker_pauses_a_subscription_whose_receiver_keeps_failing_and_logs_it_once(
        tmp_path: Path, sandbox: SandboxControl, store_env: dict[str, str], receiver: Receiver) -> None:
    receiver.answer = 500
    env = worker_env(tmp_path, sandbox, store_env, WEBHOOK_PAUSE_AFTER="3", WEBHOOK_BACKOFF="0.05")
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="paused")
    hook = webhooks.subscribe(store, receiver.url, [POST_QUEUED])
    queue.queue_post(store, account.handle, ["queued, told to a failing receiver"], utcnow() + timedelta(days=1))
    worker = WorkerProcess(env, tmp_path)
    try:
        wait_until(lambda: store.get_webhook(hook.id).paused_at, 30, "the subscription to pause")  # type: ignore[union-attr]
        wait_until(lambda: "paused" in worker.log(), 10, "the pause in the log")
        assert worker.terminate() == 0
    finally:
        worker.stop_quietly()
    assert len(receiver.received) == 3
    receiver.verified(hook.secret)
    paused_lines = [line for line in worker.log().splitlines() if "paused" in line]
    assert len(paused_lines) == 1 and "token=" not in paused_lines[0]
    assert hook.secret not in worker.log()


# -- the command line --------------------------------------------------------------------------------------


def tweetbot(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWEETBOT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_the_cli_adds_lists_tests_and_removes_a_webhook_and_shows_the_secret_once(
        tmp_path: Path, store_env: dict[str, str]) -> None:
    env = tweetbot_env(tmp_path, "http://127.0.0.1:9", **store_env)
    added = tweetbot(tmp_path, env, "webhooks", "add", "https://example.test/in?token=t",
                     "--events", "post.posted", "--events", "post.failed")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and "shown this once" in added.stderr
    listed = tweetbot(tmp_path, env, "webhooks", "list")
    assert listed.returncode == 0 and "post.posted,post.failed" in listed.stdout and "active" in listed.stdout
    assert secret not in listed.stdout + listed.stderr and "token=t" not in listed.stdout
    store: Repository = open_test_store(env)
    [hook] = store.list_webhooks()
    assert hook.secret == secret
    tested = tweetbot(tmp_path, env, "webhooks", "test", str(hook.id))
    assert tested.returncode == 0, tested.stderr
    assert [d.type for d in store.deliveries()] == [webhooks.TEST_EVENT]
    refused = tweetbot(tmp_path, env, "webhooks", "add", "https://example.test/in", "--events", "post.sent")
    assert refused.returncode == 2 and "post.sent" in refused.stderr
    removed = tweetbot(tmp_path, env, "webhooks", "remove", str(hook.id))
    assert removed.returncode == 0 and store.list_webhooks() == [] and store.deliveries() == []
    assert tweetbot(tmp_path, env, "webhooks", "remove", str(hook.id)).returncode == 1


# -- the dashboard's page -------------------------------------------------------------------------------------


def test_the_webhooks_page_adds_shows_the_secret_once_logs_deliveries_redelivers_tests_and_removes(
        tmp_path: Path, sandbox: SandboxControl, store_env: dict[str, str], receiver: Receiver) -> None:
    env = web_env(tmp_path, sandbox, **store_env)
    app = create_app({"SETTINGS": load_settings(None, env), "TESTING": True})
    stranger = Browser(app)
    assert stranger.get("/webhooks").status_code == 303  # to the sign-in page
    browser = Browser(app)
    assert browser.sign_in().status_code == 302
    assert browser.post("/webhooks", {"url": receiver.url, "events": POST_FAILED}, csrf=False).status_code == 400
    added = browser.post("/webhooks", {"url": receiver.url, "events": [POST_FAILED, POST_POSTED]})
    assert added.status_code == 200
    store = open_test_store(env)
    [hook] = store.list_webhooks()
    assert hook.secret in text(added) and hook.events == (POST_FAILED, POST_POSTED)
    listed = text(browser.get("/webhooks"))
    assert hook.secret not in listed and "token=in-the-query" not in listed and "post.failed, post.posted" in listed
    refused = browser.post("/webhooks", {"url": "ftp://nowhere", "events": POST_FAILED})
    assert refused.status_code == 400 and "Not added" in text(refused) and len(store.list_webhooks()) == 1
    receiver.answer = 500
    webhooks.emit(store, POST_FAILED, {"post_id": 3})
    deliverer = Deliverer(load_settings(None, env), store)
    try:
        assert deliverer.deliver_now() == 1
    finally:
        deliverer.shutdown()
    [delivery] = store.deliveries()
    log_page = text(browser.get("/webhooks"))
    assert delivery.event_id in log_page and ">500<" in log_page
    assert browser.post(f"/webhooks/deliveries/{delivery.id}/redeliver").status_code == 303
    again = store.get_delivery(delivery.id)
    assert again is not None and again.next_attempt_at < delivery.next_attempt_at and again.event_id == delivery.event_id
    assert browser.post(f"/webhooks/{hook.id}/test").status_code == 303
    assert [d.type for d in store.deliveries()] == [webhooks.TEST_EVENT, POST_FAILED]
    asked = text(browser.get(f"/webhooks/{hook.id}/remove"))
    assert f"Remove webhook {hook.id}?" in asked
    assert browser.post(f"/webhooks/{hook.id}/remove").status_code == 303
    assert store.list_webhooks() == [] and store.deliveries() == []
    assert sum(hook.secret in page for page in browser.pages) == 1  # the answer to the add form, only


# -- where each event is emitted: the worker's own code against the sandbox, in this process ------------------


def test_each_event_is_emitted_where_its_change_is_written(
        tmp_path: Path, sandbox: SandboxControl, store_env: dict[str, str]) -> None:
    rig = Rig(tmp_path, sandbox, **store_env)
    try:
        store, user = rig.store, rig.accounts[0]
        webhooks.subscribe(store, "https://example.test/in", webhooks.EVENTS)

        def told(event_type: str) -> list[dict[str, Any]]:
            return [json.loads(d.body)["data"] for d in store.deliveries(limit=1000) if d.type == event_type]

        rig.sandbox.fault(TWEETS, "status", status=403, times=1)
        failed = rig.send(rig.queue("refused by X"))
        [data] = told(POST_FAILED)
        assert data["post_id"] == failed.id and data["failure_kind"] == "refused" and "403" in data["reason"]

        rig.sandbox.limit(TWEETS, {"scope": "user", "window": 900, "limit": 0})
        held = rig.send(rig.queue("held by a 429"))
        [data] = told(webhooks.POST_HELD)
        hold_until = store.get_account(user.user_id).hold_until  # type: ignore[union-attr]
        assert data["post_id"] == held.id and "rate limited" in data["reason"]
        assert datetime.fromisoformat(data["until"]) == hold_until

        keeper = rig.worker.tokens
        rig.sandbox.fault("POST /2/oauth2/token", "status", status=503, times=3)
        for _ in range(3):
            keeper.refresh_if_due(user.user_id, force=True)
        [data] = told(webhooks.ACCOUNT_REFRESH_FAILING)  # once, at the third failure in a row
        assert data["account_id"] == user.user_id and data["failures"] == 3

        rig.sandbox.revoke_user(user.user_id)
        keeper.refresh_if_due(user.user_id, force=True)
        [data] = told(webhooks.ACCOUNT_NEEDS_RECONNECT)
        assert data["status"] == "needs_reconnect" and "refresh token" in data["reason"]

        connect_user(store, rig.sandbox, {"id": user.user_id, "username": user.username})
        [data] = told(webhooks.ACCOUNT_RECONNECTED)
        assert data == {"account_id": user.user_id, "username": user.username, "status": "active", "reason": None}
        assert told(POST_QUEUED) == []  # straight into the store: bot.queue was not asked
    finally:
        rig.dispatcher.shutdown()


def test_a_post_queued_through_the_http_api_is_told_as_the_cli_tells_it(
        tmp_path: Path, sandbox: SandboxControl, store_env: dict[str, str]) -> None:
    env = web_env(tmp_path, sandbox, **store_env)
    app = create_app({"SETTINGS": load_settings(None, env), "TESTING": True})
    store = open_test_store(env)
    (account,) = connect_accounts(store, sandbox, 1, prefix="viaapi")
    webhooks.subscribe(store, "https://example.test/in", [POST_QUEUED])
    key = create_key(store, "hooks", ["posts:write"], utcnow())[1]
    answer = app.test_client().post("/api/v1/posts", json={"account": account.handle, "text": "by the API",
                                                           "at": "now"},
                                    headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "once"})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    [delivery] = store.deliveries()
    data = json.loads(delivery.body)["data"]
    assert delivery.type == POST_QUEUED and data["post_id"] == answer.get_json()["id"]
    assert data["parts"] == ["by the API"]
