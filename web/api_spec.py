"""The OpenAPI 3.1 document of `/api/v1` (`web.api`): every answer conforms to it (the tests check each
one against these schemas with `jsonschema`, and it is served at `/api/v1/openapi.json`)."""
from __future__ import annotations

from typing import Any

from bot.analytics import NON_PUBLIC, PUBLIC
from bot.post_options import REPLY_SETTINGS
from bot.webhooks import EVENTS

#: Where a problem's `type` points: `/api/v1/problems/<kind>`, the kind a refusal has (`bot.refusals`).
PROBLEM_BASE = "/api/v1/problems/"

_TIME = {"type": ["string", "null"], "format": "date-time"}
# A post's options (bot.post_options), under X's names, for its first part; absent when not asked for.
_OPTIONS: dict[str, Any] = {
    "poll": {"type": "object", "required": ["options", "duration_minutes"], "additionalProperties": False,
             "properties": {"options": {"type": "array", "minItems": 2, "maxItems": 4,
                                        "items": {"type": "string", "minLength": 1, "maxLength": 25}},
                            "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 10080}}},
    "reply_settings": {"enum": ["everyone", *REPLY_SETTINGS], "description": "who may reply; absent: everyone"},
    "community_id": {"type": "string", "pattern": "^[0-9]{1,19}$"},
    "made_with_ai": {"type": "boolean"}, "paid_partnership": {"type": "boolean"},
    "quote_tweet_id": {"type": "string", "description": "a post's id or URL; X's Enterprise tier only"},
    "reply_to": {"type": "string", "description": "a post's id or URL: the first part replies to it"},
    "repeat": {"type": "object", "required": ["every_days"], "properties": {
        "every_days": {"type": "integer", "minimum": 1, "maximum": 365},
        "texts": {"type": "array", "items": {"type": "string"},
                  "description": "variants taken in turn with the post's text; or {date} in the text"}},
        "description": "post it again every every_days days, each time a new post"},
    "plug": {"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string"}, "likes": {"type": "integer", "minimum": 1},
        "media": {"type": "array", "items": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string", "description": "from POST /api/v1/media"}, "alt": {"type": "string"}}}},
        "after_hours": {"type": "number", "minimum": 0.1, "maximum": 720}},
        "description": "reply to the post once with text, at likes (as last read) or after_hours"},
    "expire_after": {"type": ["string", "integer"], "description": "delete the post from X this long after it "
                     "went out: a duration such as \"12h\" or \"3d\", or seconds (kept as seconds)"},
}
_STATUS = ["scheduled", "sending", "posted", "failed", "canceled"]

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object", "required": ["type", "title", "status", "detail"],
        "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                       "status": {"type": "integer"}, "detail": {"type": "string"}},
    },
    "PartMedia": {
        "type": "object", "required": ["id", "type", "alt"], "additionalProperties": False,
        "properties": {"id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                       "type": {"enum": ["image", "gif", "video"]}, "alt": {"type": ["string", "null"]}},
    },
    "Part": {
        "type": "object", "required": ["text", "tweet_id", "url", "media"], "additionalProperties": False,
        "properties": {"text": {"type": "string"}, "tweet_id": {"type": ["string", "null"]},
                       "url": {"type": ["string", "null"]},
                       "media": {"type": "array", "items": {"$ref": "#/components/schemas/PartMedia"}}},
    },
    "Post": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "account", "handle", "status", "due_at", "parts", "source", "attempts", "error",
                     "failure_kind", "requeued_as", "created_at", "posted_at", "metrics", "metrics_read_at"],
        "properties": {
            "id": {"type": "integer"}, "account": {"type": "string", "description": "the X user id"},
            "handle": {"type": ["string", "null"]}, "status": {"enum": _STATUS},
            "due_at": {"type": "string", "format": "date-time"},
            "parts": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Part"}},
            "source": {"type": "string"}, "attempts": {"type": "integer", "minimum": 0},
            "error": {"type": ["string", "null"]},
            "failure_kind": {"enum": [None, "duplicate", "refused", "media", "gave_up", "unverifiable"]},
            "requeued_as": {"type": ["integer", "null"]}, "created_at": _TIME, "posted_at": _TIME,
            "metrics": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Metrics"}]},
            "metrics_read_at": _TIME, **_OPTIONS,
        },
    },
    "Metrics": {
        "type": "object", "additionalProperties": False,
        "description": "How the post did when last read from X, under X's names (a thread's parts summed); the "
                       "non-public ones only when X showed them (its author's token, posts under 30 days old)",
        "properties": {name: {"type": "integer", "minimum": 0} for name in (*PUBLIC, *NON_PUBLIC)},
    },
    "PostPage": {
        "type": "object", "required": ["posts", "next_cursor"], "additionalProperties": False,
        "properties": {"posts": {"type": "array", "items": {"$ref": "#/components/schemas/Post"}},
                       "next_cursor": {"type": ["string", "null"]}},
    },
    "NewPart": {
        "type": "object", "required": ["text"],
        "properties": {"text": {"type": "string"}, "media": {"type": "array", "items": {
            "type": "object", "required": ["id"],
            "properties": {"id": {"type": "string", "description": "from POST /api/v1/media"},
                           "alt": {"type": "string"}}}}},
    },
    "NewPost": {
        "type": "object", "required": ["account"],
        "properties": {
            "account": {"type": "string", "description": "@handle or X user id"},
            "text": {"type": "string"},
            "parts": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/NewPart"}},
            "at": {"type": "string", "description": '"now", or ISO 8601 with an offset; absent: the '
                                                    "account's next free slot, else now"},
            **_OPTIONS,
        },
    },
    "PostChange": {
        "type": "object",
        "properties": {
            "account": {"type": "string"}, "text": {"type": "string"},
            "parts": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/NewPart"}},
            "at": {"type": "string", "description": '"now", "next-slot", or ISO 8601 with an offset; absent: '
                                                    "the time stays"},
        },
    },
    "Slots": {
        "type": "object", "required": ["account", "spec", "tz", "next_free"], "additionalProperties": False,
        "properties": {"account": {"type": "string"}, "spec": {"type": ["string", "null"]},
                       "tz": {"type": ["string", "null"]},
                       "next_free": {"type": "array", "items": {"type": "string", "format": "date-time"}}},
    },
    "SlotsChange": {
        "type": "object", "required": ["spec"],
        "properties": {"spec": {"type": "string", "description": 'e.g. "mon-fri 09:00, sat 10:30"'},
                       "tz": {"type": "string"}},
    },
    "Media": {
        "type": "object", "required": ["id", "type", "bytes"], "additionalProperties": False,
        "properties": {"id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                       "type": {"enum": ["image", "gif", "video"]}, "bytes": {"type": "integer"}},
    },
    "Webhook": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "url", "events", "created_at", "paused_at", "pause_reason", "last_status",
                     "last_delivery_at", "managed_by"],
        "properties": {
            "id": {"type": "integer"}, "url": {"type": "string", "description": "without its query"},
            "events": {"type": "array", "items": {"type": "string"}}, "created_at": _TIME, "paused_at": _TIME,
            "pause_reason": {"type": ["string", "null"]}, "last_status": {"type": ["integer", "null"]},
            "last_delivery_at": _TIME,
            "managed_by": {"type": ["string", "null"], "description": "the setting that made it (ALERT_WEBHOOK_URL), "
                                                                      "which alone removes it"},
            "secret": {"type": "string", "description": "whsec_…: only in the answer that made it"}},
    },
    "WebhookList": {
        "type": "object", "required": ["webhooks"], "additionalProperties": False,
        "properties": {"webhooks": {"type": "array", "items": {"$ref": "#/components/schemas/Webhook"}}},
    },
    "NewWebhook": {
        "type": "object", "required": ["url", "events"],
        "properties": {"url": {"type": "string"},
                       "events": {"type": "array", "minItems": 1, "items": {"enum": list(EVENTS)}}},
    },
    "Account": {
        "type": "object", "required": ["id", "handle", "status", "expires_at", "scopes", "refreshed_at",
                                       "refresh_failures", "error", "hold_until", "hold_reason",
                                       "posting_worker"],
        "additionalProperties": False,
        "properties": {"id": {"type": "string"}, "handle": {"type": "string"},
                       "status": {"enum": ["active", "needs_reconnect", "disconnected"]},
                       "expires_at": _TIME, "scopes": {"type": "array", "items": {"type": "string"}},
                       "refreshed_at": _TIME, "refresh_failures": {"type": "integer", "minimum": 0},
                       "error": {"type": ["string", "null"], "description": "the last refresh's error"},
                       "hold_until": {**_TIME, "description": "posts wait until then (a rate limit, a cap)"},
                       "hold_reason": {"type": ["string", "null"]},
                       "posting_worker": {"type": ["string", "null"],
                                          "description": "the worker sending one of its posts right now"}},
    },
    "AccountList": {
        "type": "object", "required": ["accounts", "workers"], "additionalProperties": False,
        "properties": {"accounts": {"type": "array", "items": {"$ref": "#/components/schemas/Account"}},
                       "workers": {"type": "array", "description": "every worker heard from in the last day",
                                   "items": {"type": "object", "required": ["name", "heartbeat_at"],
                                             "additionalProperties": False,
                                             "properties": {"name": {"type": "string"},
                                                            "heartbeat_at": {"type": "string",
                                                                             "format": "date-time"}}}}},
    },
}


def _answer(schema: str, description: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _problems(*statuses: int) -> dict[str, Any]:
    words = {400: "Malformed body", 401: "No live API key", 403: "The key lacks the scope",
             404: "No such post", 409: "The post's status does not allow it", 422: "Refused (see `type`)",
             429: "The key's rate (API_RATE a minute) is spent: see Retry-After"}
    return {str(status): _answer("Problem", words[status], "application/problem+json") for status in statuses}


def _operation(summary: str, scope: str, answers: dict[str, Any], body: str | None = None,
               parameters: list[dict[str, Any]] | None = None, write: bool = False) -> dict[str, Any]:
    """An operation that needs `scope`; a `write` takes an Idempotency-Key."""
    operation: dict[str, Any] = {"summary": summary, "security": [{"key": [scope]}],
                                 "responses": {**answers, **_problems(401, 403, 429)}}
    if body:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
    parameters = list(parameters or [])
    if write:
        parameters.append(_IDEMPOTENCY_KEY)
        operation["responses"].update(_problems(400, 422))
    if parameters:
        operation["parameters"] = parameters
    return operation


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "The same key with the same request within 24 h answers the first answer again and changes "
                   "nothing (header Idempotent-Replayed: true); with another request, 422."}


_POST_ID = {"name": "post_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_UPLOAD = {"type": "object", "required": ["file"],
           "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}}}
_ACCOUNT = {"name": "account", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "@handle or X user id"}
_WEBHOOK_ID = {"name": "webhook_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_ACTION_ANSWERS = {**_problems(404, 409, 422)}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "tweetbot", "version": "1",
             "description": "Queue posts to X and follow them, with an API key (`tweetbot keys create`)."},
    "servers": [{"url": "/"}],
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"key": {"type": "http", "scheme": "bearer", "description": "tb_… (an API key)"}},
    },
    "paths": {
        "/api/v1/posts": {
            "post": _operation("Queue a post or thread", "posts:write", {"201": _answer("Post", "Queued")},
                               body="NewPost", write=True),
            "get": _operation("List queued, finished or failed posts", "posts:read",
                              {"200": _answer("PostPage", "One page"), **_problems(404, 422)}, parameters=[
                                  {"name": "status", "in": "query",
                                   "schema": {"enum": ["queued", "finished", "failed"]}},
                                  {"name": "account", "in": "query", "schema": {"type": "string"}},
                                  {"name": "limit", "in": "query",
                                   "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                                  {"name": "cursor", "in": "query", "schema": {"type": "string"}}]),
        },
        "/api/v1/posts/{post_id}": {
            "get": _operation("A post", "posts:read", {"200": _answer("Post", "The post"), **_problems(404)},
                              parameters=[_POST_ID]),
            "patch": _operation("Change a scheduled post", "posts:write",
                                {"200": _answer("Post", "Changed"), **_ACTION_ANSWERS}, body="PostChange",
                                parameters=[_POST_ID], write=True),
            "delete": _operation("Cancel a post", "posts:write", {"200": _answer("Post", "Canceled"),
                                                                  **_ACTION_ANSWERS},
                                 parameters=[_POST_ID], write=True),
        },
        "/api/v1/posts/{post_id}/post-now": {
            "post": _operation("Make a post due now", "posts:write", {"200": _answer("Post", "Due now"),
                                                                       **_ACTION_ANSWERS},
                               parameters=[_POST_ID], write=True),
        },
        "/api/v1/posts/{post_id}/retry": {
            "post": _operation("Queue a failed post again", "posts:write",
                               {"201": _answer("Post", "The new post"), **_ACTION_ANSWERS},
                               parameters=[_POST_ID], write=True),
        },
        "/api/v1/media": {
            "post": {**_operation("Upload a file to name in a post", "posts:write",
                                  {"201": _answer("Media", "Kept")}, write=True),
                     "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _UPLOAD}}}},
        },
        "/api/v1/accounts": {
            "get": _operation("The connected accounts", "accounts:read",
                              {"200": _answer("AccountList", "Every account")}),
        },
        "/api/v1/webhooks": {
            "get": _operation("The webhook subscriptions", "webhooks:write",
                              {"200": _answer("WebhookList", "Every subscription")}),
            "post": _operation("Subscribe a URL to events (its secret is in this answer only)", "webhooks:write",
                               {"201": _answer("Webhook", "Subscribed")}, body="NewWebhook", write=True),
        },
        "/api/v1/webhooks/{webhook_id}": {
            "delete": _operation("Remove a subscription", "webhooks:write",
                                 {"200": _answer("Webhook", "Removed"), **_problems(404)},
                                 parameters=[_WEBHOOK_ID], write=True),
        },
        "/api/v1/webhooks/{webhook_id}/test": {
            "post": _operation("Send a webhook.test event", "webhooks:write",
                               {"202": _answer("Webhook", "Queued for the worker"), **_problems(404)},
                               parameters=[_WEBHOOK_ID], write=True),
        },
        "/api/v1/accounts/{account}/slots": {
            "get": _operation("An account's slots and next free times", "accounts:read",
                              {"200": _answer("Slots", "Its slots"), **_problems(404)}, parameters=[_ACCOUNT]),
            "put": _operation("Replace an account's slots", "posts:write",
                              {"200": _answer("Slots", "Its slots now"), **_problems(404)}, body="SlotsChange",
                              parameters=[_ACCOUNT], write=True),
            "delete": _operation("Remove an account's slots (its queued posts keep their times)", "posts:write",
                                 {"200": _answer("Slots", "No slots now"), **_problems(404)}, parameters=[_ACCOUNT],
                                 write=True),
        },
    },
}
