"""What every request and response of the web app gets: proxy trust, CSRF, cookies, headers.

- `ProxyFix` trusts one proxy's `X-Forwarded-For/-Proto/-Host` (every PaaS terminates
  TLS in front of the app), so `request.is_secure`, the client address and the URLs we
  build are the public ones.
- Flask-WTF's `CSRFProtect` checks a token on every POST; a refused form gets a page
  that says why, not a bare 400.
- The session cookie is HttpOnly and SameSite=Lax always, Secure whenever the request
  came over https (decided per request, so one configuration serves both `make run`
  on http://127.0.0.1 and a PaaS on https).
- Headers: a CSP without inline script (the page's JS is static files), no framing,
  a same-origin referrer (Flask-WTF checks the Referer on https), no caching of
  signed-in pages (the one exception: a stored image's bytes, which never change for
  their digest, say `private` themselves; see `web.media`). `img-src` allows `blob:`
  so the compose form can preview a chosen image before it is uploaded.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, Response, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.settings import Settings

SESSION_LIFETIME = timedelta(hours=12)
SELF_CACHED = frozenset({"media.media"})  # endpoints whose answers set their own (private) Cache-Control


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with `Secure` set whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


def init_app(app: Flask, settings: Settings) -> None:
    """Wire the proxy trust, CSRF, cookie settings and security headers into `app`."""
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="tweetbot_session",  # cookies ignore ports: the sandbox shares 127.0.0.1
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session, not an hour
    )
    CSRFProtect(app)
    app.register_error_handler(CSRFError, _csrf_refused)
    policy = content_security_policy(settings.authorize_url)
    app.after_request(lambda response: _add_headers(response, policy))


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


def _add_headers(response: Response, policy: str) -> Response:
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint != "static" and not (request.endpoint in SELF_CACHED and response.status_code == 200):
        response.headers["Cache-Control"] = "no-store"
    return response


def _csrf_refused(error: CSRFError) -> tuple[str, int]:
    return render_template("message.html", title="This form cannot be accepted",
                           message=f"{error.description} Reload the page and try again."), 400
