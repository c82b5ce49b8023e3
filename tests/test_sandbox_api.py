"""The sandbox's v2 post and user endpoints answer as X does (x-api-facts §2, §3).

Requests go through a `requests.Session` the `xcheck` fixture watches, so every body
below is also validated against X's OpenAPI spec.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import tweepy

from bot.transport import mount_api_base

from sandbox_helpers import SandboxControl, SpecRecorder

UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
FORBIDDEN = {"title": "Forbidden", "type": "about:blank", "status": 403, "detail": "Forbidden"}
DUPLICATE = {"detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank",
             "title": "Forbidden", "status": 403}
TOO_LONG = ("Your Tweet text is too long. For more information on how Twitter determines text length see "
            "https://github.com/twitter/twitter-text.")


class Api:
    """A user's bearer session on the sandbox's API."""

    def __init__(self, sandbox: SandboxControl, xcheck: SpecRecorder, user: str, **grant: Any) -> None:
        self.sandbox = sandbox
        self.tokens = sandbox.grant(user, **grant)
        self.user = self.tokens["user"]
        self.http = xcheck.attach(requests.Session())
        self.http.headers["Authorization"] = f"Bearer {self.tokens['access_token']}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.sandbox.url + path, params=params, timeout=10)

    def post(self, path: str, payload: Any) -> requests.Response:
        return self.http.post(self.sandbox.url + path, json=payload, timeout=10)

    def delete(self, path: str) -> requests.Response:
        return self.http.delete(self.sandbox.url + path, timeout=10)

    def tweet(self, text: str, **extra: Any) -> requests.Response:
        return self.post("/2/tweets", {"text": text, **extra})


@pytest.fixture
def alice(sandbox: SandboxControl, xcheck: SpecRecorder) -> Api:
    return Api(sandbox, xcheck, "sandbox_alice")


@pytest.fixture
def bob(sandbox: SandboxControl, xcheck: SpecRecorder) -> Api:
    return Api(sandbox, xcheck, "sandbox_bob")


def test_users_me(alice: Api) -> None:
    answer = alice.get("/2/users/me")
    assert answer.status_code == 200
    assert answer.json() == {"data": {"id": alice.user["id"], "name": "Alice Sandbox", "username": "sandbox_alice"}}
    fields = alice.get("/2/users/me", **{"user.fields": "created_at,protected"}).json()["data"]
    assert fields["protected"] is False and fields["created_at"].endswith("Z")
    assert alice.get("/2/users/me", **{"user.fields": "shoe_size"}).status_code == 400


def test_create_post_answers_201_with_location(alice: Api) -> None:
    answer = alice.tweet("first post")
    assert answer.status_code == 201
    data = answer.json()["data"]
    assert data["text"] == "first post" and data["edit_history_tweet_ids"] == [data["id"]]
    assert answer.headers["location"].endswith(f"/2/tweets/{data['id']}")
    assert alice.get(f"/2/tweets/{data['id']}").json()["data"]["text"] == "first post"
    assert [p["id"] for p in alice.sandbox.posts("sandbox_alice")] == [data["id"]]


def test_unknown_fields_are_refused(alice: Api) -> None:
    for payload in ({"text": "hi", "visibility": "public"}, {"text": "hi", "reply": {"in_reply_to_tweet_id": "1",
                                                                                     "mood": "happy"}}):
        answer = alice.post("/2/tweets", payload)
        assert answer.status_code == 400
        body = answer.json()
        assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
        assert "is not defined in the schema" in body["errors"][0]["message"]
    assert alice.post("/2/tweets", {"text": 5}).status_code == 400
    assert alice.sandbox.posts() == []


def test_empty_or_invalid_text_is_refused(alice: Api) -> None:
    for payload in ({}, {"text": ""}, {"text": "   "}, {"text": "bad \ufffe char"}):
        answer = alice.post("/2/tweets", payload)
        assert answer.status_code == 400, payload
        assert answer.json()["errors"][0]["message"] != TOO_LONG
    assert alice.sandbox.posts() == []


def test_too_long_text_is_refused_with_xs_error(alice: Api) -> None:
    assert alice.tweet("a" * 280).status_code == 201
    answer = alice.tweet("b" * 281)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["message"] == TOO_LONG
    # Weighted: 140 CJK characters weigh 280, one more is too many.
    assert alice.tweet("字" * 140).status_code == 201
    assert alice.tweet("字" * 141).status_code == 400
    alice.sandbox.configure(too_long_status=403)
    later = alice.tweet("c" * 281)
    assert later.status_code == 403 and later.json()["detail"] == "You are not permitted to perform this action."
    assert len(alice.sandbox.posts()) == 2


def test_duplicate_of_a_recent_post_is_refused(alice: Api, bob: Api) -> None:
    assert alice.tweet("same words").status_code == 201
    again = alice.tweet("same words")
    assert again.status_code == 403 and again.json() == DUPLICATE
    assert bob.tweet("same words").status_code == 201  # another user may say it
    alice.sandbox.configure(duplicate_window=600)  # how far back X looks is not documented
    alice.sandbox.advance(601)
    assert alice.tweet("same words").status_code == 201  # no longer recent


def test_identical_posts_sent_at_once_store_one(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    users = [Api(sandbox, xcheck, "sandbox_bob") for _ in range(8)]  # eight sessions of one user
    barrier = threading.Barrier(len(users))

    def send(api: Api) -> int:
        barrier.wait()
        return api.tweet("racing the same words").status_code

    with ThreadPoolExecutor(len(users)) as pool:
        codes = sorted(pool.map(send, users))
    assert codes == [201] + [403] * 7
    assert len(sandbox.posts("sandbox_bob")) == 1


def test_a_deleted_post_no_longer_counts_as_duplicate(alice: Api) -> None:
    post_id = alice.tweet("say it twice").json()["data"]["id"]
    assert alice.delete(f"/2/tweets/{post_id}").json() == {"data": {"deleted": True}}
    assert alice.tweet("say it twice").status_code == 201


def test_delete_only_own_posts(alice: Api, bob: Api) -> None:
    post_id = alice.tweet("mine").json()["data"]["id"]
    refused = bob.delete(f"/2/tweets/{post_id}")
    assert refused.status_code == 403
    missing = alice.delete("/2/tweets/123")
    assert missing.status_code == 404
    assert missing.json()["type"] == "https://api.twitter.com/2/problems/resource-not-found"
    assert alice.delete(f"/2/tweets/{post_id}").status_code == 200
    gone = alice.get(f"/2/tweets/{post_id}")  # a lookup reports it as X does: 200 and an errors entry
    assert gone.status_code == 200 and "data" not in gone.json()
    assert gone.json()["errors"][0]["title"] == "Not Found Error"
    assert alice.sandbox.posts(include_deleted=True)[0]["deleted"] is True


def test_missing_scope_is_forbidden(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    reader = Api(sandbox, xcheck, "sandbox_carol", scopes=["tweet.read", "users.read"])
    assert reader.get("/2/users/me").status_code == 200
    answer = reader.tweet("can I?")
    assert answer.status_code == 403 and answer.json() == FORBIDDEN
    assert reader.post("/2/media/upload/initialize", {"media_type": "image/png", "total_bytes": 10}).json() == FORBIDDEN
    assert sandbox.posts() == []


def test_expired_revoked_and_unknown_tokens_are_unauthorized(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    sandbox.configure(access_token_lifetime=60)
    user = Api(sandbox, xcheck, "sandbox_alice")
    assert user.tokens["expires_in"] == 60
    assert user.get("/2/users/me").status_code == 200
    sandbox.advance(61)
    expired = user.tweet("too late")
    assert expired.status_code == 401 and expired.json() == UNAUTHORIZED
    assert "x-rate-limit-limit" not in expired.headers  # the caller is unknown
    anonymous = xcheck.attach(requests.Session())
    nobody = anonymous.get(sandbox.url + "/2/users/me", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert nobody.json() == UNAUTHORIZED
    assert anonymous.get(sandbox.url + "/2/users/me", timeout=10).status_code == 401


def test_user_posts_newest_first_with_paging(alice: Api, bob: Api) -> None:
    ids = [alice.tweet(f"post {n}").json()["data"]["id"] for n in range(12)]
    bob.tweet("not alice's")
    first = alice.get(f"/2/users/{alice.user['id']}/tweets", max_results=5).json()
    assert [p["id"] for p in first["data"]] == ids[::-1][:5]
    assert first["meta"]["result_count"] == 5
    assert first["meta"]["newest_id"] == ids[11] and first["meta"]["oldest_id"] == ids[7]
    second = alice.get(f"/2/users/{alice.user['id']}/tweets", max_results=5,
                       pagination_token=first["meta"]["next_token"]).json()
    third = alice.get(f"/2/users/{alice.user['id']}/tweets", max_results=5,
                      pagination_token=second["meta"]["next_token"]).json()
    assert [p["id"] for p in second["data"] + third["data"]] == ids[::-1][5:]
    assert "next_token" not in third["meta"]
    # Anyone may read a user's posts (bob reads alice's).
    assert bob.get(f"/2/users/{alice.user['id']}/tweets").json()["meta"]["result_count"] == 10


def test_user_posts_since_id_start_time_and_fields(alice: Api) -> None:
    early = alice.tweet("early").json()["data"]["id"]
    alice.sandbox.advance(3600)
    cut = alice.sandbox.now()
    late = alice.tweet("late").json()["data"]["id"]
    path = f"/2/users/{alice.user['id']}/tweets"
    assert [p["id"] for p in alice.get(path, since_id=early).json()["data"]] == [late]
    from sandbox.state import iso
    assert [p["id"] for p in alice.get(path, start_time=iso(cut)).json()["data"]] == [late]
    empty = alice.get(path, since_id=late).json()
    assert empty == {"meta": {"result_count": 0}}
    rich = alice.get(path, **{"tweet.fields": "created_at,author_id,conversation_id"}).json()["data"][0]
    assert rich["author_id"] == alice.user["id"] and rich["conversation_id"] == late and "created_at" in rich


@pytest.mark.parametrize("params", [{"max_results": "4"}, {"max_results": "101"}, {"pagination_token": "!!"},
                                    {"since_id": "abc"}, {"start_time": "yesterday"}])
def test_user_posts_parameter_errors(alice: Api, params: dict[str, str]) -> None:
    answer = alice.get(f"/2/users/{alice.user['id']}/tweets", **params)
    assert answer.status_code == 400
    assert answer.json()["title"] == "Invalid Request"


def test_unknown_user_and_post(alice: Api) -> None:
    """Lookups answer 200 with an errors entry (tests/test_sandbox_fields.py checks the bodies)."""
    for path, resource_type in (("/2/users/999/tweets", "user"), ("/2/tweets/999", "tweet")):
        answer = alice.get(path)
        assert answer.status_code == 200 and "data" not in answer.json()
        assert answer.json()["errors"][0]["resource_type"] == resource_type


def test_text_comes_back_as_x_returns_it(alice: Api) -> None:
    answer = alice.tweet("Fish & chips <3 at https://example.com/menu?a=1&b=2 today")
    text = answer.json()["data"]["text"]
    assert text.startswith("Fish &amp; chips &lt;3 at https://t.co/") and text.endswith(" today")
    assert "example.com" not in text
    stored = alice.sandbox.posts()[0]
    assert stored["text"] == "Fish & chips <3 at https://example.com/menu?a=1&b=2 today" and stored["x_text"] == text
    alice.sandbox.configure(text_rewrite=False)
    assert alice.tweet("a & b").json()["data"]["text"] == "a & b"


def test_thread_replies_and_reply_policy(alice: Api, bob: Api) -> None:
    root = alice.tweet("thread 1/2").json()["data"]["id"]
    reply = alice.tweet("thread 2/2", reply={"in_reply_to_tweet_id": root})
    assert reply.status_code == 201
    fields = alice.get(f"/2/tweets/{reply.json()['data']['id']}",
                       **{"tweet.fields": "conversation_id,referenced_tweets,in_reply_to_user_id"}).json()["data"]
    assert fields["conversation_id"] == root
    assert fields["referenced_tweets"] == [{"type": "replied_to", "id": root}]
    # Replying to someone who did not mention you is refused (the 2026 policy) ...
    refused = bob.tweet("unsolicited", reply={"in_reply_to_tweet_id": root})
    assert refused.status_code == 403 and "not been mentioned" in refused.json()["detail"]
    # ... unless they did.
    summon = alice.tweet("hey @sandbox_bob what do you think?").json()["data"]["id"]
    assert bob.tweet("I think yes", reply={"in_reply_to_tweet_id": summon}).status_code == 201
    # The unconfirmed harsh case: even one's own thread refused.
    alice.sandbox.configure(reply_policy="no_replies")
    assert alice.tweet("thread 3/2", reply={"in_reply_to_tweet_id": root}).status_code == 403
    assert bob.tweet("reply to nothing", reply={"in_reply_to_tweet_id": "12345"}).status_code == 400


def test_polls_and_quotes(alice: Api) -> None:
    ok = alice.tweet("lunch?", poll={"options": ["pizza", "salad"], "duration_minutes": 60})
    assert ok.status_code == 201
    assert alice.sandbox.posts()[0]["poll"]["options"] == ["pizza", "salad"]
    assert alice.tweet("bad poll", poll={"options": ["one"], "duration_minutes": 60}).status_code == 400
    assert alice.tweet("bad poll 2", poll={"options": ["a", "b"], "duration_minutes": 4}).status_code == 400
    quote = alice.tweet("look", quote_tweet_id=ok.json()["data"]["id"])
    assert quote.status_code == 403  # quotes need the Enterprise tier


def test_tweepy_errors_map_as_on_x(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    """tweepy raises the exception the bot expects for each of the sandbox's refusals."""
    tokens = sandbox.grant("sandbox_bob")
    client = tweepy.Client(bearer_token=tokens["access_token"])
    mount_api_base(client.session, sandbox.url)
    xcheck.attach(client.session)
    client.create_tweet(text="once", user_auth=False)
    with pytest.raises(tweepy.Forbidden, match="duplicate content"):
        client.create_tweet(text="once", user_auth=False)
    with pytest.raises(tweepy.BadRequest, match="too long"):
        client.create_tweet(text="x" * 300, user_auth=False)
    with pytest.raises(tweepy.NotFound):
        client.delete_tweet("42", user_auth=False)
    found = client.get_users_tweets(tokens["user"]["id"], user_auth=False, tweet_fields=["created_at"])
    assert [t.text for t in found.data] == ["once"] and found.data[0].created_at is not None
    sandbox.advance(7201)
    with pytest.raises(tweepy.Unauthorized):
        client.get_me(user_auth=False)
