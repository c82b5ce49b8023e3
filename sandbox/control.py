"""Test and demo hooks under `/_sandbox/` (JSON in, JSON out; not part of X).

Every endpoint and shape is listed in this module's views; `tests/sandbox_helpers.py`'s
`SandboxControl` wraps them. Bad input answers 400 `{"error": "<what is wrong>"}`.
There is no authentication: the sandbox listens on 127.0.0.1 by default. So that a page
on another site cannot drive them through the visitor's browser (`POST /_sandbox/reset`
from a hidden form would wipe every token), a hook that changes anything refuses
(`refuse_other_sites`):
- an `Origin` (or, without one, a `Referer`) that is not the sandbox itself: 403;
- a body that is not JSON (a form, text/plain, multipart: what a page elsewhere can send
  without asking): 415. A hook with nothing to say may send no body and no Content-Type.
A client outside a browser (the tests, curl, the bench) sends no Origin and JSON, as before.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.consent import DEFAULT_GRANT_SCOPES
from sandbox.errors import SandboxError
from sandbox.state import current_world

bp = Blueprint("control", __name__, url_prefix="/_sandbox")


class ControlError(SandboxError):
    """A malformed control request."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(status, {"error": message})


READING = frozenset({"GET", "HEAD", "OPTIONS"})


@bp.before_request
def refuse_other_sites() -> ResponseReturnValue | None:
    """Refuse a state-changing hook called from another site or with a body a form could send."""
    if request.method in READING:
        return None
    origin = request.headers.get("Origin")
    if origin is None and request.referrer:
        referrer = urlsplit(request.referrer)
        origin = f"{referrer.scheme}://{referrer.netloc}"
    if origin is not None and origin.rstrip("/") != request.host_url.rstrip("/"):
        return jsonify({"error": f"the control hooks answer the sandbox itself, not {origin}"}), 403
    if (request.mimetype != "application/json"
            and (request.content_type or request.content_length or request.data)):
        return jsonify({"error": "send JSON (Content-Type: application/json)"}), 415
    return None


def body() -> dict[str, Any]:
    """The JSON object sent (empty when none); 400 when it is not an object."""
    data = request.get_json(silent=True) if request.data else {}
    if not isinstance(data, dict):
        raise ControlError("send a JSON object")
    return data


def _checked(call: Any, *args: Any) -> Any:
    """Run a world operation, turning its ValueError into a 400."""
    try:
        return call(*args)
    except (ValueError, KeyError, TypeError) as exc:
        raise ControlError(str(exc)) from None


@bp.get("/state")
def state() -> ResponseReturnValue:
    """Everything: users, clients, posts, token_events, reuse_count, chains, media, faults, config…

    `?only=posts,token_events` limits the answer to those sections (plus `now`).
    """
    only = request.args.get("only")
    sections = {s.strip() for s in only.split(",") if s.strip()} if only else None
    return jsonify(current_world().snapshot(sections))


@bp.post("/reset")
def reset() -> ResponseReturnValue:
    """Back to the start (users, the settings' client, default config, clock, no faults)."""
    current_world().reset()
    return jsonify({"reset": True})


@bp.get("/clock")
def clock() -> ResponseReturnValue:
    """The sandbox time: `{"now", "offset"}`."""
    world = current_world()
    return jsonify({"now": world.now(), "offset": world.clock_offset})


@bp.post("/clock")
def move_clock() -> ResponseReturnValue:
    """`{"advance": seconds}`: move the sandbox clock forward."""
    world = current_world()
    seconds = body().get("advance")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise ControlError("advance must be a number of seconds")
    now = _checked(world.advance, float(seconds))
    return jsonify({"now": now, "offset": world.clock_offset})


@bp.get("/charges")
def charges() -> ResponseReturnValue:
    """What reads have cost so far: `{"total_usd", "by_endpoint", "posts_billed"}` (sandbox/charges.py)."""
    return jsonify(current_world().charges.as_json())


@bp.get("/config")
def config() -> ResponseReturnValue:
    """The current switches (see `Options`)."""
    return jsonify(current_world().options_json())


@bp.post("/config")
def update_config() -> ResponseReturnValue:
    """Change switches, e.g. `{"access_token_lifetime": 5, "tier": "free", "reuse_revokes_chain": false}`."""
    return jsonify(_checked(current_world().update_options, body()))


@bp.get("/limits")
def limits() -> ResponseReturnValue:
    """The effective windows per endpoint and the live counters."""
    return jsonify(current_world().traffic.limits_json())


@bp.get("/faults")
def faults() -> ResponseReturnValue:
    """The active faults: `{"faults": [...]}`."""
    return jsonify({"faults": current_world().traffic.fault_rows()})


@bp.post("/faults")
def add_fault() -> ResponseReturnValue:
    """`{"endpoint", "mode", "status", "probability", "latency", "times", "after"}` → the fault (201)."""
    fault = _checked(current_world().add_fault, body())
    return jsonify(fault.as_json()), 201


@bp.delete("/faults")
def clear_faults() -> ResponseReturnValue:
    """Remove every fault: `{"removed": n}`."""
    removed = current_world().traffic.clear_faults()
    return jsonify({"removed": removed})


@bp.delete("/faults/<fault_id>")
def remove_fault(fault_id: str) -> ResponseReturnValue:
    """Remove one fault by id: `{"removed": 1}` or 404."""
    removed = current_world().traffic.remove_fault(fault_id)
    if not removed:
        raise ControlError(f"no fault {fault_id}", 404)
    return jsonify({"removed": removed})


@bp.get("/users")
def users() -> ResponseReturnValue:
    """Every sandbox user: `{"users": [{"id", "username", "name", "created_at"}]}`."""
    return jsonify({"users": [u.as_json() for u in current_world().people.all()]})


@bp.post("/users")
def create_users() -> ResponseReturnValue:
    """`{"username", "name"?}` for one, or `{"count": N, "prefix": "bulk"?}` for many → `{"users": [...]}`."""
    world = current_world()
    data = body()
    if "count" in data:
        count, prefix = data["count"], data.get("prefix", "user")
        if not isinstance(count, int) or not 1 <= count <= 10000:
            raise ControlError("count must be 1 to 10000")
        made = _checked(world.people.add_many, count, str(prefix))
    else:
        made = [_checked(world.add_user, data.get("username", ""), data.get("name"))]
    return jsonify({"users": [u.as_json() for u in made]}), 201


@bp.post("/clients")
def register_client() -> ResponseReturnValue:
    """`{"client_id", "client_secret"?: str|null, "redirect_uris": [...]}`: create, or add URIs.

    Leaving `client_secret` out keeps an existing client's; `null` makes a public client.
    """
    data = body()
    secret = data["client_secret"] if "client_secret" in data else ...
    uris = data.get("redirect_uris", [])
    if not isinstance(uris, list):
        raise ControlError("redirect_uris must be a list")
    client = _checked(current_world().register_client, data.get("client_id", ""), secret, uris)
    return jsonify(client.as_json()), 201


@bp.post("/grant")
def grant() -> ResponseReturnValue:
    """`{"user": id|username, "client_id"?, "scopes"?: list|str}` → X's token answer plus `user`.

    Skips the browser; the chain is recorded with an `issued` event (`via: "grant"`).
    """
    world = current_world()
    data = body()
    user = world.find_user(str(data.get("user", "")))
    if user is None:
        raise ControlError(f"unknown user {data.get('user')!r}")
    client_id = data.get("client_id") or world.config.clients[0].client_id
    scopes = data.get("scopes", DEFAULT_GRANT_SCOPES)
    if isinstance(scopes, str):
        scopes = scopes.split()
    answer = _checked(world.direct_grant, client_id, user.id, tuple(scopes))
    return jsonify({**answer, "user": user.as_json(), "client_id": client_id})


@bp.post("/revoke_user")
def revoke_user() -> ResponseReturnValue:
    """`{"user": id|username, "client_id"?}`: the user disconnects the app at X (every chain revoked)."""
    world = current_world()
    data = body()
    user = world.find_user(str(data.get("user", "")))
    if user is None:
        raise ControlError(f"unknown user {data.get('user')!r}")
    return jsonify({"revoked_chains": world.revoke_user(user.id, data.get("client_id"))})


@bp.get("/posts")
def posts() -> ResponseReturnValue:
    """`?username=` (optional), `?include_deleted=1`: posts oldest first, as in `state`.

    Each row has `media`: `[{"id", "media_key", "type": "photo"|"animated_gif"|"video", "alt_text"}]`.
    """
    world = current_world()
    wanted = request.args.get("username")
    user = world.find_user(wanted) if wanted else None
    if wanted and user is None:
        raise ControlError(f"unknown user {wanted!r}", 404)
    rows = world.timeline.rows(user.id if user else None, bool(request.args.get("include_deleted")))
    return jsonify({"posts": rows})


@bp.post("/media/<media_id>/expire")
def expire_media(media_id: str) -> ResponseReturnValue:
    """Make a media id expire now, so a post naming it is refused: `{"id", "media_key", "expires_after_secs": 0}`."""
    media = current_world().uploads.expire(media_id)
    if media is None:
        raise ControlError(f"no media {media_id}", 404)
    return jsonify({"id": media.id, "media_key": media.media_key, "expires_after_secs": 0})


@bp.get("/media/<media_key>")
def media_file(media_key: str) -> ResponseReturnValue:
    """An image's bytes by media key (what the timeline page shows); 404 for GIFs, videos and unknown keys."""
    media = current_world().media_by_key(media_key)
    if media is None or media.data is None or not media.image:
        raise ControlError(f"no image {media_key}", 404)
    answer = Response(media.data, content_type=media.image["image_type"])
    answer.headers["X-Content-Type-Options"] = "nosniff"
    answer.headers["Cache-Control"] = "private, max-age=3600"
    return answer
