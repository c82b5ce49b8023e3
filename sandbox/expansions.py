"""Post, user and media objects as X answers them, and the `includes` its expansions add.

One `Answer` is built per request: each post or user put in `data` goes through it, and
the objects the requested expansions name are collected, once each, in the order first
met, into `includes` (`users`, `media`, and `tweets` — `posts` when the request spoke
2.167's names, see sandbox/fields.py). A referenced post that is gone is reported the
way X does, as an `errors` entry beside `data`.

Fields the sandbox has nothing for (metrics, entities, articles, notes…) are accepted
and left out, as X leaves out a field a post does not have. The caller builds an
answer inside `World.answer`, which holds the world's lock, so the posts, users and
media it reads (through the parts' methods) stay put while it runs.
"""
from __future__ import annotations

from typing import Any

from flask import request

from sandbox.errors import not_found_entry
from sandbox.fields import Wanted
from sandbox.metrics import (
    may_see_non_public,
    non_public_metrics,
    not_authorized_for_field,
    poll_tally,
    public_metrics,
)
from sandbox.records import Media, Post, User, iso
from sandbox.state import World

DEFAULT_PROFILE_IMAGE = "https://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png"
EDIT_WINDOW = 60 * 60  # X lets a post be edited for an hour, five times


class Answer:
    """The `data`, `includes` and `errors` of one lookup answer."""

    def __init__(self, world: World, wanted: Wanted, scopes: tuple[str, ...] = (), reader: str | None = None) -> None:
        self.world = world
        self.wanted = wanted
        self.scopes = scopes
        self.reader = reader  # the user whose token asks: only they see their posts' non-public metrics
        self.users: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.posts: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, dict[str, Any]] = {}
        self.errors: list[dict[str, Any]] = []

    # --- data ---------------------------------------------------------------------------

    def post(self, post: Post) -> dict[str, Any]:
        """A post for `data`: its requested fields, and what its expansions name into `includes`."""
        data = post_json(self.world, post, self.wanted)
        wanted = self.wanted
        if wanted.expands("author_id"):
            data["author_id"] = post.author_id
            self._include_user(post.author_id)
        if wanted.expands("in_reply_to_user_id") and post.in_reply_to_user_id:
            data["in_reply_to_user_id"] = post.in_reply_to_user_id
            self._include_user(post.in_reply_to_user_id)
        if wanted.expands("attachments.media_keys") and post.media_keys:
            data["attachments"] = {"media_keys": list(post.media_keys)}
            self._include_media(post.media_keys)
        if wanted.expands("referenced_tweets.id") and post.reply_to:
            data[wanted.referenced_key] = references(post)
            self._include_referenced(post.reply_to)
        if wanted.expands("attachments.poll_ids") and post.poll:
            poll = self._poll(post)
            data.setdefault("attachments", {})["poll_ids"] = [poll["id"]]
        if wanted.expands("edit_history_tweet_ids"):
            self._include_post(post)  # a post never edited is its own whole edit history
        if "non_public_metrics" in wanted.post:
            self._non_public(post, data)
        return data

    def _non_public(self, post: Post, data: dict[str, Any]) -> None:
        """The post's non-public metrics for its author within 30 days; X's field error for anyone else."""
        age = self.world.now() - post.created_at
        if self.reader is not None and may_see_non_public(post.author_id, self.reader, age):
            data["non_public_metrics"] = non_public_metrics(self.world.config.seed, post.id, age)
        else:
            self.errors.append(not_authorized_for_field(post.id))

    def _poll(self, post: Post) -> dict[str, Any]:
        """The post's poll for `includes.polls`: its options with their votes, open until it ends."""
        assert post.poll is not None
        minutes, age = int(post.poll["duration_minutes"]), self.world.now() - post.created_at
        tally = poll_tally(self.world.config.seed, post.id, post.poll, age)
        poll_id = str(int(post.id) - 1)  # its own object at X, with an id of its own
        poll = {"id": poll_id, "options": [{"position": n, "label": label, "votes": count}
                                           for n, (label, count) in enumerate(tally, 1)],
                "duration_minutes": minutes, "end_datetime": iso(post.created_at + minutes * 60),
                "voting_status": "open" if age < minutes * 60 else "closed"}
        self.polls.setdefault(poll_id, poll)
        return poll

    def user(self, user: User) -> dict[str, Any]:
        """A user for `data`: its requested fields, and its latest post when that is expanded."""
        data = user_json(self.world, user, self.wanted, self.scopes)
        if self.wanted.expands("most_recent_tweet_id"):
            latest = latest_post(self.world, user.id)
            if latest is not None:
                data[self.wanted.most_recent_key] = latest.id
                self._include_post(latest)
        return data

    def body(self, data: Any) -> dict[str, Any]:
        """The answer's JSON: `data` (unless None), `includes` and `errors` when they hold anything."""
        body: dict[str, Any] = {} if data is None else {"data": data}
        includes = {key: list(found.values()) for key, found in
                    (("users", self.users), ("media", self.media), (self.wanted.posts_key, self.posts),
                     ("polls", self.polls)) if found}
        if includes:
            body["includes"] = includes
        if self.errors:
            body["errors"] = list(self.errors)
        return body

    # --- includes -----------------------------------------------------------------------

    def _include_user(self, user_id: str) -> None:
        user = self.world.people.by_id(user_id)
        if user is not None and user_id not in self.users:
            self.users[user_id] = user_json(self.world, user, self.wanted, self.scopes)

    def _include_media(self, media_keys: tuple[str, ...]) -> None:
        for key in media_keys:
            media = self.world.media_by_key(key)
            if media is not None and key not in self.media:
                self.media[key] = media_json(media, self.wanted)

    def _include_post(self, post: Post) -> None:
        if post.id not in self.posts:
            self.posts[post.id] = post_json(self.world, post, self.wanted)

    def _include_referenced(self, post_id: str) -> None:
        """The referenced post (and, when asked, its author and media); X's error if it is gone."""
        post = self.world.timeline.post(post_id)
        if post is None or post.deleted_at is not None:
            parameter = "referenced_posts" if self.wanted.current else "referenced_tweets.id"
            self.errors.append(not_found_entry("tweet", post_id, parameter))
            return
        self._include_post(post)
        if self.wanted.expands("referenced_tweets.id.author_id"):
            self._include_user(post.author_id)
        if self.wanted.expands("referenced_tweets.id.attachments.media_keys"):
            self._include_media(post.media_keys)


def references(post: Post) -> list[dict[str, str]]:
    """The posts a post refers to: the one it replies to (the sandbox refuses quotes and has no reposts)."""
    return [{"type": "replied_to", "id": post.reply_to}] if post.reply_to else []


def post_json(world: World, post: Post, wanted: Wanted) -> dict[str, Any]:
    """A post object: id, text, its edit history, plus the requested fields the sandbox knows."""
    history = list(post.edit_history or (post.id,))
    data: dict[str, Any] = {"id": post.id, "text": post.text, "edit_history_tweet_ids": history}
    if wanted.current:
        data["edit_history_post_ids"] = history
    fields = wanted.post
    known: dict[str, Any] = {
        "created_at": lambda: iso(post.created_at),
        "author_id": lambda: post.author_id,
        "conversation_id": lambda: post.conversation_id,
        "in_reply_to_user_id": lambda: post.in_reply_to_user_id,
        "referenced_tweets": lambda: references(post) or None,
        "attachments": lambda: {"media_keys": list(post.media_keys)} if post.media_keys else None,
        "reply_settings": lambda: post.reply_settings or "everyone",
        "lang": lambda: "en",
        "possibly_sensitive": lambda: False,
        "edit_controls": lambda: edit_controls(world, post),
        "public_metrics": lambda: public_metrics(world.config.seed, post.id, world.now() - post.created_at,
                                                 wanted.current),
    }
    for name, value in known.items():
        if name in fields and (found := value()) is not None:
            data[wanted.referenced_key if name == "referenced_tweets" else name] = found
    return data


def edit_controls(world: World, post: Post) -> dict[str, Any]:
    """X's edit window: five edits within the hour after posting (the sandbox offers no edits)."""
    until = post.created_at + EDIT_WINDOW
    return {"edits_remaining": 5, "is_edit_eligible": world.now() < until, "editable_until": iso(until)}


def user_json(world: World, user: User, wanted: Wanted, scopes: tuple[str, ...] = ()) -> dict[str, Any]:
    """A user object: id, name, username, plus the requested fields the sandbox knows.

    `confirmed_email` only for a token with `users.email`, as at X.
    """
    data: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
    latest = latest_post(world, user.id) if "most_recent_tweet_id" in wanted.user else None
    known: dict[str, Any] = {
        "created_at": user.created_at, "description": f"A sandbox user ({user.name}).",
        "protected": False, "verified": False, "verified_type": "none", "parody": False,
        "is_identity_verified": False, "profile_image_url": DEFAULT_PROFILE_IMAGE,
        "subscription_type": "None", "url": "", "most_recent_tweet_id": latest.id if latest else None,
        "confirmed_email": f"{user.username.lower()}@sandbox.invalid" if "users.email" in scopes else None,
    }
    data.update({k: v for k, v in known.items() if k in wanted.user and v is not None})
    return data


def media_json(media: Media, wanted: Wanted) -> dict[str, Any]:
    """A media object: media_key and type, plus the requested fields the sandbox knows.

    An image's `url` is where the sandbox serves its bytes (X's would be on pbs.twimg.com).
    """
    data: dict[str, Any] = {"media_key": media.media_key, "type": media.x_type}
    image = media.image or {}
    served = media.data is not None and media.image is not None
    known: dict[str, Any] = {
        "alt_text": media.alt_text, "width": image.get("w"), "height": image.get("h"),
        "url": f"{request.host_url}_sandbox/media/{media.media_key}" if served else None,
    }
    data.update({k: v for k, v in known.items() if k in wanted.media and v is not None})
    return data


def latest_post(world: World, user_id: str) -> Post | None:
    """The user's newest post that is not deleted."""
    return world.timeline.latest(user_id)
