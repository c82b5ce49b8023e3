"""The one seam where tweetbot reaches the network.

Every request is addressed to ``https://api.twitter.com`` (tweepy's API host is fixed
there). A requests transport adapter, the one every request goes through, rewrites that
prefix to the configured API base, so the same code talks to X or to the local sandbox.

`Transport` is one such adapter shared by every request a process makes: its
connection pool keeps connections to X alive across accounts, as a browser would,
instead of a new TLS handshake per account. Proxies come from the environment once
(HTTPS_PROXY, NO_PROXY), not on every request, as requests does for a session left
to read the environment.

The calls the worker makes by the thousand (a post, a refresh) go through
`Transport.request`, straight to the adapter: a `requests.Session` costs more CPU
than the request it sends (its cookie jar, its settings merged on every call, and a
new one per client). tweepy's own sessions, for the reads it parses, are attached
to the same adapter (`Transport.attach`).
"""
from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest

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


def mount_api_base(session: requests.Session, api_base: str, timeout: float | None = None,
                   adapter: ApiBaseAdapter | None = None) -> requests.Session:
    """Route ``session``'s X traffic to ``api_base`` (X itself or the sandbox), through `adapter` if given."""
    adapter = adapter or ApiBaseAdapter(api_base, timeout)
    session.mount(TWEEPY_API_BASE, adapter)
    if not api_base.startswith(TWEEPY_API_BASE):
        session.mount(api_base.rstrip("/"), adapter)
    return session


class Transport:
    """One connection pool to X (or the sandbox) for every session of a process."""

    def __init__(self, api_base: str, timeout: float | None, connections: int = 32) -> None:
        self.api_base = api_base
        self.adapter = ApiBaseAdapter(api_base, timeout)
        self.adapter.init_poolmanager(connections, connections, block=False)  # per host: one per thread
        self.proxies = requests.utils.get_environ_proxies(api_base)

    def request(self, method: str, url: str, headers: dict[str, str], *, json: Any = None,
                data: dict[str, str] | None = None, files: dict[str, Any] | None = None,
                params: dict[str, str] | None = None, auth: tuple[str, str] | None = None) -> requests.Response:
        """One request through the pool and its whole answer, its body and headers prepared by requests.
        No session: no cookie carries from one account's request to another's, and no redirect is
        followed (X's API answers where it is asked)."""
        prepared = PreparedRequest()
        prepared.prepare_method(method)
        if params:
            prepared.prepare_url(url, params)
        else:
            prepared.url = url  # ours and whole: parsing it again was half of what preparing a post cost
        prepared.prepare_headers(headers)
        prepared.prepare_body(data, files, json)
        prepared.prepare_auth(auth, url)
        response = self.adapter.send(prepared, proxies=self.proxies)
        response.content  # noqa: B018 -- read it all, so the connection goes back to the pool now
        return response

    def attach(self, session: requests.Session) -> requests.Session:
        """`session` sends through this pool, with the proxies the environment gave at start-up."""
        session.trust_env = False
        session.proxies.update(self.proxies)
        return mount_api_base(session, self.api_base, adapter=self.adapter)
