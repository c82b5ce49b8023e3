"""The store contract's claims, run keys, locks and leases, on every store (a file, PostgreSQL, and
PostgreSQL through pgbouncer in transaction mode).

A claim carries a token and an outcome is written only under it; a claim is taken over only
once it is old enough, by one taker; a generator run's key queues its posts once; a lock or
lease holds whatever happens to the connections, and every wait for one ends.
"""
from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest

from bot.models import POSTED, SCHEDULED, SENDING, Account, Post, utcnow
from bot.store import TAKE_OVER_EVENT, Claim, ClaimLost, Event, LockTimeout, Repository

from store_support import StoreAt
from worker_support import wait_until


def queued(store: Repository, count: int, account: str = "1") -> list[Post]:
    now = utcnow()
    return store.add_posts([Post(id=0, account_id=account, parts=(f"post {n}",), due_at=now - timedelta(seconds=9 - n))
                            for n in range(count)])


def cut_connections(at: StoreAt) -> int:
    """pg_terminate_backend on every session of the test's database but our own (the pooler's too), and
    wait until those backends are gone: pg_terminate_backend only asks, and a client that looks at its
    socket before its backend has ended would see a connection still open."""
    with psycopg.connect(at.admin_url, autocommit=True) as conn:
        cut = [row[0] for row in conn.execute(
            "WITH sessions AS MATERIALIZED (SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()) "
            "SELECT pid FROM sessions WHERE pg_terminate_backend(pid)")]
        wait_until(lambda: not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (cut,)).fetchone(),
                   10, "the cut backends to end")
    return len(cut)


# -- claims ---------------------------------------------------------------------------------------


def test_a_claim_carries_a_token_and_outcomes_are_written_only_under_it(store_at: StoreAt) -> None:
    store = store_at.open()
    first, second = queued(store, 2)
    claimed = store.claim_due("1", utcnow(), 5, "worker-a")
    tokens = {post.claim_token for post in claimed}
    assert len(tokens) == 1 and None not in tokens
    assert {post.claimed_at for post in claimed} == {claimed[0].sending_since}
    with pytest.raises(ClaimLost):
        store.update_post(first.id, under_claim="not-the-claim", status=POSTED)
    assert store.get_post(first.id) == claimed[0]  # nothing changed
    token = claimed[0].claim_token
    done = store.update_post(first.id, under_claim=token, status=POSTED)
    assert done.status == POSTED
    with pytest.raises(ClaimLost):  # finished: no claim holds it any more
        store.update_post(first.id, under_claim=token, last_error="late")
    back = store.update_post(second.id, under_claim=token, **claimed[1].handed_back())
    assert (back.status, back.claim_token, back.claimed_by, back.claimed_at) == (SCHEDULED, None, None, None)
    with pytest.raises(ClaimLost):  # scheduled again: not sending under any claim
        store.update_post(second.id, under_claim=token, status=POSTED)


def test_a_claim_is_taken_over_only_once_it_is_old_enough_and_by_one_taker(store_at: StoreAt) -> None:
    store = store_at.open()
    (post,) = queued(store, 1)
    now = utcnow()
    (claimed,) = store.claim_due("1", now, 1, "worker-a")
    assert store.take_over(claimed, "worker-b", now, claimed_before=now) is None  # live: not older than the cutoff
    assert store.events(kind=TAKE_OVER_EVENT) == []
    later = now + timedelta(seconds=60)
    taken = store.take_over(claimed, "worker-b", later, claimed_before=later - timedelta(seconds=45))
    assert taken is not None and taken.claimed_by == "worker-b" and taken.claimed_at == later
    assert taken.claim_token not in (None, claimed.claim_token) and taken.sending_since == claimed.sending_since
    assert store.take_over(claimed, "worker-c", later, claimed_before=later) is None  # its claim is not the old one
    with pytest.raises(ClaimLost):  # the worker that stalled records nothing over the settler
        store.update_post(post.id, under_claim=claimed.claim_token, status=POSTED)
    (event,) = store.events(kind=TAKE_OVER_EVENT)
    assert event.post_id == post.id and "worker-a" in (event.detail or "") and "worker-b" in (event.detail or "")
    assert store.update_post(post.id, under_claim=taken.claim_token, status=POSTED).status == POSTED


def test_two_takers_at_once_take_a_dead_claim_once(store_at: StoreAt) -> None:
    store = store_at.open()
    queued(store, 1)
    now = utcnow()
    (claimed,) = store.claim_due("1", now, 1, "worker-a")
    later = now + timedelta(minutes=5)
    stores = [store_at.open() for _ in range(4)]
    results: list[Post | None] = []
    barrier = threading.Barrier(len(stores))

    def take(taker: Repository, name: str) -> None:
        barrier.wait()
        results.append(taker.take_over(claimed, name, later, claimed_before=later - timedelta(seconds=45)))

    threads = [threading.Thread(target=take, args=(s, f"taker-{n}")) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [post for post in results if post is not None]
    assert len(results) == 4 and len(winners) == 1
    assert store.get_post(claimed.id) == winners[0] and winners[0].status == SENDING
    assert len(store.events(kind=TAKE_OVER_EVENT)) == 1


def test_a_run_key_queues_its_posts_once(store_at: StoreAt) -> None:
    store = store_at.open()
    post = Post(id=0, account_id="1", parts=("the daily quote",), due_at=utcnow())
    first = store.add_posts([post], run_key="quote|day at 09:00|UTC|day 739957")
    assert len(first) == 1
    assert store.add_posts([post], run_key="quote|day at 09:00|UTC|day 739957") == []
    assert len(store.add_posts([post], run_key="quote|day at 09:00|UTC|day 739958")) == 1
    assert [p.id for p in store.queued_posts()] == [first[0].id, first[0].id + 1]
    assert store.forget_runs(utcnow() + timedelta(seconds=1)) == 2
    assert len(store.add_posts([post], run_key="quote|day at 09:00|UTC|day 739957")) == 1  # forgotten: a new key


# -- locks and leases -----------------------------------------------------------------------------------


def test_an_account_lock_excludes_others_until_released(store_at: StoreAt) -> None:
    holder, other = store_at.open(), store_at.open()
    with holder.account_lock("42"):
        with pytest.raises(LockTimeout):
            other.account_lock("42", timeout=0).acquire(0)
        with other.account_lock("43", timeout=0):  # another account's lock is free
            pass
    with other.account_lock("42", timeout=0):
        pass


def test_free_account_locks_are_taken_at_once_and_the_held_ones_passed_over(store_at: StoreAt) -> None:
    holder, other = store_at.open(), store_at.open()
    with holder.account_lock("42"):
        taken = other.take_free_account_locks(["41", "42", "43", "43"])
        assert sorted(taken) == ["41", "43"]
        for user_id in ("41", "43"):
            with pytest.raises(LockTimeout):
                holder.account_lock(user_id, timeout=0).acquire(0)
        for lock in taken.values():
            lock.release()
    again = holder.take_free_account_locks(["41", "42", "43"])
    assert sorted(again) == ["41", "42", "43"]
    for lock in again.values():
        lock.release()


def test_a_new_pair_written_under_the_accounts_lock_leaves_it_free(store_at: StoreAt) -> None:
    """The write frees the lock itself on PostgreSQL (the file store: the holder's release); free after."""
    holder, other = store_at.open(), store_at.open()
    holder.save_account(Account(user_id="42", username="user42", access_token="AT-1", refresh_token="RT-1"))
    with holder.account_lock("42") as lock:
        spent = holder.get_account("42")
        assert spent is not None
        holder.replace_pair(spent, Event(utcnow(), "refreshed", "42"), lock, access_token="AT-2", refresh_token="RT-2")
        if store_at.database:  # PostgreSQL: the write freed it, while its holder is still in its block
            with other.account_lock("42", timeout=0):
                pass
    with other.account_lock("42", timeout=0):
        assert (other.get_account("42") or spent).refresh_token == "RT-2"


def test_a_lock_held_survives_its_connections_being_cut(store_at: StoreAt) -> None:
    holder, other = store_at.open(), store_at.open()
    lock = holder.account_lock("42")
    lock.acquire(-1)
    try:
        if store_at.database:
            assert cut_connections(store_at) >= 1  # every session of the database, the lock's holder's too
        with pytest.raises(LockTimeout):
            other.account_lock("42").acquire(0)
        assert holder.get_meta("anything") is None  # the holder's store works on (a new connection)
    finally:
        lock.release()
    with other.account_lock("42", timeout=0):
        pass
    holder.close()
    other.close()


def test_a_wait_for_a_lock_ends_when_the_caller_stops(store_at: StoreAt) -> None:
    holder, waiter = store_at.open(), store_at.open()
    stopping = threading.Event()
    with holder.account_lock("42"), holder.lease("maintenance"):
        timer = threading.Timer(0.3, stopping.set)
        timer.start()
        with pytest.raises(LockTimeout):
            waiter.account_lock("42", timeout=-1, stop=stopping.is_set).acquire(-1)  # without stop: for ever
        assert stopping.is_set()
        with pytest.raises(LockTimeout):
            waiter.lease("maintenance", stop=stopping.is_set).acquire(-1)
        timer.join()


def test_a_lease_is_exclusive_and_free_again_once_released(store_at: StoreAt) -> None:
    first, second = store_at.open(), store_at.open()
    lease = first.lease("maintenance:alerts")
    lease.acquire(0)
    with pytest.raises(LockTimeout):
        second.lease("maintenance:alerts").acquire(0)
    with second.lease("maintenance:retention"):  # another lease
        pass
    lease.release()
    with second.lease("maintenance:alerts"):
        pass
    first.close()
    second.close()


def test_a_claim_never_passes_over_an_earlier_post_another_transaction_holds(store_at: StoreAt) -> None:
    """While another transaction holds an account's earliest due post, a claim takes nothing of that
    account (PostgreSQL: at once; the file store: once the transaction ends) and never a later post."""
    holder, claimer = store_at.open(), store_at.open()
    holder.save_account(Account(user_id="1", username="one", access_token="a", refresh_token="r"))
    first, second = queued(holder, 2)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.transaction():
            holder.get_post(first.id)  # its row, locked (the file store: the whole store)
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(10)
    claims: list[Claim] = []
    claiming = threading.Thread(target=lambda: claims.append(claimer.claim_next(utcnow(), "worker-b", 5)))
    claiming.start()
    claiming.join(1)  # PostgreSQL answers at once; the file store waits for the holder
    release.set()
    thread.join()
    claiming.join()
    assert [p.id for p in claims[0].posts] in ([], [first.id, second.id])
    later = claimer.claim_next(utcnow(), "worker-b", 5)
    assert [p.id for p in [*claims[0].posts, *later.posts]] == [first.id, second.id]
    taken = claims[0] if claims[0].posts else later
    assert taken.account is not None and (taken.account.user_id, taken.account.access_token) == ("1", "a")
    assert (claims[0] if not claims[0].posts else later).account is None  # nothing claimed: no account
