"""Helpers for tests that talk to the sandbox: its control API, the consent form, X's spec.

Import them in any test module (`from sandbox_helpers import …`); the fixtures that
start the sandbox are in conftest.py.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

TWEEPY_AUTHORIZE_URL = "https://twitter.com/i/oauth2/authorize"
DEFAULT_SCOPES = ["tweet.read", "tweet.write", "users.read", "offline.access"]


# --- the control API -----------------------------------------------------------------


class ControlError(AssertionError):
    """A control call the sandbox refused (the test set something up wrong)."""


class SandboxControl:
    """A small client for `/_sandbox/…` (see sandbox/control.py for every shape)."""

    def __init__(self, url: str, server: Any = None) -> None:
        self.url = url.rstrip("/")
        self.server = server  # conftest's SandboxServer, when started by the fixture
        self.http = requests.Session()

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None,
              params: dict[str, str] | None = None) -> Any:
        """One control request; a refusal raises ControlError with the body."""
        answer = self.http.request(method, f"{self.url}/_sandbox/{path}", json=payload, params=params, timeout=10)
        if answer.status_code >= 400:
            raise ControlError(f"{method} /_sandbox/{path} → {answer.status_code}: {answer.text}")
        return answer.json()

    def reset(self) -> None:
        """Back to the start (users, clients, config, clock, faults)."""
        self._call("POST", "reset")

    def state(self, *only: str) -> dict[str, Any]:
        """The whole state, or just the named sections (`posts`, `token_events`, …)."""
        return self._call("GET", "state", params={"only": ",".join(only)} if only else None)

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change switches, e.g. `configure(access_token_lifetime=5, tier="free")`."""
        return self._call("POST", "config", options)

    def advance(self, seconds: float) -> float:
        """Move the sandbox clock forward; the new sandbox time."""
        return self._call("POST", "clock", {"advance": seconds})["now"]

    def now(self) -> float:
        """The sandbox time."""
        return self._call("GET", "clock")["now"]

    def fault(self, endpoint: str, mode: str, **spec: Any) -> dict[str, Any]:
        """Inject a fault: mode is status, drop, store_then_status, store_then_drop or latency."""
        return self._call("POST", "faults", {"endpoint": endpoint, "mode": mode, **spec})

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._call("DELETE", "faults")

    def limit(self, endpoint: str, *windows: dict[str, Any]) -> None:
        """Override one endpoint's windows, e.g. `limit("GET /2/users/me", {"scope": "user", "window": 60, "limit": 3})`."""
        overrides = dict(self._call("GET", "config")["limit_overrides"])
        overrides[endpoint] = list(windows)
        self.configure(limit_overrides=overrides)

    def limits(self) -> dict[str, Any]:
        """The effective windows and live counters."""
        return self._call("GET", "limits")

    def create_user(self, username: str, name: str | None = None) -> dict[str, Any]:
        """One new sandbox user."""
        return self._call("POST", "users", {"username": username, "name": name})["users"][0]

    def create_users(self, count: int, prefix: str = "user") -> list[dict[str, Any]]:
        """Many users named `<prefix>_<n>`."""
        return self._call("POST", "users", {"count": count, "prefix": prefix})["users"]

    def user(self, username: str) -> dict[str, Any]:
        """A sandbox user by username."""
        for user in self._call("GET", "users")["users"]:
            if user["username"] == username:
                return user
        raise ControlError(f"no sandbox user {username}")

    def register_client(self, client_id: str, redirect_uris: list[str], client_secret: Any = ...) -> dict[str, Any]:
        """Create a client (`client_secret=None` → public) or add callback URIs to one."""
        payload: dict[str, Any] = {"client_id": client_id, "redirect_uris": redirect_uris}
        if client_secret is not ...:
            payload["client_secret"] = client_secret
        return self._call("POST", "clients", payload)

    def grant(self, user: str, client_id: str | None = None, scopes: list[str] | None = None) -> dict[str, Any]:
        """A token pair for `user` (id or username) without the browser: X's token answer + `user`."""
        payload: dict[str, Any] = {"user": user}
        if client_id:
            payload["client_id"] = client_id
        if scopes is not None:
            payload["scopes"] = scopes
        return self._call("POST", "grant", payload)

    def revoke_user(self, user: str, client_id: str | None = None) -> int:
        """Revoke every chain of a user; how many there were."""
        return self._call("POST", "revoke_user", {"user": user, "client_id": client_id})["revoked_chains"]

    def posts(self, username: str | None = None, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Stored posts, oldest first (`text` as sent, `x_text` as X returns it)."""
        params = {"username": username} if username else {}
        if include_deleted:
            params["include_deleted"] = "1"
        return self._call("GET", "posts", params=params)["posts"]

    def expire_media(self, media_id: str) -> dict[str, Any]:
        """Make an uploaded media id expire now (a post naming it is then refused)."""
        return self._call("POST", f"media/{media_id}/expire")

    def token_events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Token events, optionally of one kind (issued, refreshed, reuse_refused, revoked, refresh_refused)."""
        events = self.state("token_events")["token_events"]
        return [e for e in events if kind in (None, e["kind"])]

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """The recent requests to X endpoints (of `endpoint` if given), oldest first, with their queries."""
        return [r for r in self.state("requests")["requests"] if endpoint in (None, r["endpoint"])]

    def charges(self) -> dict[str, Any]:
        """What reads have cost: `{"total_usd", "by_endpoint", "posts_billed"}`."""
        return self._call("GET", "charges")

    def reuse_count(self) -> int:
        """How often a spent refresh token was presented."""
        return self.state("reuse_count")["reuse_count"]


# --- the consent page ----------------------------------------------------------------


class _FormParser(HTMLParser):
    """The consent page's form: action, hidden fields, user options, decision buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.users: dict[str, str] = {}  # username → user id
        self.decisions: list[str] = []
        self._option: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Collect the form, its hidden fields, the user options and the buttons."""
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = attr.get("action", "")
        elif tag == "input" and attr.get("type") == "hidden":
            self.fields[attr["name"]] = attr.get("value", "")
        elif tag == "option":
            self.users[attr.get("data-username", "")] = attr.get("value", "")
        elif tag == "button" and attr.get("name") == "decision":
            self.decisions.append(attr.get("value", ""))


@dataclass
class ConsentPage:
    """A parsed consent page."""

    url: str
    action: str
    fields: dict[str, str]
    users: dict[str, str]
    decisions: list[str]


def read_consent_page(authorize_url: str, session: requests.Session | None = None) -> ConsentPage:
    """GET the sandbox's authorize URL and parse its form (asserts it is a consent page)."""
    http = session or requests.Session()
    page = http.get(authorize_url, allow_redirects=False, timeout=10)
    assert page.status_code == 200, f"{page.status_code}: {page.text[:300]}"
    parser = _FormParser()
    parser.feed(page.text)
    return ConsentPage(page.url, urljoin(authorize_url, parser.action), parser.fields, parser.users,
                       parser.decisions)


def drive_consent(authorize_url: str, username: str = "sandbox_alice", decision: str = "authorize",
                  session: requests.Session | None = None) -> str:
    """Do what a person does on the consent page; the callback URL the sandbox redirects to."""
    http = session or requests.Session()
    form = read_consent_page(authorize_url, http)
    assert decision in form.decisions, form.decisions
    fields = {**form.fields, "user_id": form.users[username], "decision": decision}
    answer = http.post(form.action, data=fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, f"{answer.status_code}: {answer.text[:300]}"
    return answer.headers["Location"]


def to_sandbox(authorize_url: str, sandbox_url: str) -> str:
    """tweepy's fixed `https://twitter.com/i/oauth2/authorize…` sent to the sandbox instead (as the bot does)."""
    assert authorize_url.startswith(TWEEPY_AUTHORIZE_URL), authorize_url
    return sandbox_url.rstrip("/") + "/i/oauth2/authorize" + authorize_url[len(TWEEPY_AUTHORIZE_URL):]


def query_of(url: str) -> dict[str, str]:
    """A URL's query as a flat dict."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# --- X's OpenAPI spec ----------------------------------------------------------------


class XSpec:
    """Validates bodies against X's OpenAPI: success against 2.167, errors against 2.159's Problem/Error."""

    CURRENT = "urn:x-openapi:2.167"
    OLDER = "urn:x-openapi:2.159"

    def __init__(self, reference: Path) -> None:
        self.current = json.loads((reference / "x-openapi" / "openapi.json").read_text())
        older = json.loads((reference / "x-openapi" / "openapi-2.159.json").read_text())
        self.registry = Registry().with_resources([
            (self.CURRENT, Resource.from_contents(self.current, default_specification=DRAFT202012)),
            (self.OLDER, Resource.from_contents(older, default_specification=DRAFT202012)),
        ])

    def _validator(self, ref: str) -> Draft202012Validator:
        """A validator for one `$ref` into the registry of both specs."""
        return Draft202012Validator({"$ref": ref}, registry=self.registry)

    def success_schema_ref(self, method: str, path: str, status: int) -> str:
        """The `$ref` of an operation's success body, e.g. ("post", "/2/tweets", 201)."""
        operation = self.current["paths"][path][method.lower()]
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
        return self.CURRENT + schema["$ref"]

    def check_success(self, body: Any, method: str, path: str, status: int) -> None:
        """Raise `jsonschema.ValidationError` unless `body` is the operation's success body.

        The older names live X answers with (`includes.tweets`, `referenced_tweets`,
        `edit_history_tweet_ids`, …) are checked against the 2.167 schemas of their new
        names; an `errors` entry (a lookup's "Not Found Error") against the 2.159 problem
        its `type` names, since 2.167 moved problem types to api.x.com.
        """
        if isinstance(body, dict) and "errors" in body:
            for entry in body["errors"]:
                self.check_problem_entry(entry)
            body = {k: v for k, v in body.items() if k != "errors"}
        self._validator(self.success_schema_ref(method, path, status)).validate(current_names(body))

    def check_problem_entry(self, entry: Any) -> None:
        """Raise unless `entry` is the 2.159 problem its `type` names (the base Problem for others)."""
        mapping = self.older_problem_types()
        ref = mapping.get(entry.get("type", "") if isinstance(entry, dict) else "", "#/components/schemas/Problem")
        self._validator(self.OLDER + ref).validate(entry)

    def older_problem_types(self) -> dict[str, str]:
        """2.159's problem `type` → the `$ref` of its schema (the Problem discriminator)."""
        older = self.registry.contents(self.OLDER)
        return dict(older["components"]["schemas"]["Problem"]["discriminator"]["mapping"])

    def check_problem(self, body: Any) -> None:
        """Raise unless `body` is a 2.159 `Problem` (X's problem+json errors)."""
        self._validator(self.OLDER + "#/components/schemas/Problem").validate(body)

    def check_error(self, body: Any) -> None:
        """Raise unless `body` is a 2.159 `Error` (X's plain JSON `{code, message}` error)."""
        self._validator(self.OLDER + "#/components/schemas/Error").validate(body)

    def check_response(self, response: requests.Response, method: str, path: str) -> Any:
        """Validate a resource endpoint's answer (success or problem) and return its JSON."""
        body = response.json()
        if response.status_code < 300:
            assert response.headers["Content-Type"].startswith("application/json"), response.headers
            self.check_success(body, method, path, response.status_code)
        else:
            assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
            self.check_problem(body)
        return body


# Older name → its 2.167 name, in post and user objects and in `includes`.
RENAMED_KEYS = {"referenced_tweets": "referenced_posts", "edit_history_tweet_ids": "edit_history_post_ids",
                "note_tweet": "note_post", "most_recent_tweet_id": "most_recent_post_id",
                "pinned_tweet_id": "pinned_post_id", "tweets": "posts"}


def current_names(body: Any) -> Any:
    """A copy of an answer with the older names of `data` objects and `includes` under their
    2.167 names (where the new name is not there already), so 2.167's schemas check them."""
    if not isinstance(body, dict):
        return body
    renamed = dict(body)
    if isinstance(body.get("data"), list):
        renamed["data"] = [_renamed(item) for item in body["data"]]
    elif "data" in body:
        renamed["data"] = _renamed(body["data"])
    if isinstance(body.get("includes"), dict):
        includes = _renamed(body["includes"])
        renamed["includes"] = {key: [_renamed(item) for item in items] if isinstance(items, list) else items
                               for key, items in includes.items()}
    return renamed


def _renamed(item: Any) -> Any:
    """One object with its older keys renamed (the new key wins when both are there), its public metrics too."""
    if not isinstance(item, dict):
        return item
    result = {k: v for k, v in item.items() if not (k in RENAMED_KEYS and RENAMED_KEYS[k] in item)}
    renamed = {RENAMED_KEYS.get(k, k): v for k, v in result.items()}
    metrics = renamed.get("public_metrics")
    if isinstance(metrics, dict) and "retweet_count" in metrics and "repost_count" not in metrics:
        renamed["public_metrics"] = {("repost_count" if k == "retweet_count" else k): v for k, v in metrics.items()}
    return renamed


@lru_cache(maxsize=4)
def x_spec(reference: Path) -> XSpec:
    """One parsed spec pair per reference folder (parsing takes a moment)."""
    return XSpec(reference)


# Bodies validated against the spec in this test session, per "METHOD /path/{template}" and
# status (conftest's `pytest_terminal_summary` prints them at the end of a run).
CHECKED_BODIES: Counter[tuple[str, int]] = Counter()


class SpecRecorder:
    """Records every answer of X's resource endpoints on the sessions it is attached to.

    Attach it to a `requests.Session` (a tweepy `Client.session`, a requests-oauthlib
    session, a plain one); `verify()` then validates each recorded JSON body against
    the spec, so a test checks the shapes of everything it received without saying so,
    and counts it in `CHECKED_BODIES`.
    """

    def __init__(self, spec: XSpec) -> None:
        self.spec = spec
        self.recorded: list[tuple[str, str, requests.Response]] = []
        self._verified = 0  # how many of `recorded` verify() has checked and counted
        self._routes = sorted(
            ((method.upper(), re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
             for path, item in spec.current["paths"].items() for method in item
             if method in ("get", "post", "put", "delete")),
            key=lambda route: route[2].count("{"),
        )

    def attach(self, session: requests.Session) -> requests.Session:
        """Record the answers `session` receives; returns the session."""
        session.hooks["response"].append(self._record)
        return session

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Response hook: keep answers of X resource endpoints (not the OAuth ones)."""
        path = urlsplit(response.url).path
        if path.startswith("/2/") and not path.startswith("/2/oauth2/"):
            self.recorded.append((response.request.method or "GET", path, response))

    def template(self, method: str, path: str) -> str:
        """The spec's path template for a concrete path ("/2/tweets/123" → "/2/tweets/{id}")."""
        for route_method, pattern, template in self._routes:
            if route_method == method.upper() and pattern.match(path):
                return template
        raise AssertionError(f"{method} {path} is not an operation of X's spec")

    def verify(self) -> int:
        """Validate the answers recorded since the last call, counting each in `CHECKED_BODIES`;
        how many were recorded in all."""
        for method, path, response in self.recorded[self._verified:]:
            template = self.template(method, path)
            try:
                self.spec.check_response(response, method, template)
            except Exception as exc:
                raise AssertionError(f"{method} {path} → {response.status_code} {response.text[:400]}: {exc}") from exc
            CHECKED_BODIES[(f"{method.upper()} {template}", response.status_code)] += 1
        self._verified = len(self.recorded)
        return len(self.recorded)


def checked_bodies_summary() -> list[str]:
    """One line per endpoint: how many bodies were validated, by status; a total line last."""
    per_endpoint: dict[str, Counter[int]] = {}
    for (endpoint, status), count in CHECKED_BODIES.items():
        per_endpoint.setdefault(endpoint, Counter())[status] += count
    lines = [f"{sum(statuses.values()):6d}  {endpoint}  ("
             + ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items())) + ")"
             for endpoint, statuses in sorted(per_endpoint.items())]
    return lines + [f"{sum(CHECKED_BODIES.values()):6d}  bodies in all"]
