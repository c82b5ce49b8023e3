"""`/api/v1`: the bot as a part other programs drive, in JSON, with an API key (`bot.api_keys`).

It calls the queue's one layer (`bot.queue`) as the CLI and the web form do, so it refuses
what they refuse, with the same words; each refusal is an RFC 9457 problem
(`application/problem+json`) whose `type` names the refusal's kind, stable for programs.
A request shows its key as `Authorization: Bearer tb_…`; it carries no session cookie, so
the sign-in gate passes it by and there is no CSRF surface (`web.security` exempts it).

Every write takes an `Idempotency-Key`: the same key with the same request within a day answers
the first answer again and changes nothing; with another request, 422. The answer is kept in
the store in the transaction that made the change, and the key is locked while it is made, so
two requests racing with one key make one post, whichever gunicorn worker or host answers.
The document every answer conforms to is `web.api_spec`, served at `/api/v1/openapi.json`.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, g, jsonify, make_response, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from bot import queue, webhooks
from bot.api_keys import IDEMPOTENCY_WINDOW, ApiKey, authenticate
from bot.media_checks import MediaError, MediaFile, inspect
from bot.models import POSTED, Account, Post, to_iso
from bot.post_options import NAMES as OPTION_NAMES
from bot.refusals import MediaRefused, NoSuchAccount, NoSuchPost, QueueError, WrongStatus
from bot.schedules import clear_slots, free_slots, load_slots, parse_slots, save_slots
from bot.store import KeptAnswer, Reading, RecordMissing, Webhook
from web.api_spec import PROBLEM_BASE, SPEC
from web.db import now, settings, store

log = logging.getLogger("tweetbot.web.api")
bp = Blueprint("api", __name__, url_prefix="/api/v1")

PAGE_LIMIT = 200  # the most posts one GET /posts answers with
NEXT_SLOTS = 5  # the free slot times GET /accounts/{id}/slots shows
RATE_WINDOW = timedelta(minutes=1)  # API_RATE counts a key's requests in each minute of the clock
#: The HTTP status of each refusal: the post or account named in the path is not there (404), the post is
#: not in a state that allows it (409), anything else the request asked is refused (422).
STATUS_OF: dict[type[QueueError], int] = {NoSuchPost: 404, WrongStatus: 409}

View = TypeVar("View", bound=Callable[..., ResponseReturnValue])


# -- answers ---------------------------------------------------------------------------------------

def problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> Response:
    """An RFC 9457 problem: `type` names the refusal (`/api/v1/problems/<kind>`), `detail` says it for a person."""
    answer = jsonify({"type": f"{PROBLEM_BASE}{kind}", "title": title, "status": status, "detail": detail,
                      **extra})
    answer.status_code = status
    answer.mimetype = "application/problem+json"
    return answer


def refused(refusal: QueueError) -> Response:
    """What the queue refused, as a problem with its kind and its words."""
    status = next((code for kind, code in STATUS_OF.items() if isinstance(refusal, kind)), 422)
    return problem(status, refusal.kind, "Refused", str(refusal))


def post_json(post: Post, account: Account | None, reading: Reading | None = None) -> dict[str, Any]:
    """A post as every answer shows it (the `Post` schema of `web.api_spec`), with how it did when it was
    last read from X (`bot.analytics`: X's names, a thread's parts summed; null before a first read)."""
    username = account.username if account else None
    parts = []
    for index, text in enumerate(post.parts):
        tweet_id = post.tweet_ids[index] if post.at_x(index) else None
        parts.append({"text": text, "tweet_id": tweet_id,
                      "url": settings().post_url(tweet_id, username) if tweet_id else None,
                      "media": [{"id": ref.digest, "type": ref.kind, "alt": ref.alt} for ref in post.media_of(index)]})
    return {"id": post.id, "account": post.account_id, "handle": account.handle if account else None,
            "status": post.status, "due_at": to_iso(post.due_at), "parts": parts, "source": post.source,
            "attempts": post.attempts, "error": post.last_error, "failure_kind": post.failure_kind,
            "requeued_as": post.requeued_as, "created_at": to_iso(post.created_at),
            "posted_at": to_iso(post.posted_at), "metrics": reading.metrics if reading else None,
            "metrics_read_at": to_iso(reading.read_at) if reading else None, **_shown_options(post)}


def _shown_options(post: Post) -> dict[str, Any]:
    """A post's options as answers show them: a plug's files as the parts' are (id, type, alt)."""
    if not post.plug_media():
        return post.options
    return {**post.options, "plug": {**post.options["plug"], "media": [
        {"id": ref.digest, "type": ref.kind, "alt": ref.alt} for ref in post.plug_media()]}}


def one_post(post: Post, status: int = 200) -> Response:
    answer = jsonify(post_json(post, store().get_account(post.account_id), store().readings([post.id]).get(post.id)))
    answer.status_code = status
    return answer


def is_api(path: str) -> bool:
    """Whether `path` is the API's (an endpoint of it or not)."""
    return path.startswith(f"{bp.url_prefix}/")


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def http_error(error: HTTPException) -> ResponseReturnValue:
    """Under the API, a path or method it does not have is a problem too; elsewhere, Flask's page."""
    if not is_api(request.path):
        return error
    return problem(error.code or 500, "not-found" if error.code == 404 else "method-not-allowed",
                   error.name, error.description or error.name)


# -- keys and scopes --------------------------------------------------------------------------------

def needs(scope: str) -> Callable[[View], View]:
    """The view answers only a live key with `scope`: 401 without a key it knows, 403 without the scope."""
    def decorate(view: View) -> View:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            key = authenticate(store(), presented) if scheme.lower() == "bearer" else None
            if key is None:
                answer = problem(401, "unauthorized", "Unauthorized", "no live API key: send "
                                 "`Authorization: Bearer tb_…` (tweetbot keys create)")
                answer.headers["WWW-Authenticate"] = 'Bearer realm="tweetbot"'
                return answer
            if not key.allows(scope):
                return problem(403, "forbidden", "Forbidden", f"the key {key.id} has no {scope} scope")
            wait = _retry_after(key.id, settings().api_rate)
            if wait is not None:
                answer = problem(429, "rate-limited", "Too many requests", f"the key {key.id} made "
                                 f"{settings().api_rate} requests this minute (API_RATE)")
                answer.headers["Retry-After"] = str(wait)
                return answer
            g.api_key = key
            return view(*args, **kwargs)
        return cast(View, guarded)
    return decorate


def _retry_after(key_id: str, per_minute: int) -> int | None:
    """None, counting this request, while the key is within `per_minute` this minute (counted in the store:
    every web process counts the same requests); else the seconds until the next minute."""
    moment = now()
    minute = moment.replace(second=0, microsecond=0)
    if store().count_request(key_id, minute) <= per_minute:
        return None
    return max(1, math.ceil((minute + RATE_WINDOW - moment).total_seconds()))


def current_key() -> ApiKey:
    return cast(ApiKey, g.api_key)


def idempotent(view: View) -> View:
    """With an `Idempotency-Key`, the view runs once per key and request: its answer (but a server error)
    is kept with its change, and given again to the same request; another request with the key is a 422."""
    @functools.wraps(view)
    def once(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        given = request.headers.get("Idempotency-Key")
        if given is None:
            return view(*args, **kwargs)
        if not 1 <= len(given) <= 255 or not given.isprintable():
            return problem(400, "bad-idempotency-key", "Malformed", "an Idempotency-Key is 1 to 255 printable "
                           "characters")
        key, moment = f"{current_key().id}:{given}", now()
        fingerprint = hashlib.sha256(b"\n".join([request.method.encode(), request.path.encode(),
                                                 request.get_data()])).hexdigest()
        with store().transaction():
            kept = store().kept_answer(key, moment - IDEMPOTENCY_WINDOW)
            if kept is not None:
                return _replayed(kept, fingerprint)
            answer = make_response(view(*args, **kwargs))
            if answer.status_code < 500:
                store().keep_answer(key, KeptAnswer(fingerprint, answer.status_code, answer.get_json(), moment))
        return answer
    return cast(View, once)


def _replayed(kept: KeptAnswer, fingerprint: str) -> Response:
    """The answer kept under the key, again; or, for another request under the same key, a 422."""
    if kept.fingerprint != fingerprint:
        return problem(422, "idempotency-key-reused", "Refused", "this Idempotency-Key was used for another "
                       "request in the last 24 h: use a new key for a new request")
    answer = jsonify(kept.body)
    answer.status_code = kept.status
    if kept.status >= 400:
        answer.mimetype = "application/problem+json"
    answer.headers["Idempotent-Replayed"] = "true"
    return answer


# -- the document ---------------------------------------------------------------------------------

@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document of this API (public, like any API's reference)."""
    return jsonify(SPEC)


# -- posts --------------------------------------------------------------------------------------

@bp.post("/posts")
@needs("posts:write")
@idempotent
def create_post() -> ResponseReturnValue:
    """Queue a post or a thread: at a time, `now`, or (no `at`) the account's next free slot, else now."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem(400, "malformed", "Malformed", "the body must be a JSON object")
    try:
        account, parts, when, media = _post_request(body)
        post = queue.queue_post(store(), account, parts, when, now(), source="api", media=media,
                                zone=settings().zone, options=_options(body), tier=settings().x_tier)
    except QueueError as refusal:
        return refused(refusal)
    log.info("api: key %s queued post %s", current_key().id, post.id)
    return one_post(post, 201)


def _post_request(body: dict[str, Any]) -> tuple[str, list[str], queue.When, list[list[MediaFile]]]:
    """The account, parts, time and media a POST /posts body asks for, or `QueueError` saying what is wrong."""
    account = body.get("account")
    if not isinstance(account, str) or not account.strip():
        raise NoSuchAccount("give the account: its @handle or its X user id")
    parts, media = _parts(body)
    return account.strip(), parts, _when(body.get("at")), media


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """The post options a body gives (X's names), a plug's media as the files uploaded before."""
    options = {name: body[name] for name in OPTION_NAMES if name in body}
    plug = options.get("plug")
    if isinstance(plug, dict) and isinstance(plug.get("media"), list):
        options["plug"] = {**plug, "media": [_stored_file(item) for item in plug["media"]]}
    return options


def _parts(body: dict[str, Any]) -> tuple[list[str], list[list[MediaFile]]]:
    """`text`, or `parts` (each `{"text", "media": [{"id", "alt"}]}`), with each part's stored media."""
    if ("text" in body) == ("parts" in body):
        raise QueueError("give either `text` or `parts` (one of them)")
    raw = [{"text": body["text"]}] if "text" in body else body["parts"]
    if not isinstance(raw, list) or not raw or not all(isinstance(part, dict) for part in raw):
        raise QueueError("`parts` must be a list of parts, each {\"text\": …}")
    texts = [part.get("text") for part in raw]
    if not all(isinstance(text, str) for text in texts):
        raise QueueError("every part needs a `text`")
    return cast(list[str], texts), [[_stored_file(item) for item in part.get("media") or []] for part in raw]


def _stored_file(item: Any) -> MediaFile:
    """A file uploaded before (POST /media), by its id, with its alt text."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise MediaRefused("each media item is {\"id\": …} (from POST /api/v1/media), with an optional \"alt\"")
    alt = item.get("alt")
    if alt is not None and not isinstance(alt, str):
        raise MediaRefused("an alt text is a string")
    try:
        return MediaFile(item["id"][:12], store().get_media(item["id"]), alt)
    except RecordMissing:
        raise MediaRefused(f"no media {item['id']}: upload it first (POST /api/v1/media)") from None


def _when(at: Any) -> datetime | None:
    """`at`: absent (the account's next free slot, else now), "now", or ISO 8601 with an offset."""
    if at is None:
        return None
    if at == "now":
        return now()
    try:
        moment = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise QueueError('`at` must be "now" or a time in ISO 8601 with its offset (2026-12-01T09:00:00+01:00)')
    return moment


@bp.get("/posts")
@needs("posts:read")
def list_posts() -> ResponseReturnValue:
    """Queued posts (earliest due first) or finished ones (most recent first), `limit` at a time from `cursor`."""
    listing = request.args.get("status", "queued")
    if listing not in queue.LISTINGS:
        return problem(422, "bad-parameter", "Refused", f"status must be one of {', '.join(queue.LISTINGS)}")
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), PAGE_LIMIT)
        start = int(request.args.get("cursor", 0))
    except ValueError:
        return problem(422, "bad-parameter", "Refused", "limit and cursor must be whole numbers")
    try:
        found = queue.listed(store(), listing, request.args.get("account"), start + limit + 1)
    except NoSuchAccount as refusal:
        return _not_found(refusal)
    page = found[start:start + limit]
    accounts = {a.user_id: a for a in store().list_accounts()}
    readings = store().readings(post.id for post in page if post.status == POSTED)
    return jsonify({"posts": [post_json(post, accounts.get(post.account_id), readings.get(post.id)) for post in page],
                    "next_cursor": str(start + limit) if len(found) > start + limit else None})


@bp.get("/posts/<int:post_id>")
@needs("posts:read")
def get_post(post_id: int) -> ResponseReturnValue:
    post = store().get_post(post_id)
    return one_post(post) if post is not None else refused(NoSuchPost(f"no post {post_id}"))


@bp.patch("/posts/<int:post_id>")
@needs("posts:write")
@idempotent
def edit_post(post_id: int) -> ResponseReturnValue:
    """Change a scheduled post as the dashboard's edit does: any of `account`, `text` or `parts`, `at`
    (a time, "now" or "next-slot"); what is not given stays (a part's media stay on it)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem(400, "malformed", "Malformed", "the body must be a JSON object")
    current = store().get_post(post_id)
    if current is None:
        return refused(NoSuchPost(f"no post {post_id}"))
    try:
        parts = _parts(body)[0] if "text" in body or "parts" in body else list(current.parts)
        at = body.get("at")
        when = queue.NEXT_SLOT if at == "next-slot" else _when(at) or current.due_at
        account = body.get("account") or current.account_id
        if not isinstance(account, str):
            raise NoSuchAccount("give the account as its @handle or its X user id")
        post = queue.edit_post(store(), post_id, account, parts, when, now(), zone=settings().zone)
    except QueueError as refusal:
        return refused(refusal)
    log.info("api: key %s edited post %s", current_key().id, post.id)
    return one_post(post)


@bp.delete("/posts/<int:post_id>")
@needs("posts:write")
@idempotent
def cancel_post(post_id: int) -> ResponseReturnValue:
    """Cancel a post that has not started going out."""
    return _acting(lambda: queue.cancel(store(), post_id), "canceled")


@bp.post("/posts/<int:post_id>/post-now")
@needs("posts:write")
@idempotent
def post_now(post_id: int) -> ResponseReturnValue:
    """Make a scheduled post due now: the worker sends it on its next round."""
    return _acting(lambda: queue.post_now(store(), post_id, now()), "made due now")


@bp.post("/posts/<int:post_id>/retry")
@needs("posts:write")
@idempotent
def retry(post_id: int) -> ResponseReturnValue:
    """Queue a failed post again, due now, as a new post (the answer is the new post)."""
    return _acting(lambda: queue.retry(store(), post_id, now(), source="api"), "queued again", 201)


def _acting(act: Callable[[], Post], done: str, status: int = 200) -> ResponseReturnValue:
    try:
        post = act()
    except QueueError as refusal:
        return refused(refusal)
    log.info("api: key %s: post %s %s", current_key().id, post.id, done)
    return one_post(post, status)


# -- accounts -----------------------------------------------------------------------------------

@bp.get("/accounts")
@needs("accounts:read")
def list_accounts() -> ResponseReturnValue:
    """Every connected account: id, handle, status, its token's health, a hold, the worker posting for it;
    and every worker heard from lately (what `tweetbot accounts` shows, locally or through this)."""
    from bot.store.heartbeats import known_workers

    posting = {post.account_id: post.claimed_by for post in store().sending_posts()}
    return jsonify({"accounts": [{"id": a.user_id, "handle": a.handle, "status": a.status,
                                  "expires_at": to_iso(a.expires_at), "scopes": list(a.scopes),
                                  "refreshed_at": to_iso(a.refreshed_at), "refresh_failures": a.refresh_failures,
                                  "error": a.last_error, "hold_until": to_iso(a.hold_until),
                                  "hold_reason": a.hold_reason, "posting_worker": posting.get(a.user_id)}
                                 for a in store().list_accounts()],
                    "workers": [{"name": name, "heartbeat_at": to_iso(beat)}
                                for name, beat in known_workers(store(), now()).items()]})


@bp.get("/accounts/<account>/slots")
@needs("accounts:read")
def get_slots(account: str) -> ResponseReturnValue:
    """The account's weekly slots and its next free slot times."""
    try:
        found = queue.account_named(store(), account)
    except QueueError as refusal:
        return _not_found(refusal)
    return jsonify(_slots_json(found))


@bp.put("/accounts/<account>/slots")
@needs("posts:write")
@idempotent
def put_slots(account: str) -> ResponseReturnValue:
    """Replace the account's slots: `{"spec": "mon-fri 09:00, sat 10:30", "tz": "Europe/Berlin"}`."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("spec"), str):
        return problem(400, "malformed", "Malformed", 'the body must be {"spec": …, "tz": …}')
    try:
        found = queue.account_named(store(), account)
    except QueueError as refusal:
        return _not_found(refusal)
    tz = body.get("tz")
    try:
        save_slots(store(), found.user_id, parse_slots(body["spec"], tz if isinstance(tz, str) and tz else None,
                                                       default_tz=settings().timezone))
    except QueueError as refusal:
        return refused(refusal)
    return jsonify(_slots_json(found))


@bp.delete("/accounts/<account>/slots")
@needs("posts:write")
@idempotent
def delete_slots(account: str) -> ResponseReturnValue:
    """Remove the account's slots; its queued posts keep their times."""
    try:
        found = queue.account_named(store(), account)
    except QueueError as refusal:
        return _not_found(refusal)
    clear_slots(store(), found.user_id)
    return jsonify(_slots_json(found))


def _slots_json(account: Account) -> dict[str, Any]:
    schedule = load_slots(store(), account.user_id)
    upcoming = list(islice(free_slots(store(), account.user_id, now()), NEXT_SLOTS)) if schedule else []
    return {"account": account.user_id, "spec": schedule.spec if schedule else None,
            "tz": schedule.zone if schedule else None, "next_free": [to_iso(moment) for moment in upcoming]}


def _not_found(refusal: QueueError) -> Response:
    """The account named in the path is not there: 404, with the queue's words."""
    return problem(404, refusal.kind, "Not found", str(refusal))


# -- media --------------------------------------------------------------------------------------

@bp.post("/media")
@needs("posts:write")
@idempotent
def upload_media() -> ResponseReturnValue:
    """A file to name in a post (multipart, field `file`), checked as the CLI checks a file: its id."""
    sent = request.files.get("file")
    if sent is None:
        return problem(400, "malformed", "Malformed", "send the file as multipart/form-data, field `file`")
    try:
        ref = inspect(MediaFile(sent.filename or "upload", sent.read()))
    except MediaError as exc:
        return refused(MediaRefused(str(exc)))
    assert ref.data is not None
    store().put_media(ref.data)
    return jsonify({"id": ref.digest, "type": ref.kind, "bytes": ref.size}), 201


# -- webhooks -----------------------------------------------------------------------------------

def webhook_json(hook: Webhook, secret: str | None = None) -> dict[str, Any]:
    """A subscription as the API shows it: never its secret, but once, in the answer that made it."""
    shown: dict[str, Any] = {"id": hook.id, "url": webhooks.where(hook.url), "events": list(hook.events),
                             "created_at": to_iso(hook.created_at), "paused_at": to_iso(hook.paused_at),
                             "pause_reason": hook.pause_reason, "last_status": hook.last_status,
                             "last_delivery_at": to_iso(hook.last_delivery_at), "managed_by": hook.managed_by}
    return {**shown, "secret": secret} if secret is not None else shown


@bp.get("/webhooks")
@needs("webhooks:write")
def list_webhooks() -> ResponseReturnValue:
    return jsonify({"webhooks": [webhook_json(hook) for hook in store().list_webhooks()]})


@bp.post("/webhooks")
@needs("webhooks:write")
@idempotent
def add_webhook() -> ResponseReturnValue:
    """Subscribe a URL to events: `{"url", "events": […]}`; the answer shows its signing secret, this once."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not isinstance(body.get("events"), list):
        return problem(400, "malformed", "Malformed", 'the body must be {"url": …, "events": […]}')
    try:
        hook = webhooks.subscribe(store(), body["url"], [str(event) for event in body["events"]], now())
    except webhooks.WebhookRefused as exc:
        return problem(422, "webhook", "Refused", str(exc))
    log.info("api: key %s subscribed webhook %s", current_key().id, hook.id)
    return jsonify(webhook_json(hook, hook.secret)), 201


@bp.delete("/webhooks/<int:webhook_id>")
@needs("webhooks:write")
@idempotent
def remove_webhook(webhook_id: int) -> ResponseReturnValue:
    """Stop sending to the subscription, and forget its deliveries."""
    try:
        hook = webhooks.unsubscribe(store(), webhook_id)
    except RecordMissing:
        return no_such_webhook(webhook_id)
    except webhooks.WebhookRefused as exc:
        return problem(422, "webhook", "Refused", str(exc))
    return jsonify(webhook_json(hook))


@bp.post("/webhooks/<int:webhook_id>/test")
@needs("webhooks:write")
@idempotent
def test_webhook(webhook_id: int) -> ResponseReturnValue:
    """Queue a `webhook.test` event for the subscription (the worker sends it)."""
    hook = store().get_webhook(webhook_id)
    if hook is None:
        return no_such_webhook(webhook_id)
    webhooks.send_test(store(), webhook_id)
    return jsonify(webhook_json(hook)), 202


def no_such_webhook(webhook_id: int) -> Response:
    return problem(404, "no-such-webhook", "Not found", f"no webhook {webhook_id}")
