"""Which of our packages may import which: the sandbox and xtext stand on their own.

    xtext    ← imports none of bot, web, sandbox (X's length rules, used by both sides)
    sandbox  ← may import xtext; nothing from bot or web (a local X any client can use)
    bot      ← may import xtext; nothing from sandbox or web (`tweetbot sandbox` runs `python -m sandbox`)

Every `.py` file of each package is parsed (never imported) and every import counts,
wherever it stands: module level, inside a function, under `if TYPE_CHECKING`, and
relative imports resolved to the module they name.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "web", "sandbox", "xtext")
FORBIDDEN = {
    "xtext": {"bot", "web", "sandbox"},
    "sandbox": {"bot", "web"},
    "bot": {"sandbox", "web"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import statement in `source`, the text of `module`."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from bot import text` may import the module bot.text: name each alias under the module too.
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def imported_modules(path: Path) -> list[tuple[int, str]]:
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def package_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if ".venv" not in p.parts)


def violations(package: str) -> list[str]:
    banned = FORBIDDEN[package]
    return [f"{path.relative_to(ROOT)}:{line}: imports {target}"
            for path in package_files(package)
            for line, target in imported_modules(path)
            if target.split(".")[0] in banned]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_it_must_not(package: str) -> None:
    files = package_files(package)
    assert files, f"no modules found in {package}/"
    assert violations(package) == [], f"{package} must not import {sorted(FORBIDDEN[package])}"


def test_the_check_sees_function_level_relative_and_from_imports() -> None:
    """The parser itself: every spelling of an import is found."""
    source = (
        "from __future__ import annotations\n"
        "import os, sandbox.server\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from web import dashboard\n"
        "def later():\n"
        "    from sandbox import server\n"
        "    import web.auth as auth\n"
        "    from . import settings\n"
        "    from .store import files\n"
    )
    modules = {target for _, target in imports_in(source, "bot.probe")}
    assert {"os", "sandbox.server", "typing.TYPE_CHECKING", "web", "web.dashboard", "sandbox", "web.auth",
            "bot", "bot.settings", "bot.store", "bot.store.files"} <= modules
    assert {target for _, target in imports_in("from . import limits", "sandbox", is_package=True)} == {
        "sandbox", "sandbox.limits"}
    assert {target for _, target in imports_in("from ..errors import x", "sandbox.a.b")} == {
        "sandbox.errors", "sandbox.errors.x"}


@pytest.mark.parametrize(("package", "banned"), [("sandbox", ("bot", "web")), ("xtext", ("bot", "web", "sandbox")),
                                                 ("bot", ("sandbox", "web"))])
def test_importing_a_package_loads_none_of_the_others(package: str, banned: tuple[str, ...]) -> None:
    """At run time too: importing every module of `package` brings none of `banned` into sys.modules."""
    modules = [module_name(path) for path in package_files(package) if path.name != "__main__.py"]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {set(banned)!r})\n"
        "print(loaded)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-P", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_web_app_and_the_worker_load_psycopg_only_for_postgresql() -> None:
    """psycopg is some 10 MB of each gunicorn worker: the file store's web app and worker never load it."""
    code = (
        "import sys\n"
        "import web, bot.worker, bot.store\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'psycopg', 'psycopg_pool'}))\n"
    )
    done = subprocess.run([sys.executable, "-P", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def import_alone(name: str) -> tuple[str, str]:
    """Import `name` first, alone, in a fresh interpreter: (name, what went wrong or "")."""
    done = subprocess.run([sys.executable, "-P", "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    return name, "" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_every_module_imports_first_and_alone() -> None:
    """No module depends on another having been imported before it (a cycle that works only in one order:
    `bot.cli_store` before `bot.cli` once raised "cannot import name … from partially initialized module")."""
    modules = [module_name(path) for package in PACKAGES for path in package_files(package)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        failed = {name: error for name, error in pool.map(import_alone, modules) if error}
    assert len(modules) > 80 and failed == {}, failed
