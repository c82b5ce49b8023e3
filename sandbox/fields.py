"""The field and expansion names X takes on the endpoints the sandbox serves, in both vocabularies.

X renamed "tweet" to "post" in its API: spec 2.167 names the parameter `post.fields`
(`note_post`, `article_title`, …), the expansions `referenced_posts` and
`edit_history_post_ids`, the user expansions `most_recent_post_id` and `pinned_post_id`;
tweepy and older clients send the names of spec 2.159 (`tweet.fields`, `note_tweet`,
`referenced_tweets.id`, `edit_history_tweet_ids`, `most_recent_tweet_id`). X takes both,
so the sandbox does: every value either spec lists for these parameters, under either
parameter name, and X's 400 for anything else.

`VOCABULARY` is the two specs' parameter enums copied here (the sandbox needs no
reference files to run); tests/test_sandbox_fields.py checks it against both spec files.
A request that uses any name only 2.167 has is answered in 2.167's names
(`referenced_posts`, `includes.posts`, `edit_history_post_ids` beside the
`edit_history_tweet_ids` live answers carry); any other in the names live X answers with.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import request

from sandbox.errors import invalid_request

# (parameter, spec version, the spec's parameter component) → the values that spec lists.
VOCABULARY: dict[tuple[str, str, str], frozenset[str]] = {
    ("post.fields", "2.167", "PostFieldsParameter"): frozenset({
        "article", "article_title", "attachments", "card_uri", "community_id", "context_annotations",
        "conversation_id", "created_at", "display_text_range", "edit_controls", "entities", "geo", "id",
        "lang", "matched_media_notes", "media_metadata", "non_public_metrics", "note_post",
        "note_request_suggestions", "organic_metrics", "paid_partnership", "possibly_sensitive",
        "promoted_metrics", "public_metrics", "reply_settings", "scopes", "source",
        "suggested_source_links", "suggested_source_links_with_counts", "text", "withheld",
    }),
    ("post.fields", "2.159", "TweetFieldsParameter"): frozenset({
        "article", "attachments", "author_id", "card_uri", "community_id", "context_annotations",
        "conversation_id", "created_at", "display_text_range", "edit_controls",
        "edit_history_tweet_ids", "entities", "geo", "id", "in_reply_to_user_id", "lang",
        "media_metadata", "non_public_metrics", "note_tweet", "organic_metrics", "possibly_sensitive",
        "promoted_metrics", "public_metrics", "referenced_tweets", "reply_settings", "scopes", "source",
        "suggested_source_links", "suggested_source_links_with_counts", "text", "withheld",
    }),
    ("post.expansions", "2.167", "PostExpansionsParameter"): frozenset({
        "article.cover_media", "article.media_entities", "attachments.media_keys",
        "attachments.media_source_tweet", "attachments.poll_ids", "author_id", "edit_history_post_ids",
        "entities.mentions.username", "geo.place_id", "in_reply_to_user_id", "referenced_posts",
        "username",
    }),
    ("post.expansions", "2.159", "TweetExpansionsParameter"): frozenset({
        "article.cover_media", "article.media_entities", "attachments.media_keys",
        "attachments.media_source_tweet", "attachments.poll_ids", "author_id", "edit_history_tweet_ids",
        "entities.mentions.username", "entities.note.mentions.username", "geo.place_id",
        "in_reply_to_user_id", "referenced_tweets.id", "referenced_tweets.id.attachments.media_keys",
        "referenced_tweets.id.author_id",
    }),
    ("user.fields", "2.167", "UserFieldsParameter"): frozenset({
        "confirmed_email", "connection_status", "created_at", "description", "entities", "id",
        "is_identity_verified", "location", "name", "parody", "profile_banner_url", "profile_image_url",
        "protected", "public_metrics", "receives_your_dm", "subscribes_to_you", "subscription",
        "subscription_type", "url", "username", "verified", "verified_followers_count", "verified_type",
        "withheld",
    }),
    ("user.fields", "2.159", "UserFieldsParameter"): frozenset({
        "affiliation", "confirmed_email", "connection_status", "created_at", "description", "entities",
        "id", "is_identity_verified", "location", "most_recent_tweet_id", "name", "parody",
        "pinned_tweet_id", "profile_banner_url", "profile_image_url", "protected", "public_metrics",
        "receives_your_dm", "subscription", "subscription_type", "url", "username", "verified",
        "verified_followers_count", "verified_type", "withheld",
    }),
    ("user.expansions", "2.167", "UserExpansionsParameter"): frozenset({
        "affiliation", "most_recent_post_id", "pinned_post_id",
    }),
    ("user.expansions", "2.159", "UserExpansionsParameter"): frozenset({
        "affiliation.user_id", "most_recent_tweet_id", "pinned_tweet_id",
    }),
    ("media.fields", "2.167", "MediaFieldsParameter"): frozenset({
        "alt_text", "duration_ms", "height", "media_key", "non_public_metrics", "organic_metrics",
        "preview_image_url", "promoted_metrics", "public_metrics", "type", "url", "variants", "width",
    }),
    ("media.fields", "2.159", "MediaFieldsParameter"): frozenset({
        "alt_text", "duration_ms", "height", "media_key", "non_public_metrics", "organic_metrics",
        "preview_image_url", "promoted_metrics", "public_metrics", "type", "url", "variants", "width",
    }),
    ("poll.fields", "2.167", "PollFieldsParameter"): frozenset({
        "duration_minutes", "end_datetime", "id", "options", "voting_status",
    }),
    ("poll.fields", "2.159", "PollFieldsParameter"): frozenset({
        "duration_minutes", "end_datetime", "id", "options", "voting_status",
    }),
    ("place.fields", "2.167", "PlaceFieldsParameter"): frozenset({
        "contained_within", "country", "country_code", "full_name", "geo", "id", "name", "place_type",
    }),
    ("place.fields", "2.159", "PlaceFieldsParameter"): frozenset({
        "contained_within", "country", "country_code", "full_name", "geo", "id", "name", "place_type",
    }),
}

# 2.167's renamed values → the 2.159 names the sandbox works with inside (both are accepted).
RENAMED: dict[str, dict[str, str]] = {
    "post.fields": {"note_post": "note_tweet"},
    "post.expansions": {"referenced_posts": "referenced_tweets.id", "edit_history_post_ids": "edit_history_tweet_ids"},
    "user.expansions": {"most_recent_post_id": "most_recent_tweet_id", "pinned_post_id": "pinned_tweet_id",
                        "affiliation": "affiliation.user_id"},
}
POST_PARAMETERS = ("tweet.fields", "post.fields")  # the older name first, as tweepy sends it


def accepted(kind: str) -> frozenset[str]:
    """Every value either spec lists for `kind` ("post.fields", "user.expansions", …)."""
    return frozenset().union(*(values for (name, _, _), values in VOCABULARY.items() if name == kind))


def current_only(kind: str) -> frozenset[str]:
    """The values only spec 2.167 lists for `kind`: a request using one speaks 2.167."""
    by_version = {version: values for (name, version, _), values in VOCABULARY.items() if name == kind}
    return by_version["2.167"] - by_version["2.159"]


ACCEPTED = {kind: accepted(kind) for kind, _, _ in VOCABULARY}
CURRENT_ONLY = {kind: current_only(kind) for kind, _, _ in VOCABULARY}


@dataclass(frozen=True)
class Wanted:
    """What one request asked for, in the older (2.159) names; `current`: answer in 2.167's names."""

    post: frozenset[str] = frozenset()
    user: frozenset[str] = frozenset()
    media: frozenset[str] = frozenset()
    expansions: frozenset[str] = frozenset()
    current: bool = False

    def expands(self, *names: str) -> bool:
        """Whether any of the (older) expansion names was asked for."""
        return any(name in self.expansions for name in names)

    @property
    def referenced_key(self) -> str:
        """Where a post names the posts it refers to."""
        return "referenced_posts" if self.current else "referenced_tweets"

    @property
    def posts_key(self) -> str:
        """The `includes` list of posts: 2.167's `posts`, the `tweets` live X and tweepy know."""
        return "posts" if self.current else "tweets"

    @property
    def most_recent_key(self) -> str:
        """The user field naming the user's latest post."""
        return "most_recent_post_id" if self.current else "most_recent_tweet_id"


def post_request() -> Wanted:
    """The fields and expansions of a post lookup or timeline (GET /2/tweets…, /2/users/:id/tweets)."""
    return _wanted("post.expansions")


def user_request() -> Wanted:
    """The fields and expansions of a user lookup (GET /2/users…)."""
    return _wanted("user.expansions")


def _wanted(expansion_kind: str) -> Wanted:
    """Every field parameter the endpoint takes, checked; the expansions of `expansion_kind`."""
    post, post_current = _post_fields()
    user, user_current = _values("user.fields", "user.fields")
    expansions, expansions_current = _values("expansions", expansion_kind)
    media: set[str] = set()
    if expansion_kind == "post.expansions":
        media, _ = _values("media.fields", "media.fields")
        _values("poll.fields", "poll.fields")
        _values("place.fields", "place.fields")
    return Wanted(post=frozenset(post), user=frozenset(user), media=frozenset(media),
                  expansions=frozenset(expansions), current=post_current or user_current or expansions_current)


def _post_fields() -> tuple[set[str], bool]:
    """`tweet.fields` and `post.fields` together; naming `post.fields` at all speaks 2.167."""
    fields: set[str] = set()
    current = False
    for name in POST_PARAMETERS:
        values, uses_current = _values(name, "post.fields")
        fields |= values
        current = current or uses_current or (name == "post.fields" and name in request.args)
    return fields, current


def _values(parameter: str, kind: str) -> tuple[set[str], bool]:
    """The comma-separated values of one query parameter, each known to `kind` or X's 400,
    under their older names; and whether one of them is a name only 2.167 has."""
    raw = request.args.get(parameter)
    if raw is None:
        return set(), False
    values = {v for v in raw.split(",") if v}
    unknown = sorted(values - ACCEPTED[kind])
    if unknown:
        raise invalid_request(f"The `{parameter}` query parameter value [{unknown[0]}] is not one of "
                              f"[{','.join(sorted(ACCEPTED[kind]))}]", {parameter: [raw]})
    renamed = RENAMED.get(kind, {})
    return {renamed.get(v, v) for v in values}, bool(values & CURRENT_ONLY[kind])
