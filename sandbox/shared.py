"""What every part of the sandbox world shares: the one lock, the clock, the switches, the dice, ids.

The world (`sandbox/state.py`) makes one `Shared` and hands it to each of its parts
(people, consent, uploads, timeline, traffic); each part takes `lock` inside its own
public methods, so one request's read-modify-write never interleaves with another's,
whichever parts it touches. The lock is re-entrant: a part's method may call another's.

Time is the sandbox clock: the wall clock plus an offset that only moves forward.
"""
from __future__ import annotations

import random
import threading
import time
from typing import Any

from sandbox.options import Options, SandboxConfig

TWITTER_EPOCH_MS = 1_288_834_974_657


class Shared:
    """The lock, clock, options, seeded random numbers and id source of one world."""

    def __init__(self, config: SandboxConfig) -> None:
        self.lock = threading.RLock()
        self.reset(config)

    def reset(self, config: SandboxConfig) -> None:
        """Back to the start: default switches, clock offset 0, the seed's random numbers."""
        with self.lock:
            self.options = Options.starting(config)
            self.clock_offset = 0.0
            self.rng = random.Random(config.seed)
            self._last_snowflake = 0

    def kept(self) -> dict[str, Any]:
        """What outlives a restart: the switches, the clock's offset, the last id handed out."""
        return {"options": self.options, "clock_offset": self.clock_offset, "last_snowflake": self._last_snowflake}

    def restore(self, kept: dict[str, Any], config: SandboxConfig) -> None:
        """Take back what `kept` gave; what `config` sets (tier, lifetimes) wins over the kept switches."""
        with self.lock:
            starting = Options.starting(config)
            self.options = kept["options"]
            self.options.tier = starting.tier
            self.options.access_token_lifetime = starting.access_token_lifetime
            self.options.media_processing_seconds = starting.media_processing_seconds
            self.clock_offset = float(kept["clock_offset"])
            self._last_snowflake = int(kept["last_snowflake"])

    def now(self) -> float:
        """The sandbox clock (Unix seconds)."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never back: X's clock does not go back either)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self.lock:
            self.clock_offset += seconds
            return self.now()

    def snowflake(self) -> str:
        """An id like X's: time-ordered, numeric, strictly increasing."""
        with self.lock:
            value = (int(self.now() * 1000) - TWITTER_EPOCH_MS) << 22
            value = max(value, self._last_snowflake + 1)
            self._last_snowflake = value
            return str(value)


class Part:
    """One part of a world (its users, consents, uploads, posts, traffic): it shares the world's
    lock and clock, takes the lock in its own methods, and empties itself on `reset`."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._lock = shared.lock
        self.reset()

    def reset(self) -> None:
        """Back to empty (the world's reset calls every part's, under the lock)."""
        raise NotImplementedError

    def kept(self) -> dict[str, Any]:
        """What this part holds, for the state file: its records, not the lock or the parts it reads."""
        return {name: value for name, value in vars(self).items()
                if name not in ("_shared", "_lock") and not isinstance(value, Part)}

    def restore(self, kept: dict[str, Any]) -> None:
        """Take back what `kept` gave (the world calls this under the lock)."""
        vars(self).update(kept)
