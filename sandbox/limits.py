"""Rate limits: X's per-user and per-app windows, by tier, and the headers X sends.

Numbers from `x-api-facts.md` §2 and §4 (docs `x-api/fundamentals/rate-limits.mdx`).
POST /2/tweets is the endpoint whose limits differ by tier; the others use the
documented per-user windows for every tier. The media endpoints' numbers are not
in the facts file: they are generous placeholders, overridable like every other.

Windows are fixed (as X's are): a window starts with its first request and resets
`seconds` later on the sandbox clock; `x-rate-limit-reset` is that moment in Unix seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MINUTES_15 = 15 * 60
HOURS_24 = 24 * 60 * 60


@dataclass(frozen=True)
class Window:
    """`limit` requests per `seconds`, counted per user (of one app) or per app."""

    scope: str  # "user" or "app"
    seconds: int
    limit: int

    def as_json(self) -> dict[str, Any]:
        """The control-API form of the window."""
        return {"scope": self.scope, "window": self.seconds, "limit": self.limit}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Window:
        """Parse a control-API window; raises ValueError when malformed."""
        scope = raw.get("scope", "user")
        if scope not in ("user", "app"):
            raise ValueError(f"scope must be 'user' or 'app', not {scope!r}")
        seconds, limit = int(raw.get("window", MINUTES_15)), int(raw["limit"])
        if seconds < 1 or limit < 0:
            raise ValueError("window must be ≥ 1 second and limit ≥ 0")
        return cls(scope, seconds, limit)


def _w(scope: str, seconds: int, limit: int) -> Window:
    """Shorthand for the tables below."""
    return Window(scope, seconds, limit)


# Endpoint keys are "METHOD /path" with ":id" for path parameters, as X's docs write them.
_COMMON: dict[str, tuple[Window, ...]] = {
    "GET /2/users/me": (_w("user", MINUTES_15, 75),),
    "DELETE /2/tweets/:id": (_w("user", MINUTES_15, 50),),
    "GET /2/users/:id/tweets": (_w("user", MINUTES_15, 900), _w("app", MINUTES_15, 1500)),
    "GET /2/tweets/:id": (_w("user", MINUTES_15, 900), _w("app", MINUTES_15, 450)),
    # The other lookups are not in the facts file: the documented lookup windows, as placeholders.
    "GET /2/tweets": (_w("user", MINUTES_15, 900), _w("app", MINUTES_15, 450)),
    "GET /2/users/:id": (_w("user", MINUTES_15, 900), _w("app", MINUTES_15, 300)),
    "GET /2/users": (_w("user", MINUTES_15, 900), _w("app", MINUTES_15, 300)),
    "GET /2/users/by/username/:username": (_w("user", MINUTES_15, 900), _w("app", MINUTES_15, 300)),
    "GET /2/users/by": (_w("user", MINUTES_15, 900), _w("app", MINUTES_15, 300)),
    "POST /2/media/upload": (_w("user", MINUTES_15, 500), _w("app", HOURS_24, 50000)),
    "GET /2/media/upload": (_w("user", MINUTES_15, 1000),),
    "POST /2/media/upload/initialize": (_w("user", MINUTES_15, 500), _w("app", HOURS_24, 50000)),
    "POST /2/media/upload/:id/append": (_w("user", MINUTES_15, 5000),),
    "POST /2/media/upload/:id/finalize": (_w("user", MINUTES_15, 500),),
    "POST /2/media/metadata": (_w("user", MINUTES_15, 500),),
}

_POST_TWEETS: dict[str, tuple[Window, ...]] = {
    "payg": (_w("user", MINUTES_15, 100), _w("app", HOURS_24, 10000)),
    "pro": (_w("user", MINUTES_15, 100), _w("app", HOURS_24, 10000)),
    "basic": (_w("user", HOURS_24, 100), _w("app", HOURS_24, 1667)),
    "free": (_w("user", HOURS_24, 17), _w("app", HOURS_24, 17)),
    "enterprise": (_w("user", MINUTES_15, 100),),  # contracted; Pro's per-user window as a stand-in
}

TIERS: tuple[str, ...] = tuple(_POST_TWEETS)


def tier_table(tier: str) -> dict[str, tuple[Window, ...]]:
    """Every limited endpoint's windows for `tier` (the first window drives `x-rate-limit-*`)."""
    table = dict(_COMMON)
    table["POST /2/tweets"] = _POST_TWEETS[tier]
    return table


@dataclass
class Counter:
    """One fixed window's state."""

    started: float
    count: int = 0


class RateLimiter:
    """Counts requests in fixed windows. Not thread-safe: the world's lock guards it."""

    def __init__(self) -> None:
        self.counters: dict[tuple[Any, ...], Counter] = {}

    def reset(self) -> None:
        """Forget every window (tier or overrides changed)."""
        self.counters.clear()

    def check(self, endpoint: str, windows: tuple[Window, ...], client_id: str, user_id: str,
              now: float) -> tuple[bool, dict[str, str]]:
        """Count one request unless a window is full; (allowed, headers for the answer).

        A refused request counts in no window, as at X: waiting for the reset is enough.
        """
        states = []
        for window in windows:
            key = (endpoint, window.scope, window.seconds, client_id,
                   user_id if window.scope == "user" else None)
            counter = self.counters.get(key)
            if counter is None or now >= counter.started + window.seconds:
                counter = self.counters[key] = Counter(started=now)
            states.append((window, counter))
        allowed = all(counter.count < window.limit for window, counter in states)
        if allowed:
            for _, counter in states:
                counter.count += 1
        return allowed, _headers(states)

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        """The live counters, for `GET /_sandbox/limits`."""
        rows = []
        for (endpoint, scope, seconds, client_id, user_id), counter in self.counters.items():
            if now < counter.started + seconds:
                rows.append({"endpoint": endpoint, "scope": scope, "window": seconds, "client_id": client_id,
                             "user_id": user_id, "count": counter.count,
                             "reset": int(counter.started + seconds)})
        return rows


def _headers(states: list[tuple[Window, Counter]]) -> dict[str, str]:
    """`x-rate-limit-*` from the first window; `x-{user,app}-limit-24hour-*` from daily ones."""
    headers: dict[str, str] = {}
    for index, (window, counter) in enumerate(states):
        values = (str(window.limit), str(max(window.limit - counter.count, 0)),
                  str(int(counter.started + window.seconds)))
        prefixes = []
        if index == 0:
            prefixes.append("x-rate-limit")
        if window.seconds == HOURS_24:
            prefixes.append(f"x-{window.scope}-limit-24hour")
        for prefix in prefixes:
            headers[f"{prefix}-limit"], headers[f"{prefix}-remaining"], headers[f"{prefix}-reset"] = values
    return headers
