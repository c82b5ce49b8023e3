"""The one seam where tweetbot reaches the network.

tweepy's API host is fixed at ``https://api.twitter.com``. Rather than patching
tweepy, a requests transport adapter is mounted on each session tweepy (or
requests-oauthlib) uses; it rewrites that prefix to the configured API base, so
the same code talks to X or to the local sandbox.
"""
from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

TWEEPY_API_BASE = "https://api.twitter.com"


class ApiBaseAdapter(HTTPAdapter):
    """Sends requests for ``https://api.twitter.com`` to ``api_base`` instead.

    ``timeout`` is applied to every request that sets none (tweepy sets none).
    """

    def __init__(self, api_base: str, timeout: float | None = None) -> None:
        super().__init__()
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs):  # type: ignore[override]
        if request.url and request.url.startswith(TWEEPY_API_BASE):
            request.url = self.api_base + request.url[len(TWEEPY_API_BASE):]
        if kwargs.get("timeout") is None and self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def mount_api_base(session: requests.Session, api_base: str,
                   timeout: float | None = None) -> requests.Session:
    """Route ``session``'s X traffic to ``api_base`` (X itself or the sandbox)."""
    adapter = ApiBaseAdapter(api_base, timeout)
    session.mount(TWEEPY_API_BASE, adapter)
    if not api_base.startswith(TWEEPY_API_BASE):
        session.mount(api_base.rstrip("/"), adapter)
    return session
