"""The API's pages (issue 21): keys made on the dashboard are shown once, work at once and die at once
when revoked; the reference page renders every operation of the served document."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flask import Flask

from bot.api_keys import create_key
from web import create_app
from web.api_spec import SPEC

from conftest import SandboxControl
from web_support import Browser, app, browser, open_store, text, web_settings  # noqa: F401 (shared fixtures, used by name)

KEY = re.compile(r"tb_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")


def api_status(app: Flask, key: str) -> int:
    return app.test_client().get("/api/v1/posts", headers={"Authorization": f"Bearer {key}"}).status_code


def test_a_key_made_on_the_page_is_shown_once_works_and_dies_when_revoked(app: Flask, browser: Browser) -> None:
    made = text(browser.post("/api-keys", {"name": "release job", "scope": ["posts:read", "posts:write"]}))
    [key] = KEY.findall(made)
    assert "shown this once" in made and api_status(app, key) == 200
    listed = text(browser.get("/api-keys"))
    key_id = key.split("_")[1]
    assert KEY.findall(listed) == [] and f"tb_{key_id}_" in listed and "posts:read, posts:write" in listed
    refused = text(browser.post("/api-keys", {"name": "nothing"}))
    assert "No key made: a key needs at least one scope" in refused and KEY.findall(refused) == []
    browser.post(f"/api-keys/{key_id}/revoke")
    assert api_status(app, key) == 401
    assert "revoked" in text(browser.get("/api-keys"))


def test_the_reference_page_renders_every_operation_and_schema_of_the_document(browser: Browser) -> None:
    page = text(browser.get("/api-docs"))
    for path, methods in SPEC["paths"].items():
        for method, operation in methods.items():
            assert f"{method.upper()} {path}" in page and operation["summary"] in page
    assert all(f'id="schema-{name}"' in page for name in SPEC["components"]["schemas"])


def test_a_key_past_its_rate_gets_429_with_retry_after_and_another_key_does_not(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    """API_RATE a minute per key, on the app's clock: the next request says when to come back, and the
    window moves on with the clock."""
    moments = [datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)]
    app = create_app({"SETTINGS": web_settings(tmp_path, sandbox, API_RATE="3"), "TESTING": True,
                      "CLOCK": lambda: moments[-1]})
    store = open_store(app.config["TWEETBOT_SETTINGS"])
    busy, other = (create_key(store, name, ["posts:read"], moments[0])[1] for name in ("busy", "other"))
    assert [api_status(app, busy) for _ in range(3)] == [200, 200, 200]
    moments.append(moments[0] + timedelta(seconds=20))
    refused = app.test_client().get("/api/v1/posts", headers={"Authorization": f"Bearer {busy}"})
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "40")
    assert refused.get_json()["type"] == "/api/v1/problems/rate-limited"
    assert api_status(app, other) == 200
    moments.append(moments[0] + timedelta(seconds=61))
    assert api_status(app, busy) == 200


def test_every_web_process_counts_the_same_requests_of_a_key(tmp_path: Path, sandbox: SandboxControl) -> None:
    """Two apps on one store, as two gunicorn workers are: a key's requests to both count toward one
    API_RATE, so spreading them over processes buys nothing."""
    moment = datetime(2026, 12, 7, 12, 0, 30, tzinfo=timezone.utc)
    settings = web_settings(tmp_path, sandbox, API_RATE="4")
    apps = [create_app({"SETTINGS": settings, "TESTING": True, "CLOCK": lambda: moment}) for _ in range(2)]
    _, key = create_key(open_store(settings), "spread", ["posts:read"], moment)
    assert [api_status(apps[n % 2], key) for n in range(6)] == [200, 200, 200, 200, 429, 429]
