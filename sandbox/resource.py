"""What every v2 resource endpoint does before its own work, as X does it.

`@resource(key, scopes)` wraps a view: bearer token (expired, revoked, unknown or absent →
X's 401), scopes (→ X's 403), usage cap / credits switches and a billed read past the credit
(→ 429 UsageCapExceeded / 402), then the rate-limit windows (→ X's 429). The window headers go on every answer the
endpoint gives once the caller is known, refusals included.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Response, g, request

from sandbox.charges import BILLED_READS
from sandbox.errors import credits_depleted, forbidden, too_many_requests, unauthorized, usage_capped
from sandbox.faults import x_endpoint
from sandbox.records import Chain, User
from sandbox.state import current_world

READ = ("tweet.read", "users.read")
WRITE = ("tweet.read", "tweet.write", "users.read")
MEDIA = ("media.write",)

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
            if world.options.credits_depleted or (key in BILLED_READS and world.charges.spent_out()):
                raise credits_depleted(chain.client_id)
            allowed, headers = world.traffic.check_rate(key, chain.client_id, user.id)
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
