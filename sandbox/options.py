"""What a sandbox world starts from (`SandboxConfig`) and the switches it runs by (`Options`).

`SandboxConfig` is fixed when the app is made (`python -m sandbox`'s flags); `Options`
are the switches `POST /_sandbox/config` changes at run time, each checked here before
any is applied, so a bad request changes nothing. Defaults follow `x-api-facts.md`:
every "unconfirmed" fact there is a switch, defaulting to the harsher reading.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sandbox.limits import TIERS, Window

DEFAULT_USERS: tuple[tuple[str, str], ...] = (
    ("sandbox_alice", "Alice Sandbox"),
    ("sandbox_bob", "Bob Sandbox"),
    ("sandbox_carol", "Carol Sandbox"),
)


@dataclass(frozen=True)
class ClientSpec:
    """An OAuth client as registered in X's developer portal. No secret = public client."""

    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class SandboxConfig:
    """What a fresh (or reset) world starts with."""

    clients: tuple[ClientSpec, ...] = (
        ClientSpec("sandbox-client", "sandbox-secret", ("http://127.0.0.1:5000/oauth/callback",)),
    )
    users: tuple[tuple[str, str], ...] = DEFAULT_USERS
    tier: str = "payg"
    seed: int = 0
    access_token_lifetime: int = 7200  # X's two hours; demos use less, to show refreshes soon
    media_processing_seconds: float = 0  # 0: GIF/video processing moves one step per STATUS poll


@dataclass
class Options:
    """Switches the control API can change; defaults follow `x-api-facts.md`.

    Each "unconfirmed" fact there is a switch here, defaulting to the harsher reading.
    """

    access_token_lifetime: int = 7200
    code_lifetime: int = 30
    refresh_token_lifetime: int | None = None  # X documents none (the "six months" is unconfirmed)
    reuse_revokes_chain: bool = True
    refresh_error: str = "invalid_request"  # some report invalid_grant: the bot must handle both
    tier: str = "payg"
    rate_limits: bool = True
    limit_overrides: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    usage_capped: bool = False
    credits_depleted: bool = False
    duplicate_window: int = 24 * 60 * 60
    too_long_status: int = 400
    reply_policy: str = "summoned"  # "open", "summoned" (replies to others need a mention), "no_replies"
    text_rewrite: bool = True  # X returns text with & < > escaped, URLs as t.co links, one more for media
    media_processing: str = "succeeded"  # "failed": every GIF/video fails; "fail_next": only the next one
    media_processing_seconds: float = 0.0  # > 0: processing takes this long on the sandbox clock
    accept_body_secret: bool = False  # client_secret in the form instead of Basic auth (unconfirmed)
    lookup_not_found_status: int = 200  # a lookup of a missing post/user: 200 + errors (X), or the 404 some logs show
    app_owner: str | None = None  # the user id that owns the developer app: their own timeline is an owned read
    credit_usd: float | None = None  # the pay-per-use balance reads spend (sandbox/charges.py); None: no limit

    @classmethod
    def starting(cls, config: SandboxConfig) -> Options:
        """The switches a fresh world of `config` starts with."""
        return cls(tier=config.tier, access_token_lifetime=config.access_token_lifetime,
                   media_processing_seconds=float(config.media_processing_seconds))

    def update(self, changes: dict[str, Any]) -> None:
        """Apply control-API changes; ValueError names the first bad one (nothing applied then)."""
        staged = {}
        names = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"unknown option {name!r} (known: {', '.join(sorted(names))})")
            staged[name] = checked(name, value)
        for name, value in staged.items():
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        """The JSON form for the control API."""
        return asdict(self)


CHOICES: dict[str, tuple[Any, ...]] = {
    "refresh_error": ("invalid_request", "invalid_grant"),
    "tier": TIERS,
    "too_long_status": (400, 403),
    "reply_policy": ("open", "summoned", "no_replies"),
    "media_processing": ("succeeded", "failed", "fail_next"),
    "lookup_not_found_status": (200, 404),
}


def checked(name: str, value: Any) -> Any:
    """The value if it suits option `name` (as stored), else ValueError saying what would."""
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise ValueError(f"{name} must be one of {list(CHOICES[name])}")
        return value
    special = SPECIAL_CHECKS.get(name)
    if special is not None:
        return special(name, value)
    default = getattr(Options(), name)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if isinstance(default, int):
        if not _whole(value) or value < 1:
            raise ValueError(f"{name} must be a positive whole number")
        return value
    return value


def _whole(value: Any) -> bool:
    """A JSON whole number (true and false are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _seconds(name: str, value: Any) -> float:
    """`media_processing_seconds`: 0 to a day, as a float."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 86400:
        raise ValueError(f"{name} must be a number of seconds from 0 to 86400")
    return float(value)


def _lifetime(name: str, value: Any) -> int | None:
    """`refresh_token_lifetime`: positive whole seconds, or None for no expiry."""
    if value is not None and (not _whole(value) or value < 1):
        raise ValueError(f"{name} must be a positive whole number of seconds or null")
    return value


def _overrides(name: str, value: Any) -> dict[str, list[dict[str, Any]]]:
    """`limit_overrides`: endpoint key → list of windows, each as `Window.from_json` takes it."""
    if not isinstance(value, dict):
        raise ValueError("limit_overrides must map endpoint keys to lists of windows")
    for endpoint, windows in value.items():
        if not isinstance(windows, list):
            raise ValueError(f"limit_overrides[{endpoint!r}] must be a list of windows")
        for window in windows:
            Window.from_json(window)
    return value


def _user_id(name: str, value: Any) -> str | None:
    """`app_owner`: a user id (digits), or None for an app no connected user owns."""
    if value is not None and not (isinstance(value, str) and value.isdigit()):
        raise ValueError(f"{name} must be a user id (a string of digits) or null")
    return value


def _dollars(name: str, value: Any) -> float | None:
    """`credit_usd`: dollars from 0, or None for no limit."""
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
        raise ValueError(f"{name} must be a number of dollars from 0, or null")
    return None if value is None else float(value)


SPECIAL_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "app_owner": _user_id,
    "credit_usd": _dollars,
    "media_processing_seconds": _seconds,
    "refresh_token_lifetime": _lifetime,
    "limit_overrides": _overrides,
}
