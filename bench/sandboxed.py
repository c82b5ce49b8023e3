"""A bench against the sandbox: one sandbox in a scratch folder, and each store measured against it in turn.

(The caller has put the project and tests/ on sys.path, as every bench does first.)
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from stores import FILE, POSTGRES

from conftest import start_sandbox, stop_process
from sandbox_helpers import SandboxControl


def measure_each_store(measure: Callable[[str, Path, SandboxControl], None]) -> None:
    """`measure(kind, scratch folder, sandbox)` for the file store, then PostgreSQL; the sandbox stopped after."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        server = start_sandbox(work / "sandbox")
        try:
            sandbox = SandboxControl(server.url)
            for kind in (FILE, POSTGRES):
                measure(kind, work, sandbox)
        finally:
            stop_process(server.process)
