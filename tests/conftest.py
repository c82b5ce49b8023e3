"""Shared fixtures. The reference material lives in ../shared/reference/ beside the clone.

Sandbox fixtures: `sandbox_server` (session: one real `tweetbot sandbox` process),
`sandbox` (a `SandboxControl` on a freshly reset sandbox), `xcheck` (validates X's
answers against the OpenAPI spec), and `tweetbot_env()` to launch other real processes
(web, worker) against the sandbox.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
from cryptography.fernet import Fernet
from psycopg import sql

from bot.store.postgres.migrate import migrate

from pg_servers import Pgbouncer
from ports import free_port
from sandbox_helpers import CHECKED_BODIES, SandboxControl, SpecRecorder, checked_bodies_summary, x_spec
from store_support import CONTRACT_STORES, DATABASES, FILE, PGBOUNCER, STORES, StoreAt

ROOT = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    """`../shared/reference` next to the clone, or `$TWEETBOT_REFERENCE`."""
    path = Path(os.environ.get("TWEETBOT_REFERENCE", ROOT.parent / "shared" / "reference"))
    if not path.is_dir():
        raise RuntimeError(f"reference material not found at {path}: set TWEETBOT_REFERENCE")
    return path


@pytest.fixture(scope="session")
def reference() -> Path:
    return reference_dir()


# --- the sandbox: a real `tweetbot sandbox` process, shared by the whole session ----------

TWEETBOT = str(Path(sys.executable).with_name("tweetbot"))
SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
SANDBOX_PUBLIC_URL = "http://127.0.0.1:5000"
# Variables a developer's shell may hold that would change what a child process does.
_FOREIGN = ("SECRET_KEY", "TOKEN_KEY", "ADMIN_PASSWORD", "X_CLIENT_ID", "X_CLIENT_SECRET", "X_API_BASE",
            "X_AUTHORIZE_URL", "X_SCOPES", "X_TIER", "PUBLIC_URL", "PORT", "SANDBOX_PORT", "STORE_PATH", "DYNO",
            "TIMEZONE", "REFRESH_MARGIN", "REFRESH_EVERY", "POST_CONCURRENCY", "MAX_ATTEMPTS", "RETRY_BACKOFF", "GENERATORS_FILE", "HTTP_TIMEOUT", "ALERT_WEBHOOK_URL",
            "DATABASE_URL", "RENDER", "RAILWAY_ENVIRONMENT", "FLY_APP_NAME", "TRUSTED_PROXIES", "METRICS_TOKEN",
            "MEDIA_RETENTION_DAYS", "WEBHOOK_TIMEOUT", "WEBHOOK_BACKOFF", "WEBHOOK_PAUSE_AFTER", "X_APP_OWNER")


def tweetbot_env(tmp_path: Path, sandbox_url: str, **overrides: str) -> dict[str, str]:
    """The environment for a real tweetbot process (web, worker, sandbox) against the sandbox.

    Fresh secrets, the store in `tmp_path`, no X credentials (so the sandbox client
    `sandbox-client`/`sandbox-secret` is used), the API and consent page at `sandbox_url`,
    and OAUTHLIB_INSECURE_TRANSPORT=1 because the sandbox speaks plain http. Keyword
    arguments override or add variables (e.g. `PUBLIC_URL=…`, `X_CLIENT_SECRET=""`).
    """
    port = sandbox_url.rstrip("/").rsplit(":", 1)[1]
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env.update(
        SECRET_KEY=Fernet.generate_key().decode(),
        TOKEN_KEY=Fernet.generate_key().decode(),
        ADMIN_PASSWORD="sandbox-admin-password",
        STORE_PATH=str(tmp_path / "tweetbot.json"),
        SANDBOX_PORT=port,
        X_API_BASE=sandbox_url.rstrip("/"),
        X_AUTHORIZE_URL=sandbox_url.rstrip("/") + "/i/oauth2/authorize",
        PUBLIC_URL=SANDBOX_PUBLIC_URL,
        OAUTHLIB_INSECURE_TRANSPORT="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@dataclass
class SandboxServer:
    """The running sandbox process."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    client_id: str = SANDBOX_CLIENT_ID
    client_secret: str = SANDBOX_CLIENT_SECRET
    redirect_uri: str = SANDBOX_PUBLIC_URL + "/oauth/callback"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_sandbox(workdir: Path, port: int | None = None, timeout: float = 20.0, args: tuple[str, ...] = (),
                  **env: str) -> SandboxServer:
    """Start `tweetbot sandbox --port N [args]` in `workdir` and wait until it answers.

    `env` overrides variables of `tweetbot_env` (e.g. `X_CLIENT_ID`, `X_TIER`).
    """
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "sandbox.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([TWEETBOT, "sandbox", "--port", str(port), *args], cwd=workdir,
                                   env=tweetbot_env(workdir, url, **env), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(url + "/_sandbox/clock", timeout=1).ok:
                return SandboxServer(url, port, process, log_path)
        except requests.RequestException:  # not listening yet, or busy booting
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the sandbox did not answer within {timeout} s:\n{log_path.read_text()}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """One `tweetbot sandbox` process for the whole test session."""
    server = start_sandbox(tmp_path_factory.mktemp("sandbox"))
    yield server
    stop_process(server.process)


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxControl]:
    """The control client of a freshly reset sandbox (`.url` is the sandbox's base URL)."""
    control = SandboxControl(sandbox_server.url, server=sandbox_server)
    control.reset()
    yield control
    control.http.close()


@pytest.fixture
def xcheck(reference: Path) -> Iterator[SpecRecorder]:
    """Attach to any session (`xcheck.attach(session)`); at teardown every X answer it saw
    is validated against X's OpenAPI spec (success: 2.167; errors: 2.159's Problem)."""
    recorder = SpecRecorder(x_spec(reference))
    yield recorder
    recorder.verify()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files with the most slow tests first. xdist hands out whole files in this order (addopts:
    --dist loadfile --no-loadscope-reorder), so the long ones start early; in its own order (most tests
    first) the torture files came last and ran on with three of four workers idle."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: each file's tests stay together, in order


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, a worker hands its counts of validated bodies to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["checked_bodies"] = [[endpoint, status, n] for (endpoint, status), n in CHECKED_BODIES.items()]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """The controller adds up what each xdist worker validated."""
    for endpoint, status, n in getattr(node, "workeroutput", {}).get("checked_bodies", []):
        CHECKED_BODIES[(endpoint, status)] += n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many of X's answers were validated against its OpenAPI spec, per endpoint."""
    lines = checked_bodies_summary()
    if len(lines) > 1:
        terminalreporter.section("bodies validated against X's OpenAPI spec")
        for line in lines:
            terminalreporter.write_line(line)


# --- PostgreSQL: a database of its own for each test, from a migrated template ------------

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def test_database_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL


def pytest_sessionstart(session: pytest.Session) -> None:
    """Without a PostgreSQL server the run stops here with one line: its tests are never skipped."""
    try:
        psycopg.connect(test_database_url(), connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        pytest.exit(f"tweetbot tests need PostgreSQL: cannot connect to TEST_DATABASE_URL={test_database_url()} "
                    f"({reason}); start the server or point TEST_DATABASE_URL at one", returncode=2)


def _database(name: str) -> str:
    """The server's URL with another database name."""
    parts = urlsplit(test_database_url())
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin(statement: sql.Composable) -> None:
    with psycopg.connect(test_database_url(), autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database that every test's database is copied from (quicker than migrating each)."""
    name = f"tweetbot_template_{os.getpid()}"
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate(_database(name))
    yield name
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


_databases = iter(range(1, 10**9))


@pytest.fixture
def database_url(pg_template: str) -> Iterator[str]:
    """The URL of an empty, migrated database of this test's own, dropped after it."""
    name = f"tweetbot_test_{os.getpid()}_{next(_databases)}"
    _admin(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(pg_template)))
    yield _database(name)
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def second_database_url(database_url: str, pg_template: str) -> Iterator[str]:
    """Another empty, migrated database of this test's own (a restore's target beside its source)."""
    name = f"tweetbot_test_{os.getpid()}_{next(_databases)}"
    _admin(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(pg_template)))
    yield _database(name)
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def unmigrated_database_url() -> Iterator[str]:
    """The URL of a database of this test's own with no schema at all (what a new add-on hands out)."""
    name = f"tweetbot_bare_{os.getpid()}_{next(_databases)}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _database(name)
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pgbouncer() -> Iterator[Pgbouncer]:
    """Debian's pgbouncer in transaction mode in front of the shared server (Supabase's and Neon's
    pooled URLs are this), one per test process."""
    bouncer = Pgbouncer(test_database_url())
    yield bouncer
    bouncer.close()


def _store_at(request: pytest.FixtureRequest, tmp_path: Path) -> StoreAt:
    if request.param == FILE:
        return StoreAt(FILE, str(tmp_path / "tweetbot.json"))
    direct = request.getfixturevalue("database_url")
    if request.param == PGBOUNCER:
        return StoreAt(PGBOUNCER, request.getfixturevalue("pgbouncer").through(direct), admin=direct)
    return StoreAt(request.param, direct)


@pytest.fixture(params=CONTRACT_STORES)
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> StoreAt:
    """The test runs on a file store, on PostgreSQL, and on PostgreSQL through pgbouncer."""
    return _store_at(request, tmp_path)


@pytest.fixture(params=STORES)
def unpooled_store_at(request: pytest.FixtureRequest, tmp_path: Path) -> StoreAt:
    """A file store and PostgreSQL (a long test whose pooled run is in a module of its own, so that
    pytest-xdist runs it beside the others, not after them)."""
    return _store_at(request, tmp_path)


@pytest.fixture(params=DATABASES)
def database_store_at(request: pytest.FixtureRequest, tmp_path: Path) -> StoreAt:
    """PostgreSQL, direct and through pgbouncer in transaction mode (a test of the server's locks)."""
    return _store_at(request, tmp_path)


@pytest.fixture(params=[PGBOUNCER])
def pooled_store_at(request: pytest.FixtureRequest, tmp_path: Path) -> StoreAt:
    """PostgreSQL through pgbouncer in transaction mode."""
    return _store_at(request, tmp_path)


def _store_variables(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == FILE:
        return {}
    direct = request.getfixturevalue("database_url")
    if request.param == PGBOUNCER:
        return {"DATABASE_URL": request.getfixturevalue("pgbouncer").through(direct)}
    return {"DATABASE_URL": direct}


@pytest.fixture(params=STORES)
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Variables for real processes: the file store in the test's folder, or a PostgreSQL database of its own."""
    return _store_variables(request)


@pytest.fixture(params=CONTRACT_STORES)
def any_store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """`store_env`, and PostgreSQL through pgbouncer in transaction mode too."""
    return _store_variables(request)


@pytest.fixture(params=DATABASES)
def database_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """DATABASE_URL of a database of the test's own: direct, and through pgbouncer in transaction mode."""
    return _store_variables(request)
