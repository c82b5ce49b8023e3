"""Writes that must land: what X already did is written until the store takes it.

When X has answered (a post is out, a refresh spent the old token), the answer exists
nowhere but in this process until it is stored. A database that is restarting or
briefly away must not turn that into a lost post or a lost token chain, so such a
write is tried again, with a growing pause, for as long as the database cannot be
reached. `give_up` says when to stop trying (the worker is stopping and the answer
can be recovered another way); without it, only the end of the process stops it.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from bot.store import StoreUnreachable

log = logging.getLogger("tweetbot.store")

T = TypeVar("T")
PAUSE_FIRST, PAUSE_MOST = 0.1, 2.0  # seconds between two tries


class GaveUp(Exception):
    """The write did not land before `give_up()` said to stop trying."""


def until_stored(write: Callable[[], T], what: str, give_up: Callable[[], bool] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """`write()`'s result, trying again while the database cannot be reached (`GaveUp` once `give_up()`)."""
    pause = PAUSE_FIRST
    told = False
    while True:
        try:
            result = write()
        except StoreUnreachable:
            if give_up is not None and give_up():
                raise GaveUp(f"{what} was not stored: the database could not be reached") from None
            if not told:
                log.warning("%s: the database cannot be reached; trying again until it is stored", what)
                told = True
            sleep(pause)
            pause = min(pause * 2, PAUSE_MOST)
            continue
        if told:
            log.info("%s: stored", what)
        return result
