"""Which of our packages may import which: the sandbox and xtext stand on their own.

    xtext    ← imports none of bot, web, sandbox (X's length rules, used by both sides)
    sandbox  ← may import xtext; nothing from bot or web (a local X any client can use)
    bot      ← may import xtext; nothing from sandbox or web (`tweetbot sandbox` runs `python -m sandbox`)

Every `.py` file of each package is parsed (never imported) and every import counts,
wherever it stands: module level, inside a function, under `if TYPE_CHECKING`, and
relative imports resolved to the module they name.

And no import cycle among the modules of all four: there only what runs when a module is
loaded counts (module level, not a function's lazy import, not `if TYPE_CHECKING`), see
`test_no_module_imports_itself_through_others`.
"""
from __future__ import annotations

import ast
import subprocess
import sys
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


# Run in one interpreter that has imported every third-party package our modules name (never one of
# ours), then forks a child per module: each child imports its module first and alone, as a fresh
# interpreter would, without paying again for flask, requests or psycopg (a second of CPU each time).
IMPORT_EACH_ALONE = """
import importlib, os, sys
sys.path.insert(0, os.getcwd())
ours, modules = set(sys.argv[1].split(",")), sys.argv[2].split(",")
for name in sys.argv[3].split(","):
    try:
        importlib.import_module(name)
    except Exception:
        pass  # a child imports it itself, and says so if it fails
assert not any(m.split(".")[0] in ours for m in sys.modules), "one of our modules was imported early"
for name in modules:
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            print(f"{name}: {type(exc).__name__}: {exc}".replace(chr(10), " "), flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status and os.waitstatus_to_exitcode(status) != 1:
        print(f"{name}: exit status {status}", flush=True)
"""


def third_party_imports() -> list[str]:
    """The top-level packages our modules import that are neither ours nor the standard library's."""
    names = {target.split(".")[0] for package in PACKAGES for path in package_files(package)
             for _, target in imported_modules(path)}
    return sorted(n for n in names if n and n not in PACKAGES and n not in sys.stdlib_module_names)


def imports_alone(modules: list[str], root: Path = ROOT, ours: tuple[str, ...] = PACKAGES) -> list[str]:
    """Import each of `modules` (of the packages `ours` in `root`) first and alone (see IMPORT_EACH_ALONE);
    what went wrong, a line each."""
    done = subprocess.run([sys.executable, "-P", "-c", IMPORT_EACH_ALONE, ",".join(ours), ",".join(modules),
                           ",".join(third_party_imports())], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return sorted(set(done.stdout.splitlines()))


@pytest.mark.slow
def test_every_module_imports_first_and_alone() -> None:
    """No module depends on another having been imported before it (a cycle that works only in one order:
    `bot.cli_store` before `bot.cli` once raised "cannot import name … from partially initialized module")."""
    modules = [module_name(path) for package in PACKAGES for path in package_files(package)]
    assert len(modules) > 80 and imports_alone(modules) == []


def test_a_module_that_imports_only_after_another_is_named(tmp_path: Path) -> None:
    """What the test above looks for: `cycle.first` imports `cycle.second`, which needs a name of `cycle.first`
    that is not defined yet; imported after `cycle.second`, it works."""
    (tmp_path / "cycle").mkdir()
    (tmp_path / "cycle" / "__init__.py").write_text("")
    (tmp_path / "cycle" / "first.py").write_text("from cycle import second\nVALUE = 1\n")
    (tmp_path / "cycle" / "second.py").write_text("from cycle.first import VALUE\n")
    failed = imports_alone(["cycle.second", "cycle.first", "cycle"], root=tmp_path, ours=("cycle",))
    assert [line.split(":")[0] for line in failed] == ["cycle.first"]
    assert "partially initialized module" in failed[0]


# -- no import cycle ---------------------------------------------------------------------------------


def loaded_at_import(nodes: list[ast.stmt] | list[ast.AST]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements among `nodes` that run when their module is loaded: not in a function's body
    (run when it is called), not under `if TYPE_CHECKING:` (never run; its `else:` is)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            found += loaded_at_import(node.orelse)
        else:
            found += loaded_at_import(list(ast.iter_child_nodes(node)))
    return found


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def ancestors(module: str) -> set[str]:
    """The packages Python imports before `module`: "a.b.c" → {"a", "a.b"}."""
    parts = module.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts))}


def named_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules an import statement of `module` names: `import a.b` names a.b; `from a import b` names the
    submodule a.b when there is one, else a (b is a name a defines); relative forms resolved."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".") if node.level else (
        node.module or "")
    return {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, dict[str, int]]:
    """module → {project module it loads when it is loaded: the line of the first import that loads it}.

    `sources`: module name → (its text, whether it is a package's `__init__`). A module loads what its
    imports name and the packages above those (their `__init__`), except the packages above itself:
    Python has those in hand before it runs the module. An import naming its own package (`from bot.cli
    import main` in bot.cli.run) does count: it needs what that `__init__` defines."""
    known = set(sources)
    graph: dict[str, dict[str, int]] = {}
    for module, (source, is_package) in sources.items():
        edges: dict[str, int] = {}
        for node in loaded_at_import(ast.parse(source).body):
            for named in named_modules(node, module, is_package, known):
                for target in {named} | (ancestors(named) - ancestors(module)):
                    if target in known and target != module:
                        edges.setdefault(target, node.lineno)
        graph[module] = edges
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's walk: every group of modules that reach one another (a cycle) with more than one member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group: list[str] = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(groups)


def one_cycle(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """A shortest way round from the group's first module back to it, staying in the group (breadth first)."""
    start = group[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for module in frontier:
            for target in sorted(graph[module]):
                if target == start:
                    path = [module]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if target in group and target not in came_from:
                    came_from[target] = module
                    following.append(target)
        frontier = following
    raise AssertionError(f"{group} is no cycle")


def describe_cycles(graph: dict[str, dict[str, int]]) -> list[str]:
    """One entry per cycle group: its members, then one way round, import by import."""
    described = []
    for group in strongly_connected(graph):
        way = one_cycle(graph, group)
        steps = [f"    {here}:{graph[here][there]} imports {there}" for here, there in zip(way, way[1:], strict=False)]
        described.append("\n".join([f"cycle among {', '.join(group)}:", *steps]))
    return described


def project_sources() -> dict[str, tuple[str, bool]]:
    return {module_name(path): (path.read_text(encoding="utf-8"), path.name == "__init__.py")
            for package in PACKAGES for path in package_files(package)}


def test_no_module_imports_itself_through_others() -> None:
    """No import cycle among the modules of bot, web, sandbox and xtext.

    Every module is parsed (never imported). What counts is what runs when a module is loaded: its
    module-level imports (also in a class body, a `try:` or a plain `if`), relative forms resolved,
    `import a.b.c` loading a.b.c and the packages above it (their `__init__`), `from a import b`
    loading the submodule a.b when there is one. Two kinds do not count: an import inside a function,
    which runs when the function is called (the accepted way to load something lazily, e.g. the
    psycopg-backed store only when PostgreSQL is used), and one under `if TYPE_CHECKING:`, which
    never runs. A cycle is a group of modules each reaching the others (strongly connected).
    """
    graph = import_graph(project_sources())
    assert len(graph) > 80
    cycles = describe_cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_the_cycle_check_follows_every_spelling_and_finds_cycles() -> None:
    """The checker itself, on made-up modules: what it counts, what it leaves out, and the cycles it must find."""
    sources = {
        "app": ("", True),
        "app.cli": ("from . import run\nfrom app.cli.run import go\nNAME = 'app'\n", True),
        "app.cli.run": ("from typing import TYPE_CHECKING\nfrom . import common\n"
                        "if TYPE_CHECKING:\n    from app.cli import main\nelse:\n    import app.later\n"
                        "def lazy():\n    from app.cli import main\n", False),
        "app.cli.common": ("import os\nimport app.store.tiny\n", False),
        "app.cli.help": ("from app.cli import NAME\n", False),  # its own package's __init__: that counts
        "app.store": ("from .tiny import Tiny\n", True),
        "app.store.tiny": ("class Tiny:\n    from app.store import backup\n", False),
        "app.store.backup": ("try:\n    from app.store.tiny import Tiny\nexcept ImportError:\n    pass\n", False),
        "app.later": ("from app.cli import help\n", False),
    }
    graph = import_graph(sources)
    assert graph["app.cli"] == {"app.cli.run": 1}
    assert graph["app.cli.run"] == {"app.cli.common": 2, "app.later": 6}  # not TYPE_CHECKING's, not lazy's
    assert graph["app.cli.common"] == {"app.store.tiny": 2, "app.store": 2}  # the package's __init__ too
    assert graph["app.store.tiny"] == {"app.store.backup": 2}  # its own package is loaded before it runs
    assert graph["app.later"] == {"app.cli.help": 1, "app.cli": 1}
    assert strongly_connected(graph) == [["app.cli", "app.cli.help", "app.cli.run", "app.later"],
                                         ["app.store.backup", "app.store.tiny"]]
    assert describe_cycles(graph) == [
        "cycle among app.cli, app.cli.help, app.cli.run, app.later:\n"
        "    app.cli:1 imports app.cli.run\n"
        "    app.cli.run:6 imports app.later\n"
        "    app.later:1 imports app.cli",
        "cycle among app.store.backup, app.store.tiny:\n"
        "    app.store.backup:2 imports app.store.tiny\n"
        "    app.store.tiny:2 imports app.store.backup"]


def test_the_store_contract_imports_no_store_and_refuses_nothing() -> None:
    """`bot.store.contract` is what every store keeps: it imports neither implementation (nor TinyDB, psycopg or
    filelock, wherever the import stands) and holds no member one store may refuse (`raise`, `NotImplemented`)."""
    path = ROOT / "bot" / "store" / "contract.py"
    source = path.read_text(encoding="utf-8")
    imported = {name for _, name in imported_modules(path)}
    implementations = ("bot.store.file", "bot.store.postgres", "tinydb", "psycopg", "filelock")
    assert sorted(name for name in imported if name.startswith(implementations)) == []
    assert imported >= {"bot.models", "bot.store.records"}  # the check reads this module's imports
    assert not [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Raise)]
    assert "NotImplemented" not in source


def test_importing_the_store_loads_neither_store_until_one_is_opened() -> None:
    found = subprocess.run(
        [sys.executable, "-P", "-c", "import sys\nimport bot.store\n"
         "print(sorted({m.split('.')[0] for m in sys.modules} & {'tinydb', 'psycopg', 'filelock'}),"
         " sorted(m for m in sys.modules if m.startswith(('bot.store.file', 'bot.store.postgres'))))"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    assert found.stdout.split() == ["[]", "[]"]
