"""X's error bodies, exactly as `x-api-facts.md` records them.

Three families, because X answers in three shapes:
- the OAuth 2.0 token and revoke endpoints: `{"error", "error_description"}` (RFC 6749);
- the v2 resource endpoints: `application/problem+json` (RFC 7807), mostly the generic
  `about:blank` problem; parameter errors use X's `invalid-request` problem with an
  `errors` list (what tweepy reads its message from);
- the authorize page's "callback not approved": the v1-style `{"errors": [{"code", "message"}]}`.

Views raise `SandboxError` subclasses; one error handler in the app turns them into
responses, so every refusal goes through the same, checked, shapes.
"""
from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from flask import Response

PROBLEM_JSON = "application/problem+json"
INVALID_REQUEST_TYPE = "https://api.twitter.com/2/problems/invalid-request"
NOT_FOUND_TYPE = "https://api.twitter.com/2/problems/resource-not-found"
USAGE_CAPPED_TYPE = "https://api.twitter.com/2/problems/usage-capped"
CREDITS_TYPE = "https://api.twitter.com/2/problems/credits"

DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
TOO_LONG_MESSAGE = ("Your Tweet text is too long. For more information on how Twitter determines "
                    "text length see https://github.com/twitter/twitter-text.")
NOT_PERMITTED_DETAIL = "You are not permitted to perform this action."
REPLY_NOT_ALLOWED_DETAIL = ("Reply to this conversation is not allowed because you have not been "
                            "mentioned or otherwise engaged by the author of the post you are replying to.")
CALLBACK_NOT_APPROVED = "Callback URL not approved for this client application."
INVALID_TOKEN = "Value passed for the token was invalid."
INVALID_CODE = "Value passed for the authorization code was invalid."
VERIFIER_MISMATCH = "Value passed for the code verifier did not match the code challenge."
MISSING_AUTH_HEADER = "Missing valid authorization header"
MEDIA_INVALID_MESSAGE = "Your media IDs are invalid."  # tweepy #2016, node-twitter-api-v2 #375, #501
JSON_TYPE_NAMES: dict[type, str] = {str: "string", bool: "boolean", dict: "object", list: "array", int: "integer"}


class SandboxError(Exception):
    """A refusal with X's status, headers and body."""

    status: int = 400
    content_type: str = "application/json"

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """The HTTP answer X would give."""
        answer = Response(json.dumps(self.body, separators=(",", ":")), status=self.status,
                          content_type=self.content_type)
        for name, value in self.headers.items():
            answer.headers[name] = value
        return answer


class OAuthError(SandboxError):
    """Token/revoke endpoint refusal: `{"error": …, "error_description": …}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(status, {"error": error, "error_description": description})
        self.error = error


class Problem(SandboxError):
    """A v2 resource endpoint refusal as `application/problem+json`."""

    content_type = PROBLEM_JSON


class LegacyError(SandboxError):
    """The v1-style `{"errors": [{"code", "message"}]}` body (authorize: callback not approved)."""


def oauth_missing(parameter: str) -> OAuthError:
    """X's answer when a required token-endpoint parameter is absent."""
    return OAuthError(400, "invalid_request", f"Missing required parameter [{parameter}].")


def unauthorized_client() -> OAuthError:
    """A confidential client without (valid) Basic auth, or an unknown client."""
    return OAuthError(401, "unauthorized_client", MISSING_AUTH_HEADER)


def generic_problem(status: int, detail: str | None = None) -> Problem:
    """The generic `about:blank` problem X uses for 401/403/429/5xx, title = the HTTP reason."""
    title = _reason(status)
    return Problem(status, {"title": title, "type": "about:blank", "status": status,
                            "detail": detail if detail is not None else title})


def unauthorized() -> Problem:
    """Expired, revoked, unknown or missing bearer token."""
    return Problem(401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})


def forbidden(detail: str = "Forbidden") -> Problem:
    """Missing scope (detail "Forbidden"), duplicate content and other policy refusals."""
    return Problem(403, {"detail": detail, "type": "about:blank", "title": "Forbidden", "status": 403})


def too_many_requests(headers: dict[str, str] | None = None) -> Problem:
    """Over a rate-limit window."""
    return Problem(429, {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                         "status": 429}, headers)


def usage_capped() -> Problem:
    """The monthly product cap (x-api-facts §3, xdk #25)."""
    return Problem(429, {"title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly product cap",
                         "period": "Monthly", "scope": "Product", "type": USAGE_CAPPED_TYPE})


def credits_depleted(client_id: str) -> Problem:
    """Pay-per-use account out of credits. The body is unconfirmed; the title is what X reports."""
    return Problem(402, {"title": "CreditsDepleted", "type": CREDITS_TYPE, "status": 402,
                         "detail": f"Your enrolled account [{client_id}] does not have any credits "
                                   "to fulfill this request."})


def invalid_request(message: str, parameters: dict[str, list[str]] | None = None,
                    status: int = 400) -> Problem:
    """X's parameter error: the `invalid-request` problem with one `errors` entry."""
    return Problem(status, {"errors": [{"parameters": parameters or {}, "message": message}],
                            "title": "Invalid Request",
                            "detail": "One or more parameters to your request was invalid.",
                            "type": INVALID_REQUEST_TYPE})


def not_found(resource_type: str, resource_id: str, parameter: str = "id") -> Problem:
    """An unknown post or media id where X answers 404 (deleting, media uploads); lookups
    answer 200 with `not_found_entry`s instead."""
    return Problem(404, {"title": "Not Found Error", "type": NOT_FOUND_TYPE, "status": 404,
                         "detail": f"Could not find {resource_type} with {parameter}: [{resource_id}].",
                         "resource_type": resource_type, "resource_id": resource_id,
                         "parameter": parameter, "value": resource_id})


def not_found_entry(resource_type: str, value: str, parameter: str = "id") -> dict[str, Any]:
    """One `errors` entry for a post or user a lookup names that does not exist (or was deleted).

    X answers such lookups 200 with these entries beside the `data` it found
    (x-api-facts §3): the shape tweepy returns as `Response.errors`.
    """
    return {"value": value, "detail": f"Could not find {resource_type} with {parameter}: [{value}].",
            "title": "Not Found Error", "resource_type": resource_type, "parameter": parameter,
            "resource_id": value, "type": NOT_FOUND_TYPE}


def lookup_not_found(errors: list[dict[str, Any]]) -> Problem:
    """The 404 form a few logs show for a lookup that found nothing: the 200 body plus the
    first entry's title, detail and type at the top (the `lookup_not_found_status` option)."""
    first = errors[0]
    return Problem(404, {"errors": errors, "title": first["title"], "detail": first["detail"],
                         "type": first["type"]})


def callback_not_approved() -> LegacyError:
    """`redirect_uri` is not one of the client's registered callbacks."""
    return LegacyError(400, {"errors": [{"code": 415, "message": CALLBACK_NOT_APPROVED}]})


def json_type(value: Any) -> str:
    """A value's JSON type name, as X's schema validator's messages say it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "integer" if isinstance(value, int) else "number"
    return JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _reason(status: int) -> str:
    """The HTTP reason phrase of a status ("Service Unavailable")."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
