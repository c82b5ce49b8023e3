"""What reading costs under pay-per-use (x-api-facts §6), counted as X bills it, and the credit it runs out of.

A post read is $0.005 per post returned; an owned read (`GET /2/users/{id}/tweets` where `{id}` is
the caller and the caller owns the app: the `app_owner` switch names that user) is $0.001 per post.
A post already billed in the same UTC day (on the sandbox clock) is not billed again, whatever the
endpoint. Amounts are kept in tenths of a cent ("mills"), so totals are exact.

The `credit_usd` switch (None: no limit) is the balance: once what was billed reaches it, every
billed read answers 402 (the `credits_depleted` switch still turns every endpoint off, posting too).
A state file (`--state`) keeps the charges with the next request that writes it (reads write none).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sandbox.shared import Part

BILLED_READS = frozenset({"GET /2/tweets", "GET /2/tweets/:id", "GET /2/users/:id/tweets"})  # post reads
POST_READ_MILLS = 5  # $0.005 a post returned
OWNED_READ_MILLS = 1  # $0.001 a post returned, owned reads
DAY = 86400


class Charges(Part):
    """Every read billed, per endpoint; the posts billed today, so that a day bills a post once."""

    def reset(self) -> None:
        with self._lock:
            self._day = 0  # the UTC day (number) `_billed` is for
            self._billed: set[str] = set()  # the posts billed that day
            self._by_endpoint: dict[str, int] = {}  # mills; plain containers: the state file keeps them
            self._posts_billed = 0  # post reads billed, every day

    def spent_out(self) -> bool:
        """Whether the credit (the `credit_usd` switch) is used up."""
        credit = self._shared.options.credit_usd
        with self._lock:
            return credit is not None and sum(self._by_endpoint.values()) >= round(credit * 1000)

    def bill(self, endpoint: str, post_ids: Iterable[str], owned: bool = False) -> int:
        """Bill the posts a read returned (those not billed yet today); the mills billed."""
        price = OWNED_READ_MILLS if owned else POST_READ_MILLS
        with self._lock:
            day = int(self._shared.now() // DAY)
            if day != self._day:  # a new UTC day: every post may be billed again
                self._day, self._billed = day, set()
            billed = 0
            for post_id in post_ids:
                if post_id not in self._billed:
                    self._billed.add(post_id)
                    self._posts_billed += 1
                    billed += price
            if billed:
                self._by_endpoint[endpoint] = self._by_endpoint.get(endpoint, 0) + billed
            return billed

    def as_json(self) -> dict[str, Any]:
        """`GET /_sandbox/charges`: the total and each endpoint's, in dollars, and the posts billed."""
        with self._lock:
            return {"total_usd": sum(self._by_endpoint.values()) / 1000,
                    "by_endpoint": {name: mills / 1000 for name, mills in sorted(self._by_endpoint.items())},
                    "posts_billed": self._posts_billed}
