"""Why the queue refuses what a person or a program asks: one exception per decision the caller makes.

Every way in (the CLI, the web form, CSV imports, generators) calls the same operations
(`bot.queue`, `bot.schedules`, `bot.accounts`) and gets these, never a bare ValueError: the
message says why for a person; `kind` names the refusal for a program (stable, so a program
may decide by it); the fields carry the facts a front end shows in its own words (a time on
the operator's clock).
"""
from __future__ import annotations

from datetime import datetime


class QueueError(ValueError):
    """A post cannot be queued or changed as asked; the message says why, for a person."""

    kind = "refused"


class TextRefused(QueueError):
    """A part is empty, too long for X, or holds a character a post cannot."""

    kind = "text"


class MediaRefused(QueueError):
    """A file X would not take, or media this account cannot post (or that are no longer kept)."""

    kind = "media"


class OptionRefused(QueueError):
    """A post option X would not take (a poll of one choice, a quote below the Enterprise tier, a reply to
    something that is not a post…): `bot.post_options`."""

    kind = "option"


class TimeRefused(QueueError):
    """The time asked for cannot be a post's (no time zone)."""

    kind = "time"


class InThePast(TimeRefused):
    """The time asked for has passed (beyond a moment's grace)."""

    kind = "in-the-past"

    def __init__(self, message: str, due_at: datetime, now: datetime) -> None:
        super().__init__(message)
        self.due_at, self.now = due_at, now


class NoSlots(QueueError):
    """A post asks for the account's next free slot, and the account has no slots."""

    kind = "no-slots"


class NoSuchAccount(QueueError):
    """No connected account goes by that handle or id."""

    kind = "no-such-account"


class AccountDisconnected(QueueError):
    """The account was disconnected: it must be connected again before it can be given posts."""

    kind = "account-disconnected"


class NoSuchPost(QueueError):
    """No post has that id."""

    kind = "no-such-post"


class WrongStatus(QueueError):
    """The post is not in a state that allows it (being sent, finished, not failed, queued again…)."""

    kind = "wrong-status"


__all__ = ["AccountDisconnected", "InThePast", "MediaRefused", "NoSlots", "NoSuchAccount", "NoSuchPost",
           "OptionRefused", "QueueError", "TextRefused", "TimeRefused", "WrongStatus"]
