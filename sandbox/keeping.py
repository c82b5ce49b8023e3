"""The sandbox's state file: what X would remember across a restart (`python -m sandbox --state FILE`).

Without a file the world lives in memory only (tests want that: each starts clean).
With one, the world starts from it and every request that may change something writes
it again before its answer leaves, so a client never holds a token, a post id or a
media id that the next start would not know. Real X does not forget a token chain
because it restarted; a sandbox that did would break every account the bot holds.

Kept: users, clients, codes, token chains, posts, media, the switches and the clock's
offset. Not kept: faults, request counts and rate windows (a test's traffic, not the
world's). The file is a pickle of those records, private (0600) from its first byte and
replaced atomically; it is read with an unpickler that builds nothing but the sandbox's
own records and Python's plain values. A file that cannot be read stops the sandbox
with one line and is left as it is.
"""
from __future__ import annotations

import io
import os
import pickle
import threading
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from sandbox.state import World, current_world

FORMAT = 1
READ_ONLY_METHODS = ("GET", "HEAD", "OPTIONS")
# The only classes the file may name (dicts, lists, tuples, strings and bytes need none: pickle has opcodes for them).
_ALLOWED = {("sandbox.records", name) for name in
            ("User", "Client", "AuthCode", "Chain", "AccessToken", "RefreshToken", "Post", "Media")
            } | {("sandbox.options", "Options")}


class StateFileError(Exception):
    """The state file exists but cannot be used (the message is one line, naming the file)."""


class _RecordsOnly(pickle.Unpickler):
    """An unpickler that refuses any class but the sandbox's records and plain containers."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not a sandbox record")
        return super().find_class(module, name)


def load(world: World, path: Path) -> bool:
    """Fill `world` from `path`; False when there is no file yet. StateFileError when it is unusable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateFileError(f"sandbox: cannot read its state file {path}: {exc.strerror}") from exc
    unusable = StateFileError(f"sandbox: {path} is damaged or not a state file this sandbox wrote; "
                              f"move it away to start with a new world")
    try:
        kept = _RecordsOnly(io.BytesIO(data)).load()
    except Exception as exc:  # noqa: BLE001 - any damage reads the same to the person who has to act
        raise unusable from exc
    if not isinstance(kept, dict) or kept.get("format") != FORMAT:
        raise unusable
    world.restore(kept["world"])
    return True


class StateFile:
    """Writes the world to `path` after each request that may have changed it, one write at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writing = threading.Lock()  # the newest snapshot is always the last one written

    def save(self, world: World) -> None:
        """Write the world atomically: a private temporary file, flushed, then renamed over the old one."""
        with self._writing:
            data = world.answer(lambda: pickle.dumps({"format": FORMAT, "world": world.kept()},
                                                     protocol=pickle.HIGHEST_PROTOCOL))
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)

    def install(self, app: Flask) -> None:
        """Save after every request that is not a read, before its answer is sent."""
        def after(response: Response) -> Response:
            if request.method not in READ_ONLY_METHODS:
                self.save(current_world())
            return response

        app.after_request(after)
