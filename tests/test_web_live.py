"""The dashboard's live panels: `/fragments/accounts`, `/queue`, `/history` and `/charts`.

Real processes: gunicorn (2 workers), the worker and the sandbox. A fragment is the same
HTML the full page shows for that panel, and it follows the store as the worker changes
it, with no reload of the page. The script that polls them is tested in a real browser
(tests/test_web_browser.py).
"""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from bot.models import NEEDS_RECONNECT, POSTED, Post, utcnow

from sandbox_helpers import SandboxControl
from web_support import HttpBrowser, gunicorn, open_store, web_env
from worker_support import WorkerProcess, connect_user, wait_until

pytestmark = pytest.mark.slow  # real processes, faults or soaks: `make test-fast` leaves it out


def panel(page: str, section: str) -> str:
    """The children of the dashboard's live element in `section` (what its fragment replaces)."""
    found = re.search(rf'<section class="card" id="{section}">.*?<div class="live" data-live="[^"]+">\n(.*?)\n  </div>\n</section>',
                      page, re.S)
    assert found, f"no live panel in #{section}"
    return found.group(1)


def without_tokens(html: str) -> str:
    """`html` with its CSRF tokens blanked (each rendering signs a fresh one)."""
    return re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', html)


def posted_today(charts: str) -> int:
    """The posts chart's figure for its last day (today), from the SVG's data attributes."""
    svg = re.search(r'<svg class="chart" id="chart-posts".*?</svg>', charts, re.S)
    assert svg, "no posts chart"
    return int(re.findall(r'data-posted="(\d+)"', svg.group(0))[-1])


def rows(html: str) -> list[str]:
    return re.findall(r'<tr class="post ([a-z]+)" data-post="(\d+)">', html)


def test_the_fragments_are_the_page_panels_and_follow_the_worker(tmp_path: Path, sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox)
    with gunicorn(tmp_path, sandbox, workers=2, env=env) as server:
        store = open_store(server.settings)
        alice = connect_user(store, sandbox, sandbox.create_users(1, "live")[0])
        later, soon = store.add_posts([
            Post(id=0, account_id=alice.user_id, parts=("for later",), due_at=utcnow() + timedelta(days=1)),
            Post(id=0, account_id=alice.user_id, parts=("live one",), due_at=utcnow() + timedelta(days=2))])
        web = HttpBrowser(server.url)
        assert web.sign_in().status_code == 302
        page = web.get("/").text
        for section in ("accounts", "queue", "history", "charts"):
            answer = web.get(f"/fragments/{section}")
            assert answer.status_code == 200 and answer.headers["X-Fragment"] == "1"
            assert without_tokens(answer.text) == without_tokens(panel(page, section))
        assert rows(web.get("/fragments/queue").text) == [("scheduled", str(later.id)), ("scheduled", str(soon.id))]
        assert rows(web.get("/fragments/history").text) == []
        assert posted_today(web.get("/fragments/charts").text) == 0

        assert web.post(f"/posts/{soon.id}/now").status_code == 303
        worker = WorkerProcess(env, tmp_path)
        try:
            worker.wait_started()
            wait_until(lambda: rows(web.get("/fragments/history").text) == [("posted", str(soon.id))], 60,
                       "the history fragment to show the post as posted")
            assert worker.terminate() == 0, worker.log()
        finally:
            worker.stop_quietly()
        history = web.get("/fragments/history").text
        posted = store.get_post(soon.id)
        assert posted is not None and posted.status == POSTED
        assert f'href="{server.settings.api_base}/{alice.username}#post-{posted.tweet_ids[0]}"' in history
        assert rows(web.get("/fragments/queue").text) == [("scheduled", str(later.id))]
        assert posted_today(web.get("/fragments/charts").text) == 1

        store.update_account(alice.user_id, status=NEEDS_RECONNECT, last_error="X refused the refresh token")
        accounts = web.get("/fragments/accounts").text
        assert "needs reconnecting" in accounts and "X refused the refresh token" in accounts


def test_a_signed_out_poll_gets_no_fragment(tmp_path: Path, sandbox: SandboxControl) -> None:
    with gunicorn(tmp_path, sandbox, workers=1) as server:
        for section in ("accounts", "queue", "history", "charts", "calendar"):
            answer = requests.get(f"{server.url}/fragments/{section}", allow_redirects=False, timeout=10)
            assert answer.status_code == 303 and "/signin" in answer.headers["Location"]
            assert "X-Fragment" not in answer.headers


def test_a_panel_polled_beside_a_page_never_brings_back_a_message_the_page_showed(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    """A live panel is asked with the cookie of a moment before, while the page beside it shows (and so
    consumes) a message: its answer sets no cookie, so the message does not come back on the next page."""
    with gunicorn(tmp_path, sandbox, workers=1) as server:
        web = HttpBrowser(server.url)
        assert web.sign_in().status_code == 302
        assert web.post("/posts/999/cancel").status_code in (302, 303)  # a message now waits in the session
        waiting = dict(web.http.cookies)
        assert "Not canceled: no post 999" in web.get("/").text
        poll = requests.get(f"{server.url}/fragments/queue", cookies=waiting, allow_redirects=False, timeout=10)
        assert poll.status_code == 200 and "Set-Cookie" not in poll.headers, poll.headers
        assert "Not canceled" not in web.get("/").text
