"""`/api/v1` (issue 21, its first part): API keys and the posts' endpoints, through real HTTP on gunicorn
(two workers, as the Procfile runs it), on both stores. Every answer is checked against the OpenAPI
document the app serves, with `jsonschema` (OpenAPI 3.1's schemas are JSON Schema 2020-12)."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from bot.api_keys import SCOPES, create_key, list_keys
from bot.models import FAILED, POSTED, Account, Post, utcnow
from bot.settings import load_settings
from bot.store import Repository, open_store
from web.api_spec import SPEC

from conftest import TWEETBOT, SandboxControl
from media_support import image_bytes
from web_support import WebServer, gunicorn, web_env

pytestmark = pytest.mark.slow  # real gunicorn processes


@pytest.fixture
def server(tmp_path: Path, sandbox: SandboxControl, store_env: dict[str, str]) -> Iterator[WebServer]:
    with gunicorn(tmp_path, sandbox, env={**web_env(tmp_path, sandbox), **store_env}) as running:
        yield running


@pytest.fixture
def store(server: WebServer) -> Iterator[Repository]:
    repo = open_store(server.settings)
    repo.save_account(Account(user_id="101", username="alice", access_token="a", refresh_token="r",
                              expires_at=utcnow() + timedelta(hours=2), scopes=("tweet.write",)))
    yield repo
    repo.close()


class Api:
    """Requests with one key, each answer checked against the served OpenAPI document."""

    def __init__(self, server: WebServer, key: str | None) -> None:
        self.base, self.key = server.url, key
        self.spec = requests.get(server.url + "/api/v1/openapi.json", timeout=10).json()

    def call(self, method: str, path: str, headers: dict[str, str] | None = None,
             **kwargs: Any) -> requests.Response:
        sent = {**({"Authorization": f"Bearer {self.key}"} if self.key else {}), **(headers or {})}
        answer = requests.request(method, f"{self.base}/api/v1{path}", headers=sent, timeout=10,
                                  allow_redirects=False, **kwargs)
        self.conforms(method, path, answer)
        return answer

    def conforms(self, method: str, path: str, answer: requests.Response) -> None:
        """The answer's status is one the document lists for the operation, its body fits that schema."""
        template = next(t for t in self.spec["paths"] if _matches(t, path.split("?")[0]))
        listed = self.spec["paths"][template][method.lower()]["responses"]
        assert str(answer.status_code) in listed, (method, path, answer.status_code, answer.text)
        [(media, content)] = listed[str(answer.status_code)]["content"].items()
        assert answer.headers["Content-Type"].split(";")[0] == media
        schema = {**content["schema"], "components": self.spec["components"]}
        errors = sorted(Draft202012Validator(schema).iter_errors(answer.json()), key=str)
        assert not errors, (method, path, [e.message for e in errors])


def _matches(template: str, path: str) -> bool:
    ours, theirs = template.split("/"), ("/api/v1" + path).split("/")
    return len(ours) == len(theirs) and all(a == b or a.startswith("{") for a, b in zip(ours, theirs, strict=True))


def key_for(store: Repository, *scopes: str) -> str:
    return create_key(store, "test", scopes, utcnow())[1]


def tomorrow() -> str:
    return (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0).isoformat()


def test_a_program_queues_a_post_and_reads_it_back(server: WebServer, store: Repository) -> None:
    api = Api(server, key_for(store, "posts:write", "posts:read"))
    answer = api.call("POST", "/posts", json={"account": "@alice", "text": "from CI", "at": tomorrow()})
    assert answer.status_code == 201, answer.text
    made = answer.json()
    [kept] = store.queued_posts()
    assert (made["id"], made["status"], made["handle"], made["source"]) == (kept.id, "scheduled", "@alice", "api")
    assert kept.parts == ("from CI",) and made["due_at"] == kept.due_at.isoformat(timespec="microseconds")
    assert api.call("GET", f"/posts/{kept.id}").json() == made
    thread = api.call("POST", "/posts", json={"account": "101", "parts": [{"text": "one"}, {"text": "two"}],
                                              "at": "now"}).json()
    assert [part["text"] for part in thread["parts"]] == ["one", "two"]
    listed = api.call("GET", "/posts?status=queued&limit=1").json()
    assert [p["id"] for p in listed["posts"]] == [thread["id"]] and listed["next_cursor"] == "1"
    rest = api.call("GET", "/posts?status=queued&limit=1&cursor=1").json()
    assert [p["id"] for p in rest["posts"]] == [made["id"]] and rest["next_cursor"] is None


def test_refusals_are_problems_with_the_queue_s_own_words_and_a_stable_type(server: WebServer,
                                                                           store: Repository) -> None:
    api = Api(server, key_for(store, "posts:write", "posts:read"))
    cases = {
        "text": ({"account": "@alice", "text": "x" * 281, "at": tomorrow()}, 422, "the post is too long"),
        "no-such-account": ({"account": "@nobody", "text": "hi", "at": tomorrow()}, 422, "no account @nobody"),
        "in-the-past": ({"account": "@alice", "text": "hi", "at": "2020-01-01T09:00:00+00:00"}, 422, "in the past"),
    }
    for kind, (body, status, words) in cases.items():
        answer = api.call("POST", "/posts", json=body)
        problem = answer.json()
        assert (answer.status_code, problem["type"], problem["status"]) == (
            status, f"/api/v1/problems/{kind}", status), problem
        assert words in problem["detail"], problem
    assert api.call("POST", "/posts", data="not json").status_code == 400
    assert api.call("GET", "/posts/999").json()["type"] == "/api/v1/problems/no-such-post"
    posted = store.add_posts([Post(id=0, account_id="101", parts=("out",), due_at=utcnow(), status=POSTED)])[0]
    refused = api.call("DELETE", f"/posts/{posted.id}")
    assert (refused.status_code, refused.json()["type"]) == (409, "/api/v1/problems/wrong-status")
    assert store.queued_posts() == []


def test_cancel_post_now_and_retry_change_the_store_as_the_cli_does(server: WebServer, store: Repository) -> None:
    api = Api(server, key_for(store, "posts:write", "posts:read"))
    later = api.call("POST", "/posts", json={"account": "@alice", "text": "later", "at": tomorrow()}).json()
    moved = api.call("POST", f"/posts/{later['id']}/post-now").json()
    assert moved["due_at"] < later["due_at"] and moved["status"] == "scheduled"
    assert api.call("DELETE", f"/posts/{later['id']}").json()["status"] == "canceled"
    failed = store.add_posts([Post(id=0, account_id="101", parts=("again",), due_at=utcnow(), status=FAILED,
                                   last_error="X refused it (403): Forbidden")])[0]
    finished = api.call("GET", "/posts?status=finished").json()["posts"]
    assert [(p["id"], p["status"]) for p in finished] == [(failed.id, "failed"), (later["id"], "canceled")]
    assert [p["id"] for p in api.call("GET", "/posts?status=failed").json()["posts"]] == [failed.id]
    again = api.call("POST", f"/posts/{failed.id}/retry")
    assert again.status_code == 201 and again.json()["parts"][0]["text"] == "again"
    assert store.get_post(failed.id).requeued_as == again.json()["id"]  # type: ignore[union-attr]
    twice = api.call("POST", f"/posts/{failed.id}/retry").json()
    assert twice["type"] == "/api/v1/problems/wrong-status" and "already queued again" in twice["detail"]


def test_keys_and_scopes_decide(server: WebServer, store: Repository) -> None:
    reader = key_for(store, "posts:read", "accounts:read")
    assert Api(server, None).call("GET", "/posts").status_code == 401
    assert Api(server, "tb_000000000000_" + "x" * 43).call("GET", "/posts").status_code == 401
    refused = Api(server, reader).call("POST", "/posts", json={"account": "@alice", "text": "no"})
    assert (refused.status_code, refused.json()["type"]) == (403, "/api/v1/problems/forbidden")
    accounts = Api(server, reader).call("GET", "/accounts").json()["accounts"]
    assert [(a["id"], a["handle"], a["status"]) for a in accounts] == [("101", "@alice", "active")]
    assert store.queued_posts() == []


def test_every_operation_refuses_a_key_without_its_scope_and_changes_nothing(server: WebServer,
                                                                            store: Repository) -> None:
    """Each documented operation, asked with a key holding every scope but the one the document says it
    needs: 403 `forbidden`, naming that scope, and the store as it was."""
    post = store.add_posts([Post(id=0, account_id="101", parts=("kept",), due_at=utcnow() + timedelta(days=1))])[0]
    values = {"post_id": str(post.id), "account": "101", "webhook_id": "1"}
    before = (store.queued_posts(), store.list_webhooks())
    tried = 0
    for template, methods in SPEC["paths"].items():
        path = template.removeprefix("/api/v1").format(**values)
        for method, operation in methods.items():
            [[needed]] = [scopes for requirement in operation.get("security", [{}]) for scopes in requirement.values()]
            refused = Api(server, key_for(store, *(s for s in SCOPES if s != needed))).call(method.upper(), path)
            assert (refused.status_code, refused.json()["type"]) == (403, "/api/v1/problems/forbidden"), (method, path)
            assert needed in refused.json()["detail"]
            tried += 1
    assert tried == sum(len(methods) for path, methods in SPEC["paths"].items()) and tried > 15
    assert (store.queued_posts(), store.list_webhooks()) == before


def test_a_key_revoked_through_one_process_is_refused_by_the_other_at_once(
        tmp_path: Path, sandbox: SandboxControl, store_env: dict[str, str]) -> None:
    """Two web processes on one store (two gunicorn workers, or two dynos): a key revoked by `tweetbot keys
    revoke` is refused by each of them on its very next request, with no restart and no cache to expire."""
    env = {**web_env(tmp_path, sandbox), **store_env}
    with gunicorn(tmp_path, sandbox, workers=1, env=env, name="first") as first, \
            gunicorn(tmp_path, sandbox, workers=1, env=env, name="second", public_url=first.url) as second:
        store = open_store(first.settings)
        key = key_for(store, "posts:read")
        assert [Api(web, key).call("GET", "/posts").status_code for web in (first, second)] == [200, 200]
        gone = subprocess.run([TWEETBOT, "keys", "revoke", key], env=env, capture_output=True, text=True,
                              timeout=60)
        assert gone.returncode == 0, gone.stderr
        assert [Api(web, key).call("GET", "/posts").status_code for web in (first, second)] == [401, 401]
        store.close()


def test_the_api_needs_no_session_and_no_csrf_token_and_the_pages_still_do(server: WebServer,
                                                                           store: Repository) -> None:
    key = key_for(store, "posts:write")
    answer = requests.post(server.url + "/api/v1/posts", json={"account": "@alice", "text": "hi", "at": tomorrow()},
                           headers={"Authorization": f"Bearer {key}"}, timeout=10, allow_redirects=False)
    assert answer.status_code == 201 and "Set-Cookie" not in answer.headers
    page = requests.post(server.url + "/posts", data={"account": "101", "part": "hi"}, timeout=10,
                         headers={"Authorization": f"Bearer {key}"}, allow_redirects=False)
    assert page.status_code == 303 and "/signin" in page.headers["Location"]  # a key opens no page


def test_tweetbot_keys_prints_a_key_once_and_the_store_keeps_only_its_hash(tmp_path: Path,
                                                                           sandbox: SandboxControl) -> None:
    env = web_env(tmp_path, sandbox)
    made = subprocess.run([TWEETBOT, "keys", "create", "--name", "ci", "--scope", "posts:write"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    whole = made.stdout.strip()
    key_id, secret = whole.split("_")[1], whole.split("_", 2)[2]
    assert "Shown this once" in made.stderr
    folder = load_settings(None, env).store_path.parent
    store_bytes = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert key_id.encode() in store_bytes and secret.encode() not in store_bytes
    listed = subprocess.run([TWEETBOT, "keys", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert f"tb_{key_id}_" in listed.stdout and secret not in listed.stdout and "live" in listed.stdout
    gone = subprocess.run([TWEETBOT, "keys", "revoke", key_id], env=env, capture_output=True, text=True, timeout=60)
    assert gone.returncode == 0 and f"Revoked key {key_id} (ci)" in gone.stdout
    store = open_store(load_settings(None, env))
    assert [key.revoked_at is not None for key in list_keys(store)] == [True]
    unknown = subprocess.run([TWEETBOT, "keys", "revoke", "nope"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert unknown.returncode == 1 and unknown.stderr.strip() == "tweetbot: no key nope"


def test_an_idempotency_key_answers_the_first_answer_again_and_queues_once(server: WebServer,
                                                                          store: Repository) -> None:
    api = Api(server, key_for(store, "posts:write"))
    body = {"account": "@alice", "text": "announce v1.2", "at": tomorrow()}
    first = api.call("POST", "/posts", json=body, headers={"Idempotency-Key": "release-1.2"})
    again = api.call("POST", "/posts", json=body, headers={"Idempotency-Key": "release-1.2"})
    assert (first.status_code, again.status_code) == (201, 201) and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    other = api.call("POST", "/posts", json={**body, "text": "another"}, headers={"Idempotency-Key": "release-1.2"})
    assert (other.status_code, other.json()["type"]) == (422, "/api/v1/problems/idempotency-key-reused")
    refused = {"account": "@alice", "text": "x" * 300, "at": tomorrow()}
    answers = [api.call("POST", "/posts", json=refused, headers={"Idempotency-Key": "too-long"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [422, 422] and answers[0].json() == answers[1].json()
    assert [p.parts for p in store.queued_posts()] == [("announce v1.2",)]


def test_two_requests_racing_with_one_key_make_one_post(server: WebServer, store: Repository) -> None:
    """Both gunicorn workers at once, many times: each key's requests all answer one post."""
    api = Api(server, key_for(store, "posts:write"))
    at = tomorrow()  # one time for all: a retried request is the same request

    def send(key: str) -> requests.Response:
        return api.call("POST", "/posts", json={"account": "@alice", "text": f"race {key}", "at": at},
                        headers={"Idempotency-Key": key})
    keys = [f"race-{n}" for n in range(10)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(send, [key for key in keys for _ in range(3)]))
    assert [a.status_code for a in answers] == [201] * len(answers), [a.text for a in answers if a.status_code != 201]
    for n, key in enumerate(keys):
        assert len({answer.json()["id"] for answer in answers[3 * n:3 * n + 3]}) == 1, key
    texts = [post.parts[0] for post in store.queued_posts()]
    assert sorted(texts) == sorted(f"race {key}" for key in keys)  # one post a key


def test_a_post_is_changed_its_slots_set_and_a_file_uploaded_and_named(server: WebServer,
                                                                       store: Repository) -> None:
    store.update_account("101", scopes=("tweet.write", "media.write"))
    api = Api(server, key_for(store, "posts:write", "posts:read", "accounts:read"))
    slots = api.call("PUT", "/accounts/@alice/slots", json={"spec": "daily 09:00", "tz": "UTC"}).json()
    assert slots["spec"] == "daily 09:00" and len(slots["next_free"]) == 5
    assert api.call("GET", "/accounts/101/slots").json() == slots
    wrong = api.call("PUT", "/accounts/101/slots", json={"spec": "9am sometimes"})
    assert (wrong.status_code, wrong.json()["type"]) == (422, "/api/v1/problems/slots")
    assert api.call("GET", "/accounts/@nobody/slots").status_code == 404
    post = api.call("POST", "/posts", json={"account": "@alice", "text": "in the next slot"}).json()
    assert post["due_at"] == slots["next_free"][0]
    changed = api.call("PATCH", f"/posts/{post['id']}", json={"text": "changed", "at": tomorrow()}).json()
    assert changed["parts"][0]["text"] == "changed" and changed["due_at"] != post["due_at"]
    back = api.call("PATCH", f"/posts/{post['id']}", json={"at": "next-slot"}).json()
    assert back["due_at"] == slots["next_free"][0] and back["parts"][0]["text"] == "changed"
    png = image_bytes()
    uploaded = api.call("POST", "/media", files={"file": ("chart.png", png, "image/png")})
    assert uploaded.status_code == 201 and uploaded.json()["type"] == "image" and uploaded.json()["bytes"] == len(png)
    with_image = api.call("POST", "/posts", json={"account": "@alice", "at": tomorrow(), "parts": [
        {"text": "with a chart", "media": [{"id": uploaded.json()["id"], "alt": "the chart"}]}]}).json()
    assert with_image["parts"][0]["media"] == [{"id": uploaded.json()["id"], "type": "image", "alt": "the chart"}]
    bad = api.call("POST", "/media", files={"file": ("notes.txt", b"not an image", "text/plain")})
    assert (bad.status_code, bad.json()["type"]) == (422, "/api/v1/problems/media")
    cleared = api.call("DELETE", "/accounts/@alice/slots").json()
    assert (cleared["spec"], cleared["next_free"]) == (None, [])
    assert api.call("GET", "/posts/" + str(post["id"])).json()["due_at"] == slots["next_free"][0]  # kept its time
    assert api.call("DELETE", "/accounts/@nobody/slots").status_code == 404
    unknown = api.call("POST", "/posts", json={"account": "@alice", "parts": [{"text": "x", "media": [
        {"id": "0" * 64}]}]})
    assert (unknown.status_code, unknown.json()["type"]) == (422, "/api/v1/problems/media")


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(
        server: WebServer, store: Repository, tmp_path: Path) -> None:
    """Schemathesis (not our code) generates requests from the served document, valid and not, against
    gunicorn with a key of every scope: no 5xx, and every answer's status, type and body as documented."""
    key = key_for(store, *SCOPES)
    store.add_posts([Post(id=0, account_id="101", parts=("failed",), due_at=utcnow(), status=FAILED,
                          last_error="X refused it (403): Forbidden")])
    # One worker thread: CPython 3.11's ast.parse can raise "SystemError: AST constructor recursion depth
    # mismatch" when two threads parse at once (python/cpython#106905), which Hypothesis does while
    # describing its strategies in the coverage phase: an error of the tool, never an answer of ours.
    run = subprocess.run(
        [str(Path(TWEETBOT).parent / "st"), "run", f"{server.url}/api/v1/openapi.json", "--url", server.url,
         "-H", f"Authorization: Bearer {key}", "--checks", "not_a_server_error,status_code_conformance,"
         "content_type_conformance,response_schema_conformance", "--max-examples", "15", "--seed", "20261207",
         "--workers", "1", "--phases", "examples,coverage,fuzzing", "--report-dir", str(tmp_path / "report"),
         "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    operations = sum(len(methods) for methods in SPEC["paths"].values())
    assert f"Tested: {operations}\n" in run.stdout, run.stdout[-3000:]  # every documented operation was tried


def test_a_program_subscribes_a_webhook_sees_its_secret_once_tests_and_removes_it(server: WebServer,
                                                                                 store: Repository) -> None:
    api = Api(server, key_for(store, "webhooks:write"))
    made = api.call("POST", "/webhooks", json={"url": "https://hooks.example.com/in?token=t0p",
                                               "events": ["post.posted", "post.failed"]})
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    hook = made.json()
    [listed] = api.call("GET", "/webhooks").json()["webhooks"]
    assert "secret" not in listed and listed["url"] == "https://hooks.example.com/in"  # never its query
    assert {k: v for k, v in hook.items() if k != "secret"} == listed
    assert api.call("POST", f"/webhooks/{hook['id']}/test").status_code == 202
    assert [d.type for d in store.deliveries(webhook_id=hook["id"])] == ["webhook.test"]
    wrong = api.call("POST", "/webhooks", json={"url": "https://hooks.example.com/in", "events": ["nope"]})
    assert (wrong.status_code, wrong.json()["type"]) == (422, "/api/v1/problems/webhook")
    assert api.call("DELETE", f"/webhooks/{hook['id']}").status_code == 200
    assert api.call("DELETE", f"/webhooks/{hook['id']}").json()["type"] == "/api/v1/problems/no-such-webhook"
    assert store.list_webhooks() == []
    refused = Api(server, key_for(store, "posts:write")).call("GET", "/webhooks")
    assert (refused.status_code, refused.json()["type"]) == (403, "/api/v1/problems/forbidden")
