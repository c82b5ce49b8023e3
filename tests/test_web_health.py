"""/healthz: public, 200 while the worker's heartbeat is younger than two minutes, 503 otherwise."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.models import to_iso, utcnow

from sandbox_helpers import SandboxControl
from web_support import make_app, open_store


def test_healthz_follows_the_worker_heartbeat(tmp_path: Path, sandbox: SandboxControl) -> None:
    app = make_app(tmp_path, sandbox)
    client = app.test_client()  # not signed in: the health check is public
    store = open_store(app.config["TWEETBOT_SETTINGS"])

    never = client.get("/healthz")
    assert never.status_code == 503
    assert never.get_json() == {"status": "unhealthy", "store": "ok", "worker_heartbeat_age_seconds": None}

    store.set_meta("worker_heartbeat", to_iso(utcnow() - timedelta(seconds=30)))
    fresh = client.get("/healthz")
    assert fresh.status_code == 200 and fresh.get_json()["status"] == "ok"
    assert 30 <= fresh.get_json()["worker_heartbeat_age_seconds"] < 120

    store.set_meta("worker_heartbeat", to_iso(utcnow() - timedelta(minutes=3)))
    stale = client.get("/healthz")
    assert stale.status_code == 503 and stale.get_json()["worker_heartbeat_age_seconds"] >= 180


def test_healthz_and_every_page_say_503_while_the_store_is_damaged_and_recover_once_it_is_fixed(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    app = make_app(tmp_path, sandbox)
    client = app.test_client()
    store = open_store(app.config["TWEETBOT_SETTINGS"])
    store.set_meta("worker_heartbeat", to_iso(utcnow()))
    assert client.get("/healthz").status_code == 200
    whole = store.path.read_bytes()
    store.path.write_bytes(whole[:-5])

    for _ in range(3):  # the verdict is remembered for the file as it is: no re-read per hit
        damaged = client.get("/healthz")
        assert damaged.status_code == 503 and damaged.get_json()["status"] == "unhealthy"
        assert damaged.get_json()["store"].startswith(f"error: the store file {store.path} cannot be read")
    page = client.get("/signin")
    assert page.status_code == 503 and "tweetbot restore FILE" in page.get_data(as_text=True)

    store.path.write_bytes(whole)
    assert client.get("/healthz").status_code == 200
    assert client.get("/signin").status_code == 200
