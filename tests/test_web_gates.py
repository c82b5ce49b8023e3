"""The gates every request passes before its page (`web.gates.GATES`), seen from outside: where two
gates would answer the same request differently, the one earlier in the list answers.

The real app (Flask's test client) with a real store in tmp_path, against the sandbox process.
"""
from __future__ import annotations

from pathlib import Path

from bot.models import to_iso, utcnow
from web.gates import MAX_TEXT_BODY

from sandbox_helpers import SandboxControl
from web_support import Browser, make_app, open_store, text

TOKEN = "a-scraper-token-of-32-characters"


def test_a_token_is_judged_before_the_store_and_the_store_before_sign_in(tmp_path: Path,
                                                                        sandbox: SandboxControl) -> None:
    app = make_app(tmp_path, sandbox, METRICS_TOKEN=TOKEN)
    client = app.test_client()
    store = open_store(app.config["TWEETBOT_SETTINGS"])
    store.set_meta("worker_heartbeat", to_iso(utcnow()))  # the store's file is written on its first change
    whole = store.path.read_bytes()
    store.path.write_bytes(whole[:-5])

    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong token" in text(wrong)
    right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})  # the store is read to answer it
    assert right.status_code == 503 and "tweetbot restore FILE" in text(right)
    for path in ("/metrics", "/", "/signin"):  # not signed in: the reason, not the sign-in page
        answer = client.get(path)
        assert answer.status_code == 503 and "tweetbot restore FILE" in text(answer), path

    store.path.write_bytes(whole)
    assert client.get("/metrics").status_code == 303


def test_sign_in_comes_before_the_body_is_read_and_its_limit_before_the_csrf_check(tmp_path: Path,
                                                                                  sandbox: SandboxControl) -> None:
    huge = {"part": "x" * (MAX_TEXT_BODY + 1)}  # and no CSRF token
    browser = Browser(make_app(tmp_path, sandbox))

    unsigned = browser.post("/posts", huge, csrf=False)
    assert unsigned.status_code == 303 and unsigned.headers["Location"].startswith("/signin")

    browser.sign_in()
    signed = browser.post("/posts", huge, csrf=False)
    assert signed.status_code == 413 and "Too much to send at once" in text(signed)
