"""What every request and response of the web app gets: proxy trust, CSRF, cookies, headers.

- `X-Forwarded-For/-Proto/-Host` are believed only from the proxies `TRUSTED_PROXIES`
  names (`TrustedProxies`: a number of hops, werkzeug's `ProxyFix`; or networks, the
  nearest untrusted address in the chain). By default that is the PaaS router where a
  platform is detected, and nobody elsewhere: a client cannot name its own address
  (the sign-in lockout counts the real one) nor claim https.
- Flask-WTF's `CSRFProtect` checks a token on every POST; a refused form gets a page
  that says why, not a bare 400.
- The session cookie is HttpOnly and SameSite=Lax always, Secure whenever the request
  came over https (decided per request, so one configuration serves both `make run`
  on http://127.0.0.1 and a PaaS on https).
- Headers: a CSP without inline script (the page's JS is static files), no framing,
  a same-origin referrer (Flask-WTF checks the Referer on https), no caching of
  signed-in pages (the one exception: a stored image's bytes, which never change for
  their digest, say `private` themselves; see `web.media_bytes`). `img-src` allows `blob:`
  so the compose form can preview a chosen image before it is uploaded.
  `Strict-Transport-Security` (a year) whenever PUBLIC_URL is https or the request came
  over https.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import Flask, Response, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.settings import Settings
from web import api

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SESSION_LIFETIME = timedelta(hours=12)
HSTS = "max-age=31536000"  # a year; no includeSubDomains: the operator's other hosts are not ours to pin
SELF_CACHED = frozenset({"media.media"})  # endpoints whose answers set their own (private) Cache-Control


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with `Secure` set whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


class TrustedProxies:
    """Believe forwarding headers only from trusted proxies (WSGI middleware around the app).

    `trusted` is a number of hops (the last N proxies before the app; 0 believes no one) or
    networks: when the connecting address is in one, the client is the right-most address of
    `X-Forwarded-For` outside them, and `-Proto`/`-Host` are the nearest proxy's; from any
    other address every forwarding header is ignored.
    """

    def __init__(self, app: WSGIApplication, trusted: int | Iterable[str]) -> None:
        self.app = app
        self.hops = trusted if isinstance(trusted, int) else 0
        self.networks = () if isinstance(trusted, int) else tuple(ipaddress.ip_network(n) for n in trusted)
        self._fixed: dict[int, ProxyFix] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        hops = self._hops(environ) if self.networks else self.hops
        if hops == 0:
            for header in ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
                           "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX"):
                environ.pop(header, None)  # nobody below may read what a client claimed
            return self.app(environ, start_response)
        fixed = self._fixed.get(hops)
        if fixed is None:
            fixed = self._fixed[hops] = ProxyFix(self.app, x_for=hops, x_proto=1, x_host=1)
        return fixed(environ, start_response)

    def _hops(self, environ: WSGIEnvironment) -> int:
        """How many of the addresses before the app are trusted proxies (the connecting one first)."""
        chain = [environ.get("REMOTE_ADDR", "")]
        chain += reversed([a.strip() for a in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()])
        hops = 0
        while hops < len(chain) - 1 and self._trusted(chain[hops]):
            hops += 1
        return hops

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def init_app(app: Flask, settings: Settings) -> None:
    """Wire the proxy trust, CSRF, cookie settings and security headers into `app`."""
    app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="tweetbot_session",  # cookies ignore ports: the sandbox shares 127.0.0.1
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # The cookie is sent only when the session changes. Refreshed on every answer, a live panel's
        # answer, asked with the cookie of a moment before, would put back a message the page beside it
        # has just shown (and the 12-hour end is in the session's own mark, not the cookie's expiry).
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session, not an hour
    )
    CSRFProtect(app).exempt(api.bp)  # the API takes no session cookie: a browser sends no key in a header
    app.register_error_handler(CSRFError, _csrf_refused)
    policy = content_security_policy(settings.authorize_url)
    https_site = settings.public_url.startswith("https://")
    app.after_request(lambda response: _add_headers(response, policy, https_site))


def content_security_policy(authorize_url: str) -> str:
    """No inline script or style; forms may go to us and (through Connect's redirect) to X's consent page."""
    parts = urlsplit(authorize_url)
    consent_origin = f"{parts.scheme}://{parts.netloc}"
    return "; ".join((
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",  # blob: the compose form's previews of chosen files
        "connect-src 'self'",
        f"form-action 'self' {consent_origin}",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ))


def _add_headers(response: Response, policy: str, https_site: bool) -> Response:
    response.headers["Content-Security-Policy"] = policy
    if https_site or request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint != "static" and not (request.endpoint in SELF_CACHED and response.status_code == 200):
        response.headers["Cache-Control"] = "no-store"
    return response


def _csrf_refused(error: CSRFError) -> tuple[str, int]:
    return render_template("message.html", title="This form cannot be accepted",
                           message=f"{error.description} Reload the page and try again."), 400
