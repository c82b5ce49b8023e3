"""What every v2 resource endpoint does before its own work, as X does it.

`@resource(key, scopes)` wraps a view: bearer token (expired, revoked, unknown or absent →
X's 401), scopes (→ X's 403), usage cap / credits switches (→ 429 UsageCapExceeded / 402),
then the rate-limit windows (→ X's 429). The window headers go on every answer the
endpoint gives once the caller is known, refusals included.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Response, g, request

from sandbox.errors import credits_depleted, forbidden, invalid_request, too_many_requests, unauthorized, usage_capped
from sandbox.faults import x_endpoint
from sandbox.state import Chain, User, current_world

READ = ("tweet.read", "users.read")
WRITE = ("tweet.read", "tweet.write", "users.read")
MEDIA = ("media.write",)

# tweet.fields X accepts (tweepy sends `tweet.fields`; spec 2.167 calls it `post.fields`).
TWEET_FIELDS = frozenset({
    "article", "attachments", "author_id", "card_uri", "community_id", "context_annotations",
    "conversation_id", "created_at", "display_text_range", "edit_controls", "edit_history_tweet_ids",
    "entities", "geo", "id", "in_reply_to_user_id", "lang", "media_metadata", "non_public_metrics",
    "note_tweet", "organic_metrics", "possibly_sensitive", "promoted_metrics", "public_metrics",
    "referenced_tweets", "reply_settings", "scopes", "source", "text", "withheld",
})
USER_FIELDS = frozenset({
    "affiliation", "connection_status", "created_at", "description", "entities", "id", "is_identity_verified",
    "location", "most_recent_tweet_id", "name", "parody", "pinned_tweet_id", "profile_banner_url",
    "profile_image_url", "protected", "public_metrics", "receives_your_dm", "subscription_type", "url",
    "username", "verified", "verified_followers_count", "verified_type", "withheld",
})


def resource(key: str, scopes: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make a view an X resource endpoint: authenticated, scoped, capped and rate limited."""
    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            chain, user = _caller()
            if not set(scopes) <= set(chain.scopes):
                raise forbidden()
            world = current_world()
            if world.options.usage_capped:
                raise usage_capped()
            if world.options.credits_depleted:
                raise credits_depleted(chain.client_id)
            allowed, headers = world.check_rate(key, chain.client_id, user.id)
            g.rate_headers = headers
            if not allowed:
                raise too_many_requests(headers)
            g.chain, g.user = chain, user
            return view(*args, **kwargs)
        return x_endpoint(key)(guarded)
    return wrap


def _caller() -> tuple[Chain, User]:
    """The chain and user behind the bearer token, or X's 401."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        raise unauthorized()
    found = current_world().authenticate(header[7:].strip())
    if found is None:
        raise unauthorized()
    return found


def add_rate_headers(response: Response) -> Response:
    """After-request hook: the caller's window headers on the answer."""
    for name, value in g.pop("rate_headers", {}).items():
        response.headers[name] = value
    return response


def requested_fields(names: tuple[str, ...], allowed: frozenset[str]) -> set[str]:
    """The comma-separated field list of the first query parameter present, checked like X."""
    for name in names:
        raw = request.args.get(name)
        if raw is None:
            continue
        fields = {f for f in raw.split(",") if f}
        unknown = sorted(fields - allowed)
        if unknown:
            raise invalid_request(f"The `{name}` query parameter value [{unknown[0]}] is not one of "
                                  f"[{','.join(sorted(allowed))}]", {name: [raw]})
        return fields
    return set()


def user_json(user: User, fields: set[str]) -> dict[str, Any]:
    """A user object: id, name, username, plus the requested fields the sandbox knows."""
    data: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
    extra = {"created_at": user.created_at, "description": f"A sandbox user ({user.name}).",
             "protected": False, "verified": False,
             "profile_image_url": "https://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png"}
    data.update({k: v for k, v in extra.items() if k in fields})
    return data
