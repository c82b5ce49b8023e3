"""The gates a request passes before its page, in one ordered list (`GATES`) that `create_app` registers.

A gate runs before every request: it answers the request itself or lets it through (None).
Which paths each one covers is its own module's business; the order is this module's, and
where two gates would answer the same request differently, the earlier one answers:

1. `web.metrics.bearer_gate`: `/metrics` with an Authorization header is judged by that token
   alone. First, so a scraper is never sent to the sign-in page, and a wrong token is a 401
   even while the store cannot be used (refusing it reads no store; a right token's answer
   does, and then meets the same 503 as any page).
2. `web.health.refuse_while_unusable`: a store that cannot be used answers every page but
   `/healthz` with 503 and the reason. Before sign-in, which needs the store (the session
   generation, the lockout table): signed in or not, a browser gets the reason, not a
   sign-in page that cannot work.
3. `web.auth.require_sign_in`: a browser that is not signed in goes to the sign-in page (the
   public pages aside), before anything reads what it sent.
4. `limit_text_bodies` (here): a body without files may be at most `MAX_TEXT_BODY`. It answers
   nothing itself: it sets the limit, which bites when the form is read. The first reader is
   the CSRF check, which `web.security` registers after the gates, so a huge form is a 413,
   never parsed whole only to be refused for its token.

The whole body may be at most `MAX_BODY` (Flask's MAX_CONTENT_LENGTH: one video at X's limit and
the rest of the form); a body over either limit gets a page that says so (`too_large`, 413),
never a traceback.
"""
from __future__ import annotations

from flask import render_template, request
from flask.typing import BeforeRequestCallable, ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from bot.media_checks import LIMITS, MB
from web.auth import require_sign_in
from web.health import refuse_while_unusable
from web.metrics import bearer_gate

#: The largest request body accepted: one video at X's limit, with room for the rest of the form.
MAX_BODY = LIMITS["video"] + 8 * MB
#: The largest body without files: a thread of 25 parts of 280 characters is some 30 kB.
MAX_TEXT_BODY = 1 * MB


def limit_text_bodies() -> None:
    """Before a request is read: a body that carries no files may be at most `MAX_TEXT_BODY`."""
    if request.mimetype != "multipart/form-data":
        request.max_content_length = min(MAX_TEXT_BODY, request.max_content_length or MAX_TEXT_BODY)


def too_large(error: RequestEntityTooLarge) -> ResponseReturnValue:
    """A body over the limit: a page that says so (nothing was queued), not a bare 413."""
    if request.mimetype != "multipart/form-data":
        return render_template("message.html", title="Too much to send at once",
                               message=f"The form sent more than {MAX_TEXT_BODY // MB} MB of text, so nothing "
                                       "was queued: a post is at most 280 weighted characters a part."), 413
    return render_template(
        "message.html", title="Too much to upload at once",
        message=f"The form sent more than {MAX_BODY // MB:,} MB, so nothing was queued. X takes an image up to "
                f"{LIMITS['image'] // MB} MB, a GIF up to {LIMITS['gif'] // MB} MB and a video up to "
                f"{LIMITS['video'] // MB} MB; choose fewer or smaller files and queue again."), 413


#: In the order they run (the module's docstring says why).
GATES: tuple[BeforeRequestCallable, ...] = (bearer_gate, refuse_while_unusable, require_sign_in, limit_text_bodies)
