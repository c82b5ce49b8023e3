"""The sandbox world's lock rule, checked in the source: only the world and its parts take the lock.

`sandbox/state.py` composes the world of parts that each hold one kind of state and
take the world's one lock inside their own methods; views (and every other module)
only call methods. Parsed, never imported: any `.lock` / `._lock` attribute, any
`with` on one, and any reach into a part's private attributes outside those modules fails.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sandbox"
OWNERS = {"state.py", "shared.py", "people.py", "consent.py", "upload_sessions.py", "timeline.py", "traffic.py", "charges.py"}


def offences(path: Path) -> list[str]:
    """Lines of `path` that name a lock or another object's private attribute."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Attribute):
            continue
        private = node.attr.startswith("_") and not node.attr.startswith("__")
        on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        if node.attr in ("lock", "_lock") or (private and not on_self):
            found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return found


def test_only_the_world_and_its_parts_touch_the_lock() -> None:
    views = sorted(p for p in ROOT.glob("*.py") if p.name not in OWNERS)
    assert {p.name for p in views} >= {"api.py", "media_api.py", "control.py", "oauth.py", "pages.py", "expansions.py"}
    assert [line for path in views for line in offences(path)] == []


def test_the_parts_take_the_lock_themselves() -> None:
    assert "self._lock = shared.lock" in (ROOT / "shared.py").read_text(encoding="utf-8")  # `Part` keeps it
    for name in OWNERS - {"state.py", "shared.py"}:
        source = (ROOT / name).read_text(encoding="utf-8")
        assert re.search(r"^class \w+\(Part\):", source, re.M) and "with self._lock:" in source, name
