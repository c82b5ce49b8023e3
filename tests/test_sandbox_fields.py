"""Field and expansion names in both of X's vocabularies, `includes`, and lookups of what is gone.

Every request goes through a session the `xcheck` fixture watches, so each answer is
also validated against X's spec 2.167 (older names under their 2.167 names, errors
entries against 2.159's problems: see `XSpec.check_success`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import tweepy

from bot.transport import Transport, mount_api_base
from bot.xclient import XApi, XNotFound
from sandbox.fields import ACCEPTED, VOCABULARY

from media_support import image_bytes
from sandbox_helpers import CHECKED_BODIES, SandboxControl, SpecRecorder

NOT_FOUND_TYPE = "https://api.twitter.com/2/problems/resource-not-found"
SCOPES = ["tweet.read", "tweet.write", "users.read", "offline.access", "media.write", "users.email"]


class Api:
    """A user's bearer session on the sandbox's API, watched by `xcheck`."""

    def __init__(self, sandbox: SandboxControl, xcheck: SpecRecorder, user: str, scopes: list[str]) -> None:
        self.sandbox = sandbox
        self.tokens = sandbox.grant(user, scopes=scopes)
        self.user = self.tokens["user"]
        self.http = xcheck.attach(requests.Session())
        self.http.headers["Authorization"] = f"Bearer {self.tokens['access_token']}"

    def get(self, path: str, **params: str) -> requests.Response:
        return self.http.get(self.sandbox.url + path, params=params, timeout=10)

    def tweet(self, text: str, **extra: Any) -> str:
        answer = self.http.post(self.sandbox.url + "/2/tweets", json={"text": text, **extra}, timeout=10)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["data"]["id"])

    def image(self, alt: str) -> tuple[str, str]:
        """An uploaded PNG (32×24) with alt text: its media id and media key."""
        answer = self.http.post(self.sandbox.url + "/2/media/upload", files={"media": ("a.png", image_bytes())},
                                data={"media_category": "tweet_image"}, timeout=10)
        data = answer.json()["data"]
        meta = {"id": data["id"], "metadata": {"alt_text": {"text": alt}}}
        assert self.http.post(self.sandbox.url + "/2/media/metadata", json=meta, timeout=10).status_code == 200
        return str(data["id"]), str(data["media_key"])


@pytest.fixture
def alice(sandbox: SandboxControl, xcheck: SpecRecorder) -> Api:
    return Api(sandbox, xcheck, "sandbox_alice", SCOPES)


@pytest.fixture
def thread(alice: Api) -> dict[str, str]:
    """A post, and a reply to it with an image: their ids and the image's media key."""
    root = alice.tweet("the root")
    media_id, media_key = alice.image("a grey square")
    reply = alice.tweet("the reply", reply={"in_reply_to_tweet_id": root}, media={"media_ids": [media_id]})
    return {"root": root, "reply": reply, "media_key": media_key}


# --- the vocabulary is the specs' --------------------------------------------------------


def test_vocabulary_is_both_specs_parameter_enums(reference: Path) -> None:
    specs = {"2.167": json.loads((reference / "x-openapi" / "openapi.json").read_text()),
             "2.159": json.loads((reference / "x-openapi" / "openapi-2.159.json").read_text())}
    for (_, version, component), values in VOCABULARY.items():
        enum = specs[version]["components"]["parameters"][component]["schema"]["items"]["enum"]
        assert values == frozenset(enum), (version, component, sorted(values ^ set(enum)))
    assert {"note_post", "note_tweet", "article", "referenced_tweets"} <= ACCEPTED["post.fields"]
    assert {"referenced_posts", "referenced_tweets.id", "edit_history_post_ids"} <= ACCEPTED["post.expansions"]
    assert {"confirmed_email", "subscription", "subscribes_to_you", "parody"} <= ACCEPTED["user.fields"]


# --- the current names -------------------------------------------------------------------


def test_current_names_give_includes_in_2167_names(alice: Api, thread: dict[str, str]) -> None:
    answer = alice.get(f"/2/tweets/{thread['reply']}", **{
        "post.fields": "note_post,article,created_at", "user.fields": "confirmed_email",
        "media.fields": "alt_text,width,height,url",
        "expansions": "author_id,referenced_posts,attachments.media_keys"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    data = body["data"]
    assert data["author_id"] == alice.user["id"] and "created_at" in data
    assert data["referenced_posts"] == [{"type": "replied_to", "id": thread["root"]}]
    assert data["attachments"] == {"media_keys": [thread["media_key"]]}
    assert data["edit_history_post_ids"] == data["edit_history_tweet_ids"] == [thread["reply"]]
    assert "note_post" not in data and "article" not in data  # the sandbox's posts have neither
    [user] = body["includes"]["users"]
    assert user == {"id": alice.user["id"], "name": "Alice Sandbox", "username": "sandbox_alice",
                    "confirmed_email": "sandbox_alice@sandbox.invalid"}
    [media] = body["includes"]["media"]
    assert media["media_key"] == thread["media_key"] and media["type"] == "photo"
    assert media["alt_text"] == "a grey square" and (media["width"], media["height"]) == (32, 24)
    assert requests.get(media["url"], timeout=10).content == image_bytes()
    assert [p["id"] for p in body["includes"]["posts"]] == [thread["root"]]
    assert "tweets" not in body["includes"]


def test_confirmed_email_needs_the_users_email_scope(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    bob = Api(sandbox, xcheck, "sandbox_bob", ["tweet.read", "users.read"])
    me = bob.get("/2/users/me", **{"user.fields": "confirmed_email,created_at"})
    assert me.status_code == 200 and "confirmed_email" not in me.json()["data"]
    assert "created_at" in me.json()["data"]


# --- the older names ---------------------------------------------------------------------


def test_older_names_give_includes_as_live_x(alice: Api, thread: dict[str, str]) -> None:
    answer = alice.get(f"/2/tweets/{thread['reply']}", **{
        "tweet.fields": "note_tweet,referenced_tweets,edit_history_tweet_ids,author_id,attachments",
        "user.fields": "created_at", "media.fields": "alt_text",
        "expansions": "author_id,referenced_tweets.id,in_reply_to_user_id,attachments.media_keys,"
                      "edit_history_tweet_ids,referenced_tweets.id.author_id"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    data = body["data"]
    assert data["referenced_tweets"] == [{"type": "replied_to", "id": thread["root"]}]
    assert data["in_reply_to_user_id"] == alice.user["id"] and "edit_history_post_ids" not in data
    assert [u["id"] for u in body["includes"]["users"]] == [alice.user["id"]]  # once, though named twice
    assert "created_at" in body["includes"]["users"][0]
    assert body["includes"]["media"] == [{"media_key": thread["media_key"], "type": "photo",
                                          "alt_text": "a grey square"}]
    # the edit history names the post itself; the referenced post comes with the asked-for fields
    included = {p["id"]: p for p in body["includes"]["tweets"]}
    assert set(included) == {thread["reply"], thread["root"]}
    assert included[thread["root"]]["author_id"] == alice.user["id"]
    assert "posts" not in body["includes"]


def test_a_timeline_expands_each_post(alice: Api, thread: dict[str, str]) -> None:
    body = alice.get(f"/2/users/{alice.user['id']}/tweets",
                     expansions="author_id,attachments.media_keys", max_results="5").json()
    assert [p["id"] for p in body["data"]] == [thread["reply"], thread["root"]]
    assert [u["username"] for u in body["includes"]["users"]] == ["sandbox_alice"]
    assert [m["media_key"] for m in body["includes"]["media"]] == [thread["media_key"]]
    assert body["meta"]["result_count"] == 2


def test_users_most_recent_post(alice: Api, thread: dict[str, str]) -> None:
    old = alice.get("/2/users/me", expansions="most_recent_tweet_id", **{"tweet.fields": "created_at"}).json()
    assert old["data"]["most_recent_tweet_id"] == thread["reply"]
    assert old["includes"]["tweets"][0]["id"] == thread["reply"] and "created_at" in old["includes"]["tweets"][0]
    new = alice.get(f"/2/users/{alice.user['id']}", expansions="most_recent_post_id,pinned_post_id").json()
    assert new["data"]["most_recent_post_id"] == thread["reply"]
    assert [p["id"] for p in new["includes"]["posts"]] == [thread["reply"]]


def test_a_deleted_referenced_post_is_an_errors_entry(alice: Api, thread: dict[str, str]) -> None:
    assert alice.http.delete(f"{alice.sandbox.url}/2/tweets/{thread['root']}", timeout=10).status_code == 200
    body = alice.get(f"/2/tweets/{thread['reply']}", expansions="referenced_tweets.id").json()
    assert body["data"]["id"] == thread["reply"] and "includes" not in body
    assert body["errors"] == [{
        "value": thread["root"], "detail": f"Could not find tweet with referenced_tweets.id: [{thread['root']}].",
        "title": "Not Found Error", "resource_type": "tweet", "parameter": "referenced_tweets.id",
        "resource_id": thread["root"], "type": NOT_FOUND_TYPE}]


# --- unknown names -----------------------------------------------------------------------


@pytest.mark.parametrize(("path", "parameter", "value", "bad"), [
    ("/2/tweets/{post}", "tweet.fields", "created_at,bogus", "bogus"),
    ("/2/tweets/{post}", "post.fields", "note_post,shoe_size", "shoe_size"),
    ("/2/tweets/{post}", "expansions", "author_id,bogus", "bogus"),
    ("/2/tweets/{post}", "media.fields", "colour", "colour"),
    ("/2/tweets/{post}", "poll.fields", "winner", "winner"),
    ("/2/users/{user}/tweets", "user.fields", "shoe_size", "shoe_size"),
    ("/2/users/me", "expansions", "author_id", "author_id"),  # a post expansion, not a user one
    ("/2/users/me", "post.fields", "nope", "nope"),
])
def test_unknown_names_are_refused_with_xs_400(alice: Api, path: str, parameter: str, value: str,
                                               bad: str) -> None:
    post = alice.tweet("something to look up")
    answer = alice.get(path.format(post=post, user=alice.user["id"]), **{parameter: value})
    assert answer.status_code == 400
    body = answer.json()
    assert body["title"] == "Invalid Request" and body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert body["detail"] == "One or more parameters to your request was invalid."
    [error] = body["errors"]
    assert error["parameters"] == {parameter: [value]}
    assert error["message"].startswith(f"The `{parameter}` query parameter value [{bad}] is not one of [")


# --- lookups of what is not there --------------------------------------------------------


def not_found(resource_type: str, value: str, parameter: str = "id") -> dict[str, str]:
    return {"value": value, "detail": f"Could not find {resource_type} with {parameter}: [{value}].",
            "title": "Not Found Error", "resource_type": resource_type, "parameter": parameter,
            "resource_id": value, "type": NOT_FOUND_TYPE}


def test_a_deleted_post_is_a_200_with_an_errors_entry(alice: Api) -> None:
    post = alice.tweet("soon gone")
    assert alice.http.delete(f"{alice.sandbox.url}/2/tweets/{post}", timeout=10).status_code == 200
    for query in ({}, {"expansions": "author_id"}):
        answer = alice.get(f"/2/tweets/{post}", **query)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
        assert answer.json() == {"errors": [not_found("tweet", post)]}
    assert alice.get("/2/tweets/123").json() == {"errors": [not_found("tweet", "123")]}


def test_lookups_by_many_keep_the_found_ones_in_data(alice: Api) -> None:
    kept = alice.tweet("kept")
    answer = alice.get("/2/tweets", ids=f"{kept},123")
    assert answer.json() == {"data": [{"id": kept, "text": "kept", "edit_history_tweet_ids": [kept]}],
                             "errors": [not_found("tweet", "123", "ids")]}
    users = alice.get("/2/users", ids=f"{alice.user['id']},999").json()
    assert [u["id"] for u in users["data"]] == [alice.user["id"]] and users["errors"] == [not_found("user", "999", "ids")]
    named = alice.get("/2/users/by", usernames="sandbox_bob,nobody_here").json()
    assert [u["username"] for u in named["data"]] == ["sandbox_bob"]
    assert named["errors"] == [not_found("user", "nobody_here", "usernames")]
    assert alice.get("/2/tweets", ids="abc").status_code == 400
    assert alice.get("/2/tweets").status_code == 400


def test_users_by_id_and_username(alice: Api) -> None:
    bob = alice.sandbox.user("sandbox_bob")
    assert alice.get(f"/2/users/{bob['id']}").json()["data"]["username"] == "sandbox_bob"
    assert alice.get("/2/users/by/username/SANDBOX_BOB").json()["data"]["id"] == bob["id"]
    assert alice.get("/2/users/999").json() == {"errors": [not_found("user", "999")]}
    assert alice.get("/2/users/by/username/nobody").json() == {"errors": [not_found("user", "nobody", "username")]}
    assert alice.get("/2/users/999/tweets").json() == {"errors": [not_found("user", "999")]}
    assert alice.get("/2/users/by/username/not-a-name").status_code == 400


def test_the_404_form_is_an_option(alice: Api) -> None:
    alice.sandbox.configure(lookup_not_found_status=404)
    kept = alice.tweet("kept")
    for path, params, entry in (
            ("/2/tweets/123", {}, not_found("tweet", "123")),
            ("/2/tweets", {"ids": "123"}, not_found("tweet", "123", "ids")),
            ("/2/users/999", {}, not_found("user", "999")),
            ("/2/users/by/username/nobody", {}, not_found("user", "nobody", "username")),
            ("/2/users/999/tweets", {}, not_found("user", "999"))):
        answer = alice.get(path, **params)
        assert answer.status_code == 404 and answer.headers["Content-Type"].startswith("application/problem+json")
        assert answer.json() == {"errors": [entry], "title": "Not Found Error", "detail": entry["detail"],
                                 "type": NOT_FOUND_TYPE}
    partial = alice.get("/2/tweets", ids=f"{kept},123")  # something found: still a 200
    assert partial.status_code == 200 and len(partial.json()["data"]) == 1


def test_an_unknown_route_is_still_a_404(alice: Api) -> None:
    answer = requests.get(alice.sandbox.url + "/2/no/such/route", headers=alice.http.headers, timeout=10)
    assert answer.status_code == 404 and answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json()["status"] == 404  # its type is sandbox/app.py's (about:blank; x-api-facts says resource-not-found)


# --- tweepy and the bot ------------------------------------------------------------------


def tweepy_client(sandbox: SandboxControl, xcheck: SpecRecorder, token: str) -> tweepy.Client:
    """tweepy 4.17's Client sent to the sandbox by the bot's own transport adapter."""
    client = tweepy.Client(bearer_token=token)
    mount_api_base(client.session, sandbox.url)
    xcheck.attach(client.session)
    return client


def test_tweepy_gets_includes_and_errors(sandbox: SandboxControl, xcheck: SpecRecorder, alice: Api) -> None:
    client = tweepy_client(sandbox, xcheck, alice.tokens["access_token"])
    post = client.create_tweet(text="expand me", user_auth=False).data["id"]
    found = client.get_tweet(post, expansions=["author_id"], user_fields=["created_at"], user_auth=False)
    assert found.data.author_id == int(alice.user["id"])
    [author] = found.includes["users"]
    assert isinstance(author, tweepy.User) and author.username == "sandbox_alice" and author.created_at
    client.delete_tweet(post, user_auth=False)
    gone = client.get_tweet(post, user_auth=False)  # no NotFound: a Response with errors, as against X
    assert gone.data is None and gone.errors == [not_found("tweet", post)]


@pytest.mark.parametrize("status", [200, 404])
def test_the_bots_recent_posts_under_both_forms(sandbox: SandboxControl, xcheck: SpecRecorder, alice: Api,
                                                status: int) -> None:
    sandbox.configure(lookup_not_found_status=status)
    api = XApi(Transport(sandbox.url, timeout=10), alice.tokens["access_token"])
    xcheck.attach(api.client.session)  # the reads tweepy parses go through its session
    post = alice.tweet("settle me")
    assert api.recent_posts(alice.user["id"]) == [{"id": post, "text": "settle me"}]
    with pytest.raises(XNotFound, match=r"Could not find user with id: \[999\]"):
        api.recent_posts("999")  # never "no posts", which would send the post again


def test_validated_bodies_are_counted_per_endpoint(alice: Api, xcheck: SpecRecorder) -> None:
    before = CHECKED_BODIES[("GET /2/users/me", 200)]
    alice.get("/2/users/me")
    alice.get("/2/users/me")
    assert xcheck.verify() >= 2
    assert CHECKED_BODIES[("GET /2/users/me", 200)] >= before + 2


def test_the_spec_check_sees_older_names_and_errors_entries(reference: Path) -> None:
    """The checks above are not vacuous: a bad `referenced_tweets`, a bad `includes.tweets` post and a
    malformed errors entry are each caught, though 2.167 names none of them."""
    from jsonschema import ValidationError

    from sandbox_helpers import x_spec
    spec = x_spec(reference)
    good = {"data": {"id": "1", "text": "t", "referenced_tweets": [{"type": "replied_to", "id": "2"}]},
            "includes": {"tweets": [{"id": "2", "text": "u"}]}, "errors": [not_found("tweet", "3")]}
    spec.check_success(good, "get", "/2/tweets/{id}", 200)
    for bad in ({**good, "data": {**good["data"], "referenced_tweets": [{"id": 2}]}},
                {**good, "includes": {"tweets": [{"id": 2}]}},
                {**good, "errors": [{**not_found("tweet", "3"), "resource_type": "post"}]},
                {**good, "errors": [{k: v for k, v in not_found("tweet", "3").items() if k != "parameter"}]}):
        with pytest.raises(ValidationError):
            spec.check_success(bad, "get", "/2/tweets/{id}", 200)
