"""Settings: read once from .env and the environment; a bad variable is named in one line."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.settings import SANDBOX_CLIENT_ID, SettingsError, load_settings

KEY = Fernet.generate_key().decode()
BASE = {"SECRET_KEY": "s" * 32, "TOKEN_KEY": KEY, "ADMIN_PASSWORD": "correct-horse"}


def settings_from(**env: str):
    return load_settings(dotenv_path=None, environ={**BASE, **env})


def test_without_x_credentials_the_bot_talks_to_the_sandbox() -> None:
    settings = settings_from(SANDBOX_PORT="8123")
    assert settings.sandbox
    assert settings.x_client_id == SANDBOX_CLIENT_ID
    assert settings.api_base == "http://127.0.0.1:8123"
    assert settings.authorize_url == "http://127.0.0.1:8123/i/oauth2/authorize"
    assert settings.token_url == "http://127.0.0.1:8123/2/oauth2/token"


def test_with_a_client_id_the_bot_talks_to_x() -> None:
    settings = settings_from(X_CLIENT_ID="abc", X_CLIENT_SECRET="shh")
    assert not settings.sandbox
    assert settings.api_base == "https://api.twitter.com"
    assert settings.authorize_url == "https://twitter.com/i/oauth2/authorize"
    assert settings.confidential_client


def test_both_bases_can_be_overridden_and_a_public_client_has_no_secret() -> None:
    settings = settings_from(X_CLIENT_ID="abc", X_API_BASE="https://api.x.com/",
                             X_AUTHORIZE_URL="https://x.com/i/oauth2/authorize")
    assert (settings.api_base, settings.authorize_url) == ("https://api.x.com", "https://x.com/i/oauth2/authorize")
    assert not settings.confidential_client


def test_defaults() -> None:
    settings = settings_from()
    assert settings.scopes == ("tweet.read", "tweet.write", "users.read", "offline.access", "media.write")
    assert settings.redirect_uri == "http://127.0.0.1:5000/oauth/callback"
    assert (settings.refresh_margin, settings.post_concurrency, settings.max_attempts) == (600, 16, 5)
    assert (settings.x_tier, settings.timezone, str(settings.store_path)) == ("payg", "UTC", "data/tweetbot.json")


def test_reading_ages_are_durations_earliest_first_and_the_budget_is_dollars() -> None:
    settings = settings_from(ANALYTICS_AGES="7d, 90s,1h,2w,90s", ANALYTICS_BUDGET="$2.50")
    assert settings.analytics_ages == (timedelta(seconds=90), timedelta(hours=1), timedelta(days=7),
                                       timedelta(weeks=2))
    assert settings.analytics_budget == Decimal("2.50")
    assert settings.masked()["analytics_ages"] == "90s,1h,1w,2w"
    assert settings_from().analytics_ages == (timedelta(hours=1), timedelta(hours=24), timedelta(days=7))
    assert settings_from(ANALYTICS_BUDGET="0").analytics_budget == 0


def test_settings_are_frozen() -> None:
    settings = settings_from()
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("name, value, expected", [
    ("SECRET_KEY", "", "SECRET_KEY is not set"),
    ("TOKEN_KEY", "", "TOKEN_KEY is not set"),
    ("TOKEN_KEY", "not-a-key", "TOKEN_KEY is malformed"),
    ("ADMIN_PASSWORD", "short", "ADMIN_PASSWORD is too short"),
    ("PORT", "eighty", "PORT='eighty' is not a whole number"),
    ("REFRESH_MARGIN", "7001", "REFRESH_MARGIN=7001 is out of range"),
    ("TIMEZONE", "Mars/Olympus", "TIMEZONE='Mars/Olympus' is not a time zone"),
    ("X_TIER", "gold", "X_TIER='gold' is not one of"),
    ("X_API_BASE", "api.x.com", "X_API_BASE='api.x.com' is not a URL"),
    ("X_SCOPES", "tweet.read", "X_SCOPES='tweet.read' must include"),
    ("HTTP_TIMEOUT", "soon", "HTTP_TIMEOUT='soon' is not a number"),
    ("ANALYTICS_AGES", "1h,tomorrow", "ANALYTICS_AGES='1h,tomorrow': 'tomorrow' is not a duration"),
    ("ANALYTICS_AGES", "0s", "ANALYTICS_AGES='0s': '0s' is not a duration"),
    ("ANALYTICS_BUDGET", "a lot", "ANALYTICS_BUDGET='a lot' is not an amount of dollars"),
    ("ANALYTICS_BUDGET", "-1", "ANALYTICS_BUDGET='-1' is not an amount of dollars"),
])
def test_a_bad_variable_is_named_in_one_line(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from(**{name: value})
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_the_environment_wins_over_the_dotenv_file(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"SECRET_KEY={'f' * 32}\nTOKEN_KEY={KEY}\nADMIN_PASSWORD=from-the-file\nPORT=7000\n")
    settings = load_settings(dotenv_path=dotenv, environ={"PORT": "7001"})
    assert (settings.port, settings.admin_password) == (7001, "from-the-file")


def test_every_variable_is_documented_in_env_example() -> None:
    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    source = (Path(__file__).resolve().parents[1] / "bot" / "settings.py").read_text()
    import re
    read = set(re.findall(r'env\.\w+\("([A-Z_]+)"', source)) - {"DYNO"}
    documented = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert read and read == documented
