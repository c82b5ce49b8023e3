"""The sandbox's metrics and read charges (issue 22, x-api-facts §6): every post shows `public_metrics`
that grow with its age; `non_public_metrics` only for its author, within 30 days; each read is billed
as X bills it under pay-per-use (a post read $0.005, an owned read $0.001, a post once a UTC day), and a
spent credit answers 402 to reads while posting goes on.

Requests go through a session the `xcheck` fixture watches: every body is validated against X's OpenAPI.
"""
from __future__ import annotations

from typing import Any

import requests

from sandbox.metrics import poll_tally
from sandbox.options import SandboxConfig

from sandbox_helpers import SandboxControl, SpecRecorder

PUBLIC = {"impression_count", "like_count", "retweet_count", "reply_count", "quote_count", "bookmark_count"}
DAY = 86400


class Reader:
    """A user's bearer session on the sandbox's API."""

    def __init__(self, sandbox: SandboxControl, xcheck: SpecRecorder, user: str) -> None:
        self.sandbox = sandbox
        sandbox.configure(access_token_lifetime=60 * DAY)  # the tests move the clock by days and weeks
        tokens = sandbox.grant(user)
        self.user_id = tokens["user"]["id"]
        self.http = xcheck.attach(requests.Session())
        self.http.headers["Authorization"] = f"Bearer {tokens['access_token']}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.sandbox.url + path, params=params, timeout=10)

    def tweet(self, text: str) -> str:
        answer = self.http.post(self.sandbox.url + "/2/tweets", json={"text": text}, timeout=10)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["data"]["id"])

    def metrics(self, post_id: str, fields: str = "public_metrics", parameter: str = "tweet.fields") -> dict[str, Any]:
        answer = self.get(f"/2/tweets/{post_id}", **{parameter: fields})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def test_public_metrics_grow_with_a_post_s_age_and_differ_between_posts(sandbox: SandboxControl,
                                                                        xcheck: SpecRecorder) -> None:
    alice = Reader(sandbox, xcheck, "sandbox_alice")
    first, second = alice.tweet("first"), alice.tweet("second")
    fresh = alice.metrics(first)["data"]["public_metrics"]
    assert set(fresh) == PUBLIC and set(fresh.values()) == {0}  # nobody has seen it yet
    sandbox.advance(3600)
    hour = alice.metrics(first)["data"]["public_metrics"]
    assert all(hour[name] > 0 for name in PUBLIC), hour
    assert alice.metrics(second)["data"]["public_metrics"] != hour  # each post its own numbers
    sandbox.advance(7 * DAY)
    week = alice.metrics(first)["data"]["public_metrics"]
    assert all(week[name] >= hour[name] for name in PUBLIC) and week["impression_count"] > hour["impression_count"]
    current = alice.metrics(first, parameter="post.fields")["data"]["public_metrics"]  # 2.167's names
    assert current["repost_count"] == week["retweet_count"] and "retweet_count" not in current


def test_non_public_metrics_only_for_the_author_and_only_within_30_days(sandbox: SandboxControl,
                                                                         xcheck: SpecRecorder) -> None:
    alice, bob = Reader(sandbox, xcheck, "sandbox_alice"), Reader(sandbox, xcheck, "sandbox_bob")
    post = alice.tweet("mine")
    sandbox.advance(DAY)
    own = alice.metrics(post, "public_metrics,non_public_metrics")["data"]
    hidden = own["non_public_metrics"]
    public = own["public_metrics"]
    assert hidden["impression_count"] == public["impression_count"]
    assert hidden["engagements"] == (sum(public[n] for n in PUBLIC - {"impression_count", "bookmark_count"})
                                     + hidden["url_link_clicks"] + hidden["user_profile_clicks"])
    other = bob.metrics(post, "public_metrics,non_public_metrics")
    assert "non_public_metrics" not in other["data"] and other["data"]["public_metrics"] == public
    [refused] = other["errors"]
    assert (refused["field"], refused["resource_id"]) == ("non_public_metrics", post)
    sandbox.advance(30 * DAY)
    old = alice.metrics(post, "public_metrics,non_public_metrics")
    assert "non_public_metrics" not in old["data"] and old["errors"][0]["field"] == "non_public_metrics"


def test_reads_are_billed_per_post_once_a_utc_day_and_owned_reads_cost_less(sandbox: SandboxControl,
                                                                            xcheck: SpecRecorder) -> None:
    alice, bob = Reader(sandbox, xcheck, "sandbox_alice"), Reader(sandbox, xcheck, "sandbox_bob")
    sandbox.configure(app_owner=alice.user_id)
    posts = [alice.tweet(f"post {n}") for n in range(3)]
    assert sandbox.charges()["total_usd"] == 0  # posting is not a read
    assert alice.get("/2/tweets", ids=",".join(posts)).status_code == 200
    assert sandbox.charges()["by_endpoint"] == {"GET /2/tweets": 0.015}
    alice.get("/2/tweets", ids=",".join(posts))
    alice.get(f"/2/users/{alice.user_id}/tweets")
    assert sandbox.charges()["total_usd"] == 0.015  # the same posts, the same UTC day
    sandbox.advance(DAY)
    alice.get(f"/2/users/{alice.user_id}/tweets")  # an owned read: the owner's own timeline
    bob.get(f"/2/tweets/{posts[0]}")  # billed today already
    assert sandbox.charges()["by_endpoint"] == {"GET /2/tweets": 0.015, "GET /2/users/:id/tweets": 0.003}
    sandbox.advance(DAY)
    bob.get(f"/2/users/{alice.user_id}/tweets")  # not the owner: a post read
    assert sandbox.charges() == {"total_usd": 0.033, "by_endpoint": {"GET /2/tweets": 0.015,
                                                                    "GET /2/users/:id/tweets": 0.018},
                                 "posts_billed": 9}


def test_a_spent_credit_answers_402_to_reads_and_posting_goes_on(sandbox: SandboxControl,
                                                                 xcheck: SpecRecorder) -> None:
    alice = Reader(sandbox, xcheck, "sandbox_alice")
    sandbox.configure(credit_usd=0.01)
    posts = [alice.tweet(f"post {n}") for n in range(3)]
    assert alice.get("/2/tweets", ids=",".join(posts[:2])).status_code == 200  # $0.010: the credit, spent
    refused = alice.get("/2/tweets", ids=posts[2])
    assert refused.status_code == 402 and refused.json()["title"] == "CreditsDepleted"
    assert alice.tweet("posting goes on")
    assert sandbox.charges()["total_usd"] == 0.01


POLL = {"options": ["tea", "coffee"], "duration_minutes": 60}


def test_a_poll_s_votes_grow_with_its_age_and_stop_when_it_closes(sandbox: SandboxControl,
                                                                  xcheck: SpecRecorder) -> None:
    alice = Reader(sandbox, xcheck, "sandbox_alice")
    answer = alice.http.post(sandbox.url + "/2/tweets", json={
        "text": "tea or coffee?", "poll": POLL}, timeout=10)
    assert answer.status_code == 201, answer.text
    post_id = answer.json()["data"]["id"]

    def poll() -> dict[str, Any]:
        body = alice.get(f"/2/tweets/{post_id}", expansions="attachments.poll_ids",
                         **{"poll.fields": "options,voting_status,duration_minutes,end_datetime"}).json()
        [found] = body["includes"]["polls"]
        assert body["data"]["attachments"]["poll_ids"] == [found["id"]]
        return dict(found)

    fresh = poll()
    assert [o["votes"] for o in fresh["options"]] == [0, 0] and fresh["voting_status"] == "open"
    sandbox.advance(1800)
    half = poll()
    seed = SandboxConfig().seed
    assert [(o["label"], o["votes"]) for o in half["options"]] == poll_tally(seed, post_id, POLL, 1800)
    sandbox.advance(3 * 3600)
    closed = poll()
    sandbox.advance(DAY)
    assert closed["voting_status"] == "closed" and poll()["options"] == closed["options"]  # no votes once closed
    assert [(o["label"], o["votes"]) for o in closed["options"]] == poll_tally(seed, post_id, POLL, 3600)
    assert sum(o["votes"] for o in closed["options"]) > sum(o["votes"] for o in half["options"]) > 0
    page = requests.get(f"{sandbox.url}/sandbox_alice", timeout=10).text
    assert " / ".join(f"{o['label']} ({o['votes']:,} votes)" for o in closed["options"]) in page
