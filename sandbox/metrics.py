"""A post's metrics as X reports them on any read, made up the same way every time.

Each count grows with the post's age on the sandbox clock (the logarithm of its minutes, so a
post gains most in its first hours, as real posts do) times a weight drawn from the world's
seed and the post's id: the same seed, post and moment give the same numbers, so a test can
compute what a read must show (`public_metrics(seed, post_id, age)`), and two posts differ.

`non_public_metrics` (x-api-facts §6) is only for the post's author, with their token, and only
while the post is under 30 days old; asked for otherwise, X answers the post without it and a
`not-authorized-for-field` entry in `errors`.
"""
from __future__ import annotations

import hashlib
import math
from typing import Any

NON_PUBLIC_DAYS = 30
# The most each count gains per unit of growth (the weight is drawn from 1 to this).
PUBLIC_WEIGHTS = {"impression_count": 400, "like_count": 30, "retweet_count": 8, "reply_count": 6,
                  "quote_count": 3, "bookmark_count": 5}
CLICK_WEIGHTS = {"url_link_clicks": 20, "user_profile_clicks": 10}
ENGAGED = ("like_count", "retweet_count", "reply_count", "quote_count", "url_link_clicks", "user_profile_clicks")


def growth(age_seconds: float) -> float:
    """How far a post of this age has come: 0 when new, ln(1 + minutes) after."""
    return math.log1p(max(age_seconds, 0.0) / 60)


def weight(seed: int, post_id: str, name: str, most: int) -> int:
    """A weight from 1 to `most`, fixed by the seed, the post and the count's name."""
    digest = hashlib.sha256(f"{seed}:{post_id}:{name}".encode()).digest()
    return 1 + int.from_bytes(digest[:8], "big") % most


def _counts(seed: int, post_id: str, age_seconds: float, weights: dict[str, int]) -> dict[str, int]:
    grown = growth(age_seconds)
    return {name: int(grown * weight(seed, post_id, name, most)) for name, most in weights.items()}


def public_metrics(seed: int, post_id: str, age_seconds: float, current_names: bool = False) -> dict[str, int]:
    """`public_metrics` of a post this old; `current_names`: 2.167's `repost_count` for `retweet_count`."""
    counts = _counts(seed, post_id, age_seconds, PUBLIC_WEIGHTS)
    if current_names:
        counts["repost_count"] = counts.pop("retweet_count")
    return counts


def non_public_metrics(seed: int, post_id: str, age_seconds: float) -> dict[str, int]:
    """`non_public_metrics` of a post this old: impressions, clicks, and every engagement together."""
    public = _counts(seed, post_id, age_seconds, PUBLIC_WEIGHTS)
    clicks = _counts(seed, post_id, age_seconds, CLICK_WEIGHTS)
    every = {**public, **clicks}
    return {"impression_count": public["impression_count"], **clicks,
            "engagements": sum(every[name] for name in ENGAGED)}


def may_see_non_public(author_id: str, reader_id: str, age_seconds: float) -> bool:
    """Whether X shows the reader a post's non-public metrics: their own post, under 30 days old."""
    return author_id == reader_id and age_seconds < NON_PUBLIC_DAYS * 86400


def not_authorized_for_field(post_id: str, field: str = "non_public_metrics") -> dict[str, Any]:
    """X's `errors` entry for a field the reader may not see on one post of `data`."""
    return {"type": "https://api.twitter.com/2/problems/not-authorized-for-field", "title": "Field Authorization Error",
            "detail": f"Sorry, you are not authorized to access '{field}' on the Tweet with id {post_id}.",
            "resource_type": "tweet", "field": field, "section": "data", "resource_id": post_id}


POLL_WEIGHT = 40  # the most votes an option gains per unit of growth


def poll_votes(seed: int, post_id: str, labels: list[str], age_seconds: float, duration_minutes: int) -> list[int]:
    """Each option's votes: they grow with the poll's age, as metrics do, and stop when it closes."""
    grown = growth(min(age_seconds, duration_minutes * 60.0))
    return [int(grown * weight(seed, post_id, f"poll:{label}", POLL_WEIGHT)) for label in labels]


def poll_tally(seed: int, post_id: str, poll: dict[str, Any], age_seconds: float) -> list[tuple[str, int]]:
    """A post's poll (`options`, `duration_minutes`) as its options with their votes at `age_seconds`."""
    labels = list(poll["options"])
    votes = poll_votes(seed, post_id, labels, age_seconds, int(poll["duration_minutes"]))
    return list(zip(labels, votes, strict=True))
