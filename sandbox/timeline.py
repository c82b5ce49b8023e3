"""Posts and timelines: storing a post after X's checks, deleting, the duplicate rule, X's text.

`create` is one step under the world's lock: the reply policy, the media, the duplicate
check and the store, so two identical posts sent at once give one post and one 403, as
at X. The text X returns has & < > escaped and links as `https://t.co/…` links (the
links `xtext` finds, so the sandbox shortens what the bot's length count treats as a
link), and one link more for a post's media; the duplicate check compares the text as sent.
"""
from __future__ import annotations

import re
import string
from typing import Any

from sandbox.errors import DUPLICATE_DETAIL, REPLY_NOT_ALLOWED_DETAIL, forbidden, invalid_request, not_found
from sandbox.people import People
from sandbox.records import Post, User, iso
from sandbox.shared import Part, Shared
from sandbox.upload_sessions import Uploads
from xtext import extract_urls

_MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{1,15})")
REPLY_GONE = "The post you are replying to has been deleted or is not visible to you."


class Timeline(Part):
    """Every post, each user's posts in order, and recent texts for the duplicate rule."""

    def __init__(self, shared: Shared, people: People, uploads: Uploads) -> None:
        self._people = people
        self._uploads = uploads
        super().__init__(shared)

    def reset(self) -> None:
        """No posts."""
        with self._lock:
            self._posts: dict[str, Post] = {}
            self._by_user: dict[str, list[Post]] = {}
            self._recent: dict[tuple[str, str], list[Post]] = {}

    # --- posting --------------------------------------------------------------------

    def create(self, author: User, client_id: str, body: dict[str, Any]) -> Post:
        """Store a post of `author` from a checked `POST /2/tweets` body, or raise X's refusal."""
        text = body.get("text", "")
        media_ids = tuple(body.get("media", {}).get("media_ids", ()))
        with self._lock:
            edited = self._edited(author, body.get("edit_options"))
            reply_to, reply_user = self._reply_target(author, body.get("reply"))
            media_keys = self._uploads.usable(author.id, media_ids) if media_ids else ()
            if text and self.duplicate_of(author.id, text) is not None:
                raise forbidden(DUPLICATE_DETAIL)
            post_id = self._shared.snowflake()
            root = self._posts[reply_to].conversation_id if reply_to else post_id
            post = Post(id=post_id, author_id=author.id, raw_text=text, text=self.returned_text(text, media_ids),
                        created_at=self._shared.now(), client_id=client_id, conversation_id=root,
                        reply_to=reply_to, in_reply_to_user_id=reply_user, media_ids=media_ids,
                        media_keys=media_keys, poll=body.get("poll"), reply_settings=body.get("reply_settings"),
                        community_id=body.get("community_id"), quote_tweet_id=body.get("quote_tweet_id"),
                        made_with_ai=bool(body.get("made_with_ai")),
                        paid_partnership=bool(body.get("paid_partnership")))
            if edited is not None:  # every version shares the history, as X shows it on each
                post.edit_history = (*(edited.edit_history or (edited.id,)), post.id)
                for version in edited.edit_history or (edited.id,):
                    self._posts[version].edit_history = post.edit_history
            self._store(post)
            return post

    def _edited(self, author: User, edit: dict[str, Any] | None) -> Post | None:
        """The author's live post that `edit_options.previous_post_id` names (an edit of it), or X's refusal."""
        if edit is None:
            return None
        target = self._posts.get(edit.get("previous_post_id") or "")
        if target is None or target.deleted_at is not None:
            raise invalid_request("$.edit_options.previous_post_id: the post to edit does not exist")
        if target.author_id != author.id:
            raise forbidden("You are not allowed to edit a Post you did not author.")
        return target

    def _reply_target(self, author: User, reply: dict[str, Any] | None) -> tuple[str | None, str | None]:
        """The replied-to post and its author, if the reply policy lets `author` reply to it."""
        if reply is None:
            return None, None
        target = self._posts.get(reply["in_reply_to_tweet_id"])
        if target is None or target.deleted_at is not None:
            raise invalid_request(REPLY_GONE, {"reply.in_reply_to_tweet_id": [reply["in_reply_to_tweet_id"]]})
        policy = self._shared.options.reply_policy
        summoned = target.author_id == author.id or author.username.lower() in mentions(target.raw_text)
        if policy == "no_replies" or (policy == "summoned" and not summoned):
            raise forbidden(REPLY_NOT_ALLOWED_DETAIL)
        return target.id, target.author_id

    def duplicate_of(self, user_id: str, raw_text: str) -> Post | None:
        """A live post of the user with the same text within the duplicate window."""
        with self._lock:
            since = self._shared.now() - self._shared.options.duplicate_window
            for post in reversed(self._recent.get((user_id, raw_text), [])):
                if post.deleted_at is None and post.created_at >= since:
                    return post
            return None

    def _store(self, post: Post) -> None:
        """Keep a post (the caller did the checks under the same lock)."""
        self._posts[post.id] = post
        self._by_user.setdefault(post.author_id, []).append(post)
        self._recent.setdefault((post.author_id, post.raw_text), []).append(post)

    def delete(self, post_id: str, user_id: str) -> None:
        """Delete one of the user's own live posts, or raise X's 404 / 403."""
        with self._lock:
            post = self._posts.get(post_id)
            if post is None or post.deleted_at is not None:
                raise not_found("tweet", post_id)
            if post.author_id != user_id:
                raise forbidden("You are not allowed to delete a Tweet you did not author.")
            post.deleted_at = self._shared.now()

    # --- X's text -------------------------------------------------------------------

    def returned_text(self, raw_text: str, media_ids: tuple[str, ...]) -> str:
        """The text X returns: rewritten, and for a post with media one link more at the end."""
        text = self.rewrite(raw_text)
        if media_ids and self._shared.options.text_rewrite:
            text = (text + " " if text else "") + self.short_link()
        return text

    def rewrite(self, raw_text: str) -> str:
        """The text as X returns it: & < > escaped, links as t.co links (when switched on)."""
        if not self._shared.options.text_rewrite:
            return raw_text
        out, cursor = [], 0
        for url in extract_urls(raw_text):
            start = raw_text.find(url, cursor)
            if start < 0:
                continue
            out += [_escape(raw_text[cursor:start]), self.short_link()]
            cursor = start + len(url)
        out.append(_escape(raw_text[cursor:]))
        return "".join(out)

    def short_link(self) -> str:
        """A fresh `https://t.co/<10 alphanumerics>` link (from the world's seeded random numbers)."""
        with self._lock:
            rng = self._shared.rng
            return "https://t.co/" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(10))

    # --- reading --------------------------------------------------------------------

    def post(self, post_id: str) -> Post | None:
        """A post by id, deleted or not."""
        with self._lock:
            return self._posts.get(post_id)

    def visible(self, post_id: str) -> Post | None:
        """A post that exists and is not deleted."""
        post = self.post(post_id)
        return None if post is None or post.deleted_at is not None else post

    def posts_of(self, user_id: str) -> list[Post]:
        """The user's posts, oldest first, deleted ones included (a copy of the list)."""
        with self._lock:
            return list(self._by_user.get(user_id, ()))

    def live_posts(self, user_id: str) -> list[Post]:
        """The user's posts that are not deleted, newest first."""
        with self._lock:
            return [p for p in reversed(self._by_user.get(user_id, ())) if p.deleted_at is None]

    def latest(self, user_id: str) -> Post | None:
        """The user's newest post that is not deleted."""
        with self._lock:
            return next((p for p in reversed(self._by_user.get(user_id, ())) if p.deleted_at is None), None)

    def live_counts(self) -> dict[str, int]:
        """How many live posts each user with posts has."""
        with self._lock:
            return {user_id: sum(1 for p in posts if p.deleted_at is None) for user_id, posts in self._by_user.items()}

    def rows(self, author_id: str | None = None, include_deleted: bool = True) -> list[dict[str, Any]]:
        """Posts oldest first as exposed in `state.posts`: all, or one author's; deleted ones or not."""
        with self._lock:
            return [self._row(p) for p in self._posts.values()
                    if (author_id is None or p.author_id == author_id)
                    and (include_deleted or p.deleted_at is None)]

    def _row(self, post: Post) -> dict[str, Any]:
        """One post's row."""
        return {"id": post.id, "author_id": post.author_id, "username": self._people.username(post.author_id),
                "text": post.raw_text, "x_text": post.text, "created_at": iso(post.created_at),
                "created_at_ts": post.created_at, "client_id": post.client_id, "reply_to": post.reply_to,
                "conversation_id": post.conversation_id, "media_ids": list(post.media_ids),
                "media": self._uploads.post_media_rows(post.media_ids), "poll": post.poll,
                "reply_settings": post.reply_settings, "community_id": post.community_id,
                "quote_tweet_id": post.quote_tweet_id,
                "made_with_ai": post.made_with_ai, "paid_partnership": post.paid_partnership,
                "deleted": post.deleted_at is not None}


def mentions(text: str) -> set[str]:
    """The lower-cased @names in a text (who a post "summons")."""
    return {m.lower() for m in _MENTION.findall(text)}


def _escape(text: str) -> str:
    """X's entity escaping of post text (only these three characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
