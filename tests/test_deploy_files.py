"""The deploy files (Procfile, app.json, render.yaml, requirements.txt), parsed and checked for what matters."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from bot.cli.processes import gunicorn_command
from bot.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
TWEETBOT = str(Path(sys.executable).with_name("tweetbot"))
# What every process needs from the platform: the settings without a default, the database, and X.
NEEDED = {"SECRET_KEY", "TOKEN_KEY", "ADMIN_PASSWORD", "DATABASE_URL", "PUBLIC_URL", "X_CLIENT_ID", "X_CLIENT_SECRET"}
HEROKU_SECRET = "0f" * 32  # what app.json's "generator": "secret" gives: 64 hex characters


def procfile() -> dict[str, str]:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    entries = [re.fullmatch(r"([A-Za-z0-9_-]+):\s*(\S.*)", line) for line in lines]
    assert all(entries), lines
    table = {m.group(1): m.group(2) for m in entries if m}
    assert len(table) == len(lines), "a process type named twice"
    return table


def app_json() -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((ROOT / "app.json").read_text())
    return manifest


def blueprint() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "render.yaml").read_text())
    return document


def documented() -> set[str]:
    """The variables `.env.example` lists (the settings list)."""
    return set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))


def fernet_one_liner(text: str) -> str:
    found = re.search(r"""python -c ["'](from cryptography\.fernet import Fernet; [^"']+)["']""", text)
    assert found, f"no Fernet one-liner in {text!r}"
    return found.group(1)


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


def settings_from(values: dict[str, str]) -> None:
    load_settings(dotenv_path=None, environ={"PUBLIC_URL": "https://tweetbot.example.com", **values})


# --- Procfile ------------------------------------------------------------------------------

def test_procfile_runs_release_web_and_worker() -> None:
    table = procfile()
    assert set(table) == {"release", "web", "worker"}
    assert table["release"] == "tweetbot migrate"
    assert table["worker"] == "tweetbot worker"
    assert {"migrate", "worker"} <= set(main.commands), "the Procfile names a command tweetbot does not have"


def test_procfile_web_is_gunicorn_as_tweetbot_web_runs_it_on_the_platforms_port() -> None:
    ours = gunicorn_command("0.0.0.0", 5000)[3:]  # after `python -m gunicorn`
    expected = ["gunicorn", *["0.0.0.0:$PORT" if part == "0.0.0.0:5000" else part for part in ours]]
    assert shlex.split(procfile()["web"]) == expected
    assert "0.0.0.0:$PORT" in expected and expected[-1] == "web:create_app()"


def test_the_release_line_exits_0_on_a_file_store(tmp_path: Path) -> None:
    """Dokku with a mounted folder runs `release:` too, with no DATABASE_URL."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PATH"] = f"{Path(TWEETBOT).parent}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run([TWEETBOT, "init"], cwd=tmp_path, env=env, capture_output=True, check=True, timeout=60)
    release = subprocess.run(["sh", "-c", procfile()["release"]], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert release.returncode == 0, release.stderr
    assert release.stderr == ""


def test_requirements_txt_installs_the_project_itself() -> None:
    """Heroku's Python buildpack (and Dokku's, Railway's, Fly's) installs from requirements.txt only."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert [line.strip() for line in lines if line.strip() and not line.startswith("#")] == ["."]


# --- app.json (Heroku) ----------------------------------------------------------------------

def test_app_json_has_postgres_python_and_both_processes() -> None:
    manifest = app_json()
    assert manifest["buildpacks"] == [{"url": "heroku/python"}]
    addons = [addon if isinstance(addon, dict) else {"plan": addon} for addon in manifest["addons"]]
    [postgres] = [addon for addon in addons if addon["plan"].startswith("heroku-postgresql")]
    assert postgres["plan"] == "heroku-postgresql:essential-0"
    assert postgres.get("as", "DATABASE") == "DATABASE"  # so its URL is DATABASE_URL
    assert manifest["formation"] == {"web": {"quantity": 1, "size": "basic"},
                                     "worker": {"quantity": 1, "size": "basic"}}
    assert set(manifest["formation"]) <= set(procfile()) - {"release"}
    assert "scripts" not in manifest or "postdeploy" not in manifest["scripts"]  # migrations are the release phase


def test_app_json_generates_what_heroku_can_and_requires_the_rest() -> None:
    env = app_json()["env"]
    assert env["SECRET_KEY"]["generator"] == "secret"
    assert env["ADMIN_PASSWORD"]["generator"] == "secret"
    for name in ("TOKEN_KEY", "PUBLIC_URL"):
        assert env[name]["required"] is True and "generator" not in env[name] and "value" not in env[name], name
    assert "/oauth/callback" in env["PUBLIC_URL"]["description"]
    for name in ("X_CLIENT_ID", "X_CLIENT_SECRET"):
        assert env[name]["required"] is False and not env[name].get("value"), name
    assert "sandbox" in env["X_CLIENT_ID"]["description"]
    assert "DATABASE_URL" not in env  # the add-on sets it
    assert NEEDED - {"DATABASE_URL"} <= set(env)


def test_app_json_secrets_are_what_the_settings_accept() -> None:
    """A generated 64-hex secret passes for SECRET_KEY and ADMIN_PASSWORD, never as TOKEN_KEY: the
    description's one-liner makes a TOKEN_KEY that does."""
    token_key = run_python(fernet_one_liner(app_json()["env"]["TOKEN_KEY"]["description"]))
    settings_from({"SECRET_KEY": HEROKU_SECRET, "ADMIN_PASSWORD": HEROKU_SECRET, "TOKEN_KEY": token_key})
    with pytest.raises(SettingsError, match="TOKEN_KEY is malformed"):
        settings_from({"SECRET_KEY": HEROKU_SECRET, "ADMIN_PASSWORD": HEROKU_SECRET, "TOKEN_KEY": HEROKU_SECRET})


def test_every_variable_app_json_names_is_a_setting() -> None:
    assert set(app_json()["env"]) <= documented()


# --- render.yaml (Render Blueprint) --------------------------------------------------------

def render_service(kind: str) -> dict[str, Any]:
    [service] = [s for s in blueprint()["services"] if s["type"] == kind]
    return service


def render_env(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every variable a service gets, its own and its groups', by name."""
    groups = {g["name"]: g["envVars"] for g in blueprint().get("envVarGroups", [])}
    entries: list[dict[str, Any]] = []
    for entry in service["envVars"]:
        group = entry.get("fromGroup")
        entries += [{**e, "fromGroup": group} for e in groups[group]] if group else [entry]
    names = [entry["key"] for entry in entries]
    assert len(names) == len(set(names)), f"{service['name']} names a variable twice"
    return {entry["key"]: entry for entry in entries}


def test_render_yaml_runs_web_and_worker_as_the_procfile_says() -> None:
    table = procfile()
    assert sorted(s["type"] for s in blueprint()["services"]) == ["web", "worker"]
    web, worker = render_service("web"), render_service("worker")
    assert web["startCommand"] == table["web"]
    assert web["preDeployCommand"] == table["release"]
    assert worker["startCommand"] == table["worker"]
    for service in (web, worker):
        assert service["runtime"] == "python"
        assert service["buildCommand"] == "pip install ."
    assert web.get("plan", "starter") != "free"  # a pre-deploy command needs a paid instance type


def test_render_yaml_wires_the_one_database_into_both() -> None:
    [database] = blueprint()["databases"]
    for service in (render_service("web"), render_service("worker")):
        assert render_env(service)["DATABASE_URL"] == {
            "key": "DATABASE_URL", "fromDatabase": {"name": database["name"], "property": "connectionString"}}


def test_render_yaml_gives_each_process_every_setting_it_needs_from_one_source() -> None:
    web, worker = render_env(render_service("web")), render_env(render_service("worker"))
    for env in (web, worker):
        assert NEEDED <= set(env)
        assert set(env) <= documented()
        assert not any("value" in entry for entry in env.values()), "a secret or a URL written in the file"
    for name in NEEDED - {"DATABASE_URL"}:
        mine, theirs = web[name], worker[name]
        shared = mine.get("fromGroup") is not None and mine == theirs  # the same group
        copied = theirs.get("fromService") == {"type": "web", "name": render_service("web")["name"],
                                               "envVarKey": name}
        assert shared or copied, f"the worker's {name} may differ from the web's"
        assert mine.get("sync") is False or mine.get("generateValue") is True, name
    assert "generateValue" not in web["TOKEN_KEY"]  # a Fernet key, as in app.json: made by the operator


def test_render_yaml_groups_hold_no_prompted_value() -> None:
    """Render ignores `sync: false` inside an environment group."""
    for group in blueprint().get("envVarGroups", []):
        assert all("sync" not in entry for entry in group["envVars"]), group["name"]
