"""API keys: what another program shows to drive the bot through `/api/v1`, each with its scopes.

A key reads `tb_<id>_<secret>`. It is printed once, when it is made; the store keeps only its
id (shown as the key's prefix), name, scopes and the SHA-256 of its secret, so a copy of the
store opens nothing. A presented key is compared in constant time, and read from the store
on every request, so a key revoked by one process is refused by every other at once.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import from_iso, to_iso
from bot.store import Repository

#: What a key may do; a request needs the scope its endpoint names.
SCOPES = ("posts:read", "posts:write", "accounts:read", "webhooks:write")
#: How long a write's answer is kept under its key's Idempotency-Key (`web.api`; forgotten by the worker).
IDEMPOTENCY_WINDOW = timedelta(hours=24)
KEYS_META = "api_keys"  # meta: {key id: {name, scopes, sha256, created_at, revoked_at}}
_PRESENTED = re.compile(r"tb_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")


class KeyRefused(ValueError):
    """A key cannot be made or revoked as asked (an unknown scope, no such key); the message says why."""


@dataclass(frozen=True)
class ApiKey:
    """A key as the store keeps it (never its secret)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def prefix(self) -> str:
        """How the key is shown once made: enough to tell keys apart, nothing to use."""
        return f"tb_{self.id}_…"

    def allows(self, scope: str) -> bool:
        return self.revoked_at is None and scope in self.scopes


def create_key(store: Repository, name: str, scopes: Iterable[str], now: datetime) -> tuple[ApiKey, str]:
    """Make a key named `name` with `scopes`: it as kept, and the whole key, to be shown this once."""
    wanted = tuple(dict.fromkeys(scopes))
    unknown = [scope for scope in wanted if scope not in SCOPES]
    if unknown or not wanted:
        raise KeyRefused(f"unknown scope {unknown[0]!r}" if unknown else "a key needs at least one scope"
                        f" (scopes: {', '.join(SCOPES)})")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    kept = ApiKey(key_id, name.strip() or key_id, wanted, now)
    with store.transaction():
        keys = dict(store.get_meta(KEYS_META) or {})
        keys[key_id] = {"name": kept.name, "scopes": list(wanted), "sha256": _digest(secret),
                        "created_at": to_iso(now), "revoked_at": None}
        store.set_meta(KEYS_META, keys)
    return kept, f"tb_{key_id}_{secret}"


def list_keys(store: Repository) -> list[ApiKey]:
    """Every key made, revoked ones too, oldest first."""
    keys = [_key(key_id, doc) for key_id, doc in (store.get_meta(KEYS_META) or {}).items()]
    return sorted(keys, key=lambda key: (key.created_at, key.id))


def revoke_key(store: Repository, key_id: str, now: datetime) -> ApiKey:
    """Refuse the key from now on (it stays listed, revoked); `KeyRefused` if there is no such key."""
    key_id = key_id.removeprefix("tb_").split("_")[0]
    with store.transaction():
        keys = dict(store.get_meta(KEYS_META) or {})
        if key_id not in keys:
            raise KeyRefused(f"no key {key_id}")
        if keys[key_id]["revoked_at"] is None:
            keys[key_id] = {**keys[key_id], "revoked_at": to_iso(now)}
            store.set_meta(KEYS_META, keys)
        return _key(key_id, keys[key_id])


def authenticate(store: Repository, presented: str) -> ApiKey | None:
    """The live key `presented` is, or None (malformed, unknown, wrong secret, revoked)."""
    found = _PRESENTED.fullmatch(presented.strip())
    if found is None:
        return None
    doc = (store.get_meta(KEYS_META) or {}).get(found.group(1))
    if doc is None or not hmac.compare_digest(_digest(found.group(2)), doc["sha256"]):
        return None
    key = _key(found.group(1), doc)
    return key if key.revoked_at is None else None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(key_id: str, doc: dict) -> ApiKey:
    created = from_iso(doc["created_at"])
    assert created is not None
    return ApiKey(key_id, doc["name"], tuple(doc["scopes"]), created, from_iso(doc.get("revoked_at")))
