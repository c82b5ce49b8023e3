"""How stored media are named: by the SHA-256 of their bytes (hex), each distinct file once, in both stores.

The queue names a new file by `digest_of` before the store keeps it; the store checks every digest it is
asked for (`checked_digest`: nothing else is looked up, so no name reaches outside the media) and every
byte it hands back (`checked_bytes`: a damaged file or row is said, never sent to X).
"""
from __future__ import annotations

import hashlib
import re

from bot.store.errors import RecordMissing, StoreDamaged

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def digest_of(data: bytes) -> str:
    """The name bytes are kept under: their SHA-256, hex."""
    return hashlib.sha256(data).hexdigest()


def is_digest(name: object) -> bool:
    """Whether `name` can name stored media: 64 lowercase hex digits."""
    return isinstance(name, str) and _DIGEST.match(name) is not None


def checked_digest(digest: str) -> str:
    """`digest` if it can name stored media (64 lowercase hex), else `RecordMissing`: nothing else
    is ever looked up, so no digest can reach outside the media folder."""
    if not is_digest(digest):
        raise RecordMissing(f"no media {digest!r} (not a SHA-256 hex digest)")
    return digest


def checked_bytes(digest: str, data: bytes, where: str) -> bytes:
    """`data` if it is what `digest` names, else `StoreDamaged` naming both (a damaged file or row)."""
    if digest_of(data) != digest:
        raise StoreDamaged(f"the media {digest} in {where} does not match its digest ({len(data):,} bytes)")
    return data
