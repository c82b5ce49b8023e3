"""Settings: the environment, read once at start-up into one frozen object.

Nothing here runs at import time. `load_settings()` reads `.env` (python-dotenv;
the real environment wins), checks every variable and returns `Settings`. A
missing or malformed variable raises `SettingsError` whose message is one line
naming the variable and saying what is expected; the CLI prints just that line.

Without `X_CLIENT_ID` the bot talks to the local sandbox (a registered sandbox
client); with it, to X. Both bases can be overridden.
"""
from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet
from dotenv import dotenv_values

X_API_BASE = "https://api.twitter.com"
X_AUTHORIZE_URL = "https://twitter.com/i/oauth2/authorize"
REQUIRED_SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access")
MEDIA_SCOPE = "media.write"  # uploads; an account granted without it can post text only
DEFAULT_SCOPES = (*REQUIRED_SCOPES, MEDIA_SCOPE)
SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
TIERS = ("payg", "free", "basic", "pro", "enterprise")
# Platforms whose processes share no disk, each known by a variable it sets in every process.
PLATFORMS = {"DYNO": "Heroku", "RENDER": "Render", "RAILWAY_ENVIRONMENT": "Railway", "FLY_APP_NAME": "Fly.io"}
_DURATION = re.compile(r"(?P<count>\d+)\s*(?P<unit>[smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class SettingsError(Exception):
    """A variable is missing or malformed; the message names it in one line."""


@dataclass(frozen=True)
class Settings:
    secret_key: str
    token_keys: tuple[str, ...]
    admin_password: str
    x_client_id: str
    x_client_secret: str | None
    scopes: tuple[str, ...]
    api_base: str
    authorize_url: str
    public_url: str
    sandbox: bool
    sandbox_port: int
    port: int
    store_path: Path
    timezone: str
    refresh_margin: int
    refresh_every: int
    x_tier: str
    post_concurrency: int
    api_rate: int  # API requests a key may make in a minute of the clock, all web processes together
    max_attempts: int
    retry_backoff: float
    http_timeout: float
    alert_webhook_url: str | None
    media_retention_days: int
    generators_file: Path
    platform: str | None = None  # the PaaS running this process (PLATFORMS), None elsewhere
    metrics_token: str | None = None  # a bearer token that may read /metrics without signing in
    database_url: str | None = None
    database_pool_size: int = 4  # connections each process keeps at most (PostgreSQL)
    # Whose X-Forwarded-For/-Proto/-Host the web app believes: a number of proxy hops in front of it
    # (0: none, the client's own address counts), or the networks its proxies are in.
    trusted_proxies: int | tuple[str, ...] = 0
    # Webhooks (bot.webhooks): each attempt's timeout, the gap before the first retry (each later one grows),
    # and how many failed attempts in a row pause a subscription.
    webhook_timeout: float = 5.0
    webhook_backoff: float = 5.0
    webhook_pause_after: int = 10
    x_app_owner: str | None = None  # the account (@handle or user id) that owns the X developer app
    # How posts did (bot.analytics): the ages each posted post is read at, earliest first, and the most
    # its reads may cost in a calendar month (UTC), in dollars (0: no reading at all).
    analytics_ages: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=24), timedelta(days=7))
    analytics_budget: Decimal = Decimal("1.00")

    def owns_app(self, account_id: str, username: str | None) -> bool:
        """Whether this account owns the developer app: its own timeline is then an owned read ($0.001)."""
        owner = (self.x_app_owner or "").removeprefix("@").lower()
        return bool(owner) and owner in (account_id, (username or "").lower())

    def post_url(self, tweet_id: str, username: str | None) -> str | None:
        """Where a person sees post `tweet_id`: on X, or at the post on the sandbox's timeline page
        (which needs the author's username: None without it)."""
        if self.sandbox:
            return f"{self.api_base.rstrip('/')}/{username}#post-{tweet_id}" if username else None
        if username is None:
            return f"https://x.com/i/web/status/{tweet_id}"
        return f"https://x.com/{username}/status/{tweet_id}"

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + "/oauth/callback"

    @property
    def token_url(self) -> str:
        return self.api_base.rstrip("/") + "/2/oauth2/token"

    @property
    def revoke_url(self) -> str:
        return self.api_base.rstrip("/") + "/2/oauth2/revoke"

    @property
    def confidential_client(self) -> bool:
        return bool(self.x_client_secret)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def masked(self) -> dict[str, str]:
        """Every setting as text for `tweetbot check`, secrets masked."""
        shown: dict[str, str] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in _SECRET_FIELDS:
                value = "set" if value else "not set"  # neither a secret's first characters nor its length
            elif name == "database_url" and value:
                value = _without_password(value)
            elif name == "analytics_ages":
                value = ",".join(duration_text(age) for age in value)
            shown[name] = str(value)
        shown["redirect_uri"] = self.redirect_uri
        return shown


_SECRET_FIELDS = {"secret_key", "token_keys", "admin_password", "x_client_secret", "metrics_token"}


def parse_duration(text: str) -> timedelta | None:
    """A duration as a person writes it: "90s", "45m", "1h", "3d", "2w"; None if it is not one (or is 0)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match["count"]) == 0:
        return None
    return timedelta(seconds=int(match["count"]) * _UNIT_SECONDS[match["unit"]])


def duration_text(span: timedelta) -> str:
    """A duration as ANALYTICS_AGES takes it, in its largest whole unit: "90s", "1h", "7d", "2w"."""
    seconds = int(span.total_seconds())
    unit = next(unit for unit in "wdhms" if seconds % _UNIT_SECONDS[unit] == 0)
    return f"{seconds // _UNIT_SECONDS[unit]}{unit}"


def _without_password(url: str) -> str:
    """A database URL with its password replaced, for showing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def read_environment(dotenv_path: str | os.PathLike[str] | None = ".env",
                     environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `.env` file's values overlaid with the real environment (which wins)."""
    values: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


def load_settings(dotenv_path: str | os.PathLike[str] | None = ".env",
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `.env` and the environment, or raise `SettingsError`."""
    env = _Env(read_environment(dotenv_path, environ))
    client_id = env.text("X_CLIENT_ID", "")
    sandbox = not client_id
    sandbox_port = env.integer("SANDBOX_PORT", 8100, low=1, high=65535)
    client_secret: str | None
    if sandbox:
        local = f"http://127.0.0.1:{sandbox_port}"
        default_api, default_authorize = local, local + "/i/oauth2/authorize"
        client_id = SANDBOX_CLIENT_ID
        client_secret = env.text("X_CLIENT_SECRET", SANDBOX_CLIENT_SECRET)
    else:
        default_api, default_authorize = X_API_BASE, X_AUTHORIZE_URL
        client_secret = env.text("X_CLIENT_SECRET", "") or None
    port = env.integer("PORT", 5000, low=1, high=65535)
    return Settings(
        secret_key=env.secret("SECRET_KEY"),
        token_keys=env.fernet_keys("TOKEN_KEY"),
        admin_password=env.secret("ADMIN_PASSWORD", min_length=8),
        x_client_id=client_id,
        x_client_secret=client_secret,
        scopes=env.scopes("X_SCOPES"),
        api_base=env.url("X_API_BASE", default_api),
        authorize_url=env.url("X_AUTHORIZE_URL", default_authorize),
        public_url=env.url("PUBLIC_URL", f"http://127.0.0.1:{port}"),
        sandbox=sandbox,
        sandbox_port=sandbox_port,
        port=port,
        store_path=Path(env.text("STORE_PATH", "data/tweetbot.json")),
        timezone=env.timezone("TIMEZONE", "UTC"),
        refresh_margin=env.integer("REFRESH_MARGIN", 600, low=1, high=7000),
        refresh_every=env.integer("REFRESH_EVERY", 60, low=1, high=3600),
        x_tier=env.choice("X_TIER", "payg", TIERS),
        post_concurrency=env.integer("POST_CONCURRENCY", 16, low=1, high=64),
        api_rate=env.integer("API_RATE", 120, low=1, high=100_000),
        max_attempts=env.integer("MAX_ATTEMPTS", 5, low=1, high=100),
        retry_backoff=env.number("RETRY_BACKOFF", 15.0, low=0.1, high=3600.0),
        http_timeout=env.number("HTTP_TIMEOUT", 15.0, low=0.1, high=300.0),
        alert_webhook_url=env.url("ALERT_WEBHOOK_URL", "") or None,
        media_retention_days=env.integer("MEDIA_RETENTION_DAYS", 7, low=0, high=3650),
        generators_file=Path(env.text("GENERATORS_FILE", "tweetbot.toml")),
        platform=env.platform(),
        database_url=env.database_url("DATABASE_URL"),
        database_pool_size=env.integer("DATABASE_POOL_SIZE", 4, low=1, high=100),
        metrics_token=env.secret("METRICS_TOKEN") if env.text("METRICS_TOKEN", "") else None,
        trusted_proxies=env.proxies("TRUSTED_PROXIES", default=1 if env.platform() else 0),
        webhook_timeout=env.number("WEBHOOK_TIMEOUT", 5.0, low=0.1, high=60.0),
        webhook_backoff=env.number("WEBHOOK_BACKOFF", 5.0, low=0.01, high=3600.0),
        webhook_pause_after=env.integer("WEBHOOK_PAUSE_AFTER", 10, low=1, high=1000),
        x_app_owner=env.text("X_APP_OWNER", "") or None,
        analytics_ages=env.durations("ANALYTICS_AGES", "1h,24h,7d"),
        analytics_budget=env.dollars("ANALYTICS_BUDGET", "1.00"),
    )


@dataclass(frozen=True)
class RemoteSettings:
    """What the command line needs to drive a deployed bot through its API (`bot.remote`): where it is,
    the key, and the operator's clock and X tier as locally; no secret of the bot's own, no store."""

    url: str
    api_key: str
    timezone: str
    x_tier: str
    http_timeout: float

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def remote_url(url: str | None = None, dotenv_path: str | os.PathLike[str] | None = ".env",
               environ: Mapping[str, str] | None = None) -> str | None:
    """The deployed bot to talk to: `url` (a command's --url), else TWEETBOT_URL; None: the local store."""
    return url or (read_environment(dotenv_path, environ).get("TWEETBOT_URL") or "").strip() or None


def load_remote_settings(url: str, dotenv_path: str | os.PathLike[str] | None = ".env",
                         environ: Mapping[str, str] | None = None) -> RemoteSettings:
    """The settings of a command run against the bot at `url`, or `SettingsError` (TWEETBOT_API_KEY unset…)."""
    env = _Env({**read_environment(dotenv_path, environ), "TWEETBOT_URL": url})
    key = env.text("TWEETBOT_API_KEY", "")
    if not key:
        raise SettingsError("TWEETBOT_API_KEY is not set: make a key on the deployed bot with "
                            "`tweetbot keys create --name laptop --scope posts:read --scope posts:write "
                            "--scope accounts:read` and set it beside TWEETBOT_URL")
    return RemoteSettings(url=env.url("TWEETBOT_URL", url), api_key=key, timezone=env.timezone("TIMEZONE", "UTC"),
                          x_tier=env.choice("X_TIER", "payg", TIERS),
                          http_timeout=env.number("HTTP_TIMEOUT", 15.0, low=0.1, high=300.0))


class _Env:
    """Typed reads of the variables; each failure names the variable."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)

    def text(self, name: str, default: str) -> str:
        """The variable's value; unset and empty both mean the default."""
        return (self.values.get(name) or "").strip() or default

    def database_url(self, name: str) -> str | None:
        """A PostgreSQL URL (postgres:// or postgresql://), or None when unset (the file store)."""
        value = self.text(name, "")
        if value and not value.startswith(("postgres://", "postgresql://")):
            raise SettingsError(f"{name} must be a PostgreSQL URL (postgresql://user:password@host:5432/name)")
        return value or None

    def secret(self, name: str, min_length: int = 16) -> str:
        value = self.text(name, "")
        if not value:
            raise SettingsError(f"{name} is not set: run `tweetbot init` to write a .env with fresh secrets")
        if len(value) < min_length:
            raise SettingsError(f"{name} is too short: expected at least {min_length} characters")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a whole number (expected {low} to {high})") from None
        if not low <= value <= high:
            raise SettingsError(f"{name}={value} is out of range (expected {low} to {high})")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name, str(default))
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a number (expected {low} to {high})") from None
        if not low <= value <= high:
            raise SettingsError(f"{name}={value} is out of range (expected {low} to {high})")
        return value

    def durations(self, name: str, default: str) -> tuple[timedelta, ...]:
        """Comma-separated durations such as "90s,1h,24h,7d" (s, m, h, d, w), returned earliest first."""
        raw = self.text(name, default)
        found = []
        for word in raw.split(","):
            span = parse_duration(word)
            if span is None:
                raise SettingsError(f"{name}={raw!r}: {word.strip()!r} is not a duration "
                                    "(expected numbers with s, m, h, d or w, such as 90s,1h,24h,7d)")
            found.append(span)
        return tuple(sorted(set(found)))

    def dollars(self, name: str, default: str) -> Decimal:
        raw = self.text(name, default).strip().removeprefix("$")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise SettingsError(f"{name}={raw!r} is not an amount of dollars (expected e.g. 1.00; 0 turns it off)") \
                from None
        if not value.is_finite() or value < 0:
            raise SettingsError(f"{name}={raw!r} is not an amount of dollars (expected 0 or more)")
        return value

    def url(self, name: str, default: str) -> str:
        value = self.text(name, default).rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise SettingsError(f"{name}={value!r} is not a URL (expected http://… or https://…)")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            raise SettingsError(f"{name}={value!r} is not one of {', '.join(choices)}")
        return value

    def timezone(self, name: str, default: str) -> str:
        value = self.text(name, default)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"{name}={value!r} is not a time zone (expected e.g. UTC or Europe/Berlin)") from None
        return value

    def scopes(self, name: str) -> tuple[str, ...]:
        raw = self.text(name, " ".join(DEFAULT_SCOPES))
        scopes = tuple(raw.replace(",", " ").split())
        missing = [scope for scope in REQUIRED_SCOPES if scope not in scopes]
        if missing:
            # Posting needs all four: the reads let the worker check whether an uncertain post went out.
            raise SettingsError(f"{name}={raw!r} must include {', '.join(REQUIRED_SCOPES)} "
                                f"(missing {', '.join(missing)})")
        return scopes

    def fernet_keys(self, name: str) -> tuple[str, ...]:
        raw = self.text(name, "")
        if not raw:
            raise SettingsError(f"{name} is not set: run `tweetbot init` to write a .env with fresh secrets")
        keys = tuple(k.strip() for k in raw.split(",") if k.strip())
        for key in keys:
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise SettingsError(
                    f"{name} is malformed: expected comma-separated Fernet keys "
                    "(32 url-safe base64 bytes), newest first"
                ) from None
        return keys


    def proxies(self, name: str, default: int) -> int | tuple[str, ...]:
        """A number of hops (0 to 5), or comma-separated addresses and CIDR networks; unset: `default`."""
        raw = self.text(name, str(default))
        if raw.isdigit():
            return self.integer(name, default, low=0, high=5)
        networks = []
        for part in (p.strip() for p in raw.split(",")):
            try:
                networks.append(str(ipaddress.ip_network(part, strict=False)))
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not a number of proxies (0 to 5) nor a list of "
                                    "addresses or networks (e.g. 10.0.0.0/8, 127.0.0.1)") from None
        return tuple(networks)

    def platform(self) -> str | None:
        """The platform (PLATFORMS) whose variable is set, or None."""
        return next((name for variable, name in PLATFORMS.items() if self.text(variable, "")), None)
