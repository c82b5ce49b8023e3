"""X's v2 post and user endpoints (x-api-facts §2 and §3).

`POST /2/tweets` refuses what X refuses, in X's words: unknown fields, over-long text
(weighted length by `xtext`, the twitter-text v3 rules), the same text as a recent
post of the same user, replies the reply policy forbids, quotes (Enterprise only),
media that is not the caller's, not ready, expired or mixed (1–4 images, or one GIF or
video). The checks of the body's shape are here; the ones that read the world, and the
store, are one step of `Timeline.create` (sandbox/timeline.py), so two identical posts
sent at once give one 201 and one 403, as at X. Lookups build their answer inside
`World.answer`, so a post and what its expansions include are read at one moment.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.errors import (
    JSON_TYPE_NAMES,
    NOT_PERMITTED_DETAIL,
    TOO_LONG_MESSAGE,
    forbidden,
    invalid_request,
    json_type,
    lookup_not_found,
    not_found_entry,
)
from sandbox.expansions import Answer
from sandbox.fields import post_request, user_request
from sandbox.records import Post, parse_iso
from sandbox.resource import READ, WRITE, add_rate_headers, resource
from sandbox.state import World, current_world
from xtext import MAX_WEIGHTED_LENGTH, fits, weighted_length

bp = Blueprint("api", __name__)
bp.after_request(add_rate_headers)

# CreatePostsRequest's properties in X's spec (2.167); anything else is refused, as X does.
POST_FIELDS = {
    "card_uri": str, "community_id": str, "direct_message_deep_link": str, "edit_options": dict,
    "for_super_followers_only": bool, "geo": dict, "made_with_ai": bool, "media": dict, "nullcast": bool,
    "paid_partnership": bool, "poll": dict, "quote_tweet_id": str, "reply": dict, "reply_settings": str,
    "share_with_followers": bool, "text": str,
}
NESTED_FIELDS: dict[str, dict[str, type]] = {
    "reply": {"in_reply_to_tweet_id": str, "auto_populate_reply_metadata": bool, "exclude_reply_user_ids": list},
    "media": {"media_ids": list, "tagged_user_ids": list, "call_to_actions": dict, "description": str,
              "embeddable": bool, "preview_media_id": str, "title": str},
    "poll": {"options": list, "duration_minutes": int, "reply_settings": str},
    "edit_options": {"previous_post_id": str},
    "geo": {"place_id": str},
}
REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")


@bp.get("/2/users/me")
@resource("GET /2/users/me", READ)
def users_me() -> ResponseReturnValue:
    """The user behind the token."""
    world = current_world()
    answer = Answer(world, user_request(), g.chain.scopes)
    user = g.user
    return jsonify(world.answer(lambda: answer.body(answer.user(user))))


@bp.post("/2/tweets")
@resource("POST /2/tweets", WRITE)
def create_post() -> ResponseReturnValue:
    """Store a post for the caller: 201, `location`, `{"data": {"id", "text", …}}`."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object.")
    check_shape(body)
    check_content(body)
    post = current_world().timeline.create(g.user, g.chain.client_id, body)
    answer = jsonify({"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}})
    answer.status_code = 201
    answer.headers["location"] = f"{request.scheme}://{request.host}/2/tweets/{post.id}"
    return answer


def check_content(body: dict[str, Any]) -> None:
    """What X refuses before looking at anything stored: no text, too long, mixed, quotes, a bad poll."""
    text = body.get("text", "")
    media_ids = tuple(body.get("media", {}).get("media_ids", ()))
    if not text.strip() and not media_ids:
        raise invalid_request("$.text: is missing but it is required (text is required unless media is given)",
                              {"text": [text]})
    if sum(key in body for key in ("media", "poll", "quote_tweet_id")) > 1:
        raise invalid_request("$: only one of media, poll and quote_tweet_id may be given")
    if text.strip() and not fits(text):
        if weighted_length(text) <= MAX_WEIGHTED_LENGTH:  # short enough, but U+FFFE and the like
            raise invalid_request("Your Tweet text contains invalid characters.", {"text": [text]})
        if current_world().options.too_long_status == 403:
            raise forbidden(NOT_PERMITTED_DETAIL)
        raise invalid_request(TOO_LONG_MESSAGE, {"text": [text]})
    if "quote_tweet_id" in body and current_world().options.tier != "enterprise":
        raise forbidden(NOT_PERMITTED_DETAIL)  # quote posts need the Enterprise tier since 2026-04-20
    check_poll(body.get("poll"))


def check_shape(body: dict[str, Any]) -> None:
    """Unknown fields and wrong types refused with X's schema-validator messages."""
    _check_object("$", body, POST_FIELDS)
    for name, allowed in NESTED_FIELDS.items():
        if name in body:
            _check_object(f"$.{name}", body[name], allowed)
    if "reply" in body and not _is_id(body["reply"].get("in_reply_to_tweet_id")):
        raise invalid_request("$.reply.in_reply_to_tweet_id: is missing or does not match the pattern ^[0-9]{1,19}$")
    if "media" in body:
        ids = body["media"].get("media_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 4 or not all(_is_id(i) for i in ids):
            raise invalid_request("$.media.media_ids: must hold 1 to 4 media ids (strings of digits)",
                                  {"media.media_ids": [str(ids)]})
    if "quote_tweet_id" in body and not _is_id(body["quote_tweet_id"]):
        raise invalid_request("$.quote_tweet_id: does not match the regex pattern ^[0-9]{1,19}$")
    if "community_id" in body and not _is_id(body["community_id"]):
        raise invalid_request("$.community_id: does not match the regex pattern ^[0-9]{1,19}$")
    if "reply_settings" in body and body["reply_settings"] not in REPLY_SETTINGS:
        raise invalid_request(f"$.reply_settings: does not have a value in the enumeration {list(REPLY_SETTINGS)}")


def _check_object(path: str, value: Any, allowed: dict[str, type]) -> None:
    """Refuse keys outside `allowed` and values of the wrong JSON type."""
    if not isinstance(value, dict):
        raise invalid_request(f"{path}: {json_type(value)} found, object expected")
    for key, item in value.items():
        if key not in allowed:
            raise invalid_request(f"{path}.{key}: is not defined in the schema and the schema does not allow "
                                  "additional properties")
        expected = allowed[key]
        if not isinstance(item, expected) or (expected is int and isinstance(item, bool)):
            raise invalid_request(f"{path}.{key}: {json_type(item)} found, {JSON_TYPE_NAMES[expected]} expected")


def _is_id(value: Any) -> bool:
    """An X id: 1 to 19 digits, as a string."""
    return isinstance(value, str) and value.isdigit() and 1 <= len(value) <= 19


def check_poll(poll: dict[str, Any] | None) -> None:
    """2–4 options of 1–25 characters, 5–10080 minutes."""
    if poll is None:
        return
    options, minutes = poll.get("options"), poll.get("duration_minutes")
    if (not isinstance(options, list) or not 2 <= len(options) <= 4
            or not all(isinstance(o, str) and 1 <= len(o) <= 25 for o in options)):
        raise invalid_request("$.poll.options: must hold 2 to 4 options of 1 to 25 characters")
    if not isinstance(minutes, int) or not 5 <= minutes <= 10080:
        raise invalid_request("$.poll.duration_minutes: must be between 5 and 10080")


@bp.delete("/2/tweets/<post_id>")
@resource("DELETE /2/tweets/:id", WRITE)
def delete_post(post_id: str) -> ResponseReturnValue:
    """Delete one of the caller's own posts."""
    check_id_parameter(post_id)
    current_world().timeline.delete(post_id, g.user.id)
    return jsonify({"data": {"deleted": True}})


@bp.get("/2/tweets/<post_id>")
@resource("GET /2/tweets/:id", READ)
def get_post(post_id: str) -> ResponseReturnValue:
    """One post by id; a missing or deleted one is an `errors` entry in a 200, as at X."""
    world = current_world()
    check_id_parameter(post_id)
    answer = Answer(world, post_request(), g.chain.scopes, g.user.id)

    def build() -> dict[str, Any] | None:
        post = world.timeline.visible(post_id)
        if post is None:
            answer.errors.append(not_found_entry("tweet", post_id))
        return None if post is None else answer.post(post)
    data = world.answer(build)
    world.charges.bill("GET /2/tweets/:id", [data["id"]] if data else [])
    return lookup_answer(world, answer, data)


@bp.get("/2/tweets")
@resource("GET /2/tweets", READ)
def get_posts() -> ResponseReturnValue:
    """Posts by `ids` (1–100), in the order asked; the missing ones as `errors` entries."""
    world = current_world()
    ids = id_list("ids")
    answer = Answer(world, post_request(), g.chain.scopes, g.user.id)

    def build() -> list[dict[str, Any]] | None:
        data = []
        for post_id in ids:
            post = world.timeline.visible(post_id)
            if post is None:
                answer.errors.append(not_found_entry("tweet", post_id, "ids"))
            else:
                data.append(answer.post(post))
        return data or None
    data = world.answer(build)
    world.charges.bill("GET /2/tweets", [post["id"] for post in data or []])
    return lookup_answer(world, answer, data)


@bp.get("/2/users/<user_id>")
@resource("GET /2/users/:id", READ)
def get_user(user_id: str) -> ResponseReturnValue:
    """One user by id."""
    check_id_parameter(user_id)
    return user_lookup([user_id], "id", single=True)


@bp.get("/2/users/by/username/<username>")
@resource("GET /2/users/by/username/:username", READ)
def get_user_by_username(username: str) -> ResponseReturnValue:
    """One user by username."""
    check_username(username, "username")
    return user_lookup([username], "username", single=True)


@bp.get("/2/users")
@resource("GET /2/users", READ)
def get_users() -> ResponseReturnValue:
    """Users by `ids` (1–100)."""
    return user_lookup(id_list("ids"), "ids", single=False)


@bp.get("/2/users/by")
@resource("GET /2/users/by", READ)
def get_users_by_username() -> ResponseReturnValue:
    """Users by `usernames` (1–100)."""
    names = value_list("usernames")
    for name in names:
        check_username(name, "usernames")
    return user_lookup(names, "usernames", single=False)


def user_lookup(keys: list[str], parameter: str, single: bool) -> ResponseReturnValue:
    """The users `keys` name (ids or usernames, as `parameter` says); the missing ones as `errors`."""
    world = current_world()
    answer = Answer(world, user_request(), g.chain.scopes)
    by_name = parameter.startswith("username")

    def build() -> Any:
        data = []
        for key in keys:
            user = world.people.by_name(key) if by_name else world.people.by_id(key)
            if user is None:
                answer.errors.append(not_found_entry("user", key, parameter))
            else:
                data.append(answer.user(user))
        return (data[0] if data else None) if single else (data or None)
    return lookup_answer(world, answer, world.answer(build))


@bp.get("/2/users/<user_id>/tweets")
@resource("GET /2/users/:id/tweets", READ)
def user_posts(user_id: str) -> ResponseReturnValue:
    """A user's posts, newest first, paged; how the bot settles an uncertain post."""
    world = current_world()
    check_id_parameter(user_id)
    query = timeline_query()
    answer = Answer(world, post_request(), g.chain.scopes, g.user.id)

    def build() -> tuple[list[dict[str, Any]], bool] | None:
        if world.people.by_id(user_id) is None:
            return None
        page, more = select_posts(world.timeline.posts_of(user_id), query)
        return [answer.post(p) for p in page], more
    found = world.answer(build)
    if found is None:
        answer.errors.append(not_found_entry("user", user_id))
        return lookup_answer(world, answer, None)
    data, more = found
    owned = user_id == g.user.id == world.options.app_owner  # x-api-facts §6: the owner's own timeline
    world.charges.bill("GET /2/users/:id/tweets", [post["id"] for post in data], owned=owned)
    meta: dict[str, Any] = {"result_count": len(data)}
    if data:
        meta.update(newest_id=data[0]["id"], oldest_id=data[-1]["id"])
        if more:
            meta["next_token"] = encode_page_token(data[-1]["id"])
    return jsonify({**answer.body(data or None), "meta": meta})


def lookup_answer(world: World, answer: Answer, data: Any) -> ResponseReturnValue:
    """A lookup's answer: 200 with what was found and `errors` for the rest, as X answers;
    the 404 form when nothing was found and `lookup_not_found_status` is 404."""
    if data is None and answer.errors and world.options.lookup_not_found_status == 404:
        raise lookup_not_found(answer.errors)
    return jsonify(answer.body(data))


def check_id_parameter(value: str) -> None:
    """A path id that is not an X id is a parameter error, as at X."""
    if not _is_id(value):
        raise invalid_request(f"The `id` query parameter value [{value}] is not valid", {"id": [value]})


def value_list(name: str) -> list[str]:
    """A required comma-separated query parameter of 1–100 values, duplicates dropped."""
    raw = request.args.get(name, "")
    values = list(dict.fromkeys(v for v in raw.split(",") if v))
    if not values:
        raise invalid_request(f"The `{name}` query parameter can not be empty", {name: [raw]})
    if len(values) > 100:
        raise invalid_request(f"The number of values in the `{name}` query parameter list [{len(values)}] is not "
                              "between 1 and 100", {name: [raw]})
    return values


def id_list(name: str) -> list[str]:
    """`ids`: 1–100 X ids."""
    values = value_list(name)
    for value in values:
        if not _is_id(value):
            raise invalid_request(f"The `{name}` query parameter value [{value}] is not valid", {name: [value]})
    return values


def check_username(value: str, name: str) -> None:
    """A username X could have: 1–15 letters, digits or underscores."""
    if not re.fullmatch(r"[A-Za-z0-9_]{1,15}", value):
        raise invalid_request(f"The `{name}` query parameter value [{value}] does not match "
                              "^[A-Za-z0-9_]{1,15}$", {name: [value]})


def timeline_query() -> dict[str, Any]:
    """`max_results`, `pagination_token`, `since_id`, `until_id`, `start_time`, `end_time`, `exclude`."""
    args = request.args
    raw_max = args.get("max_results", "10")
    if not raw_max.isdigit() or not 5 <= int(raw_max) <= 100:
        raise invalid_request(f"The `max_results` query parameter value [{raw_max}] is not between 5 and 100",
                              {"max_results": [raw_max]})
    query: dict[str, Any] = {"max_results": int(raw_max), "before": None, "since_id": None, "until_id": None,
                             "start_time": None, "end_time": None, "exclude": set()}
    if "pagination_token" in args:
        query["before"] = decode_page_token(args["pagination_token"])
    for name in ("since_id", "until_id"):
        if name in args:
            if not _is_id(args[name]):
                raise invalid_request(f"The `{name}` query parameter value [{args[name]}] is not valid",
                                      {name: [args[name]]})
            query[name] = int(args[name])
    for name in ("start_time", "end_time"):
        if name in args:
            try:
                query[name] = parse_iso(args[name])
            except ValueError:
                raise invalid_request(f"Invalid '{name}':'{args[name]}'. '{name}' must be a valid RFC 3339 "
                                      "date-time", {name: [args[name]]}) from None
    if "exclude" in args:
        query["exclude"] = {v for v in args["exclude"].split(",") if v}
        if not query["exclude"] <= {"replies", "retweets"}:
            raise invalid_request(f"The `exclude` query parameter value [{args['exclude']}] is not one of "
                                  "[replies,retweets]", {"exclude": [args["exclude"]]})
    return query


def select_posts(posts: list[Post], query: dict[str, Any]) -> tuple[list[Post], bool]:
    """Newest first, filtered; the page and whether more follow."""
    page: list[Post] = []
    for post in reversed(posts):
        number = int(post.id)
        if post.deleted_at is not None:
            continue
        if query["before"] is not None and number >= query["before"]:
            continue
        if query["until_id"] is not None and number >= query["until_id"]:
            continue
        if query["end_time"] is not None and post.created_at >= query["end_time"]:
            continue
        if query["since_id"] is not None and number <= query["since_id"]:
            break
        if query["start_time"] is not None and post.created_at < query["start_time"]:
            break
        if "replies" in query["exclude"] and post.reply_to is not None:
            continue
        if len(page) == query["max_results"]:
            return page, True
        page.append(post)
    return page, False


def encode_page_token(oldest_id: str) -> str:
    """An opaque base32hex token, like X's, naming where the next page starts."""
    return base64.b32hexencode(oldest_id.encode()).decode().rstrip("=").lower()


def decode_page_token(token: str) -> int:
    """The post id a `pagination_token` names; a parameter error if it names none."""
    try:
        padded = token.upper() + "=" * (-len(token) % 8)
        value = base64.b32hexdecode(padded).decode()
        if not value.isdigit():
            raise ValueError(value)
        return int(value)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid_request(f"The `pagination_token` query parameter value [{token}] is not valid",
                              {"pagination_token": [token]}) from None
