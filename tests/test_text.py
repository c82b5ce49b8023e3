"""xtext (X's weighted length) against twitter-text's conformance suite, plus the bot-facing helpers.

Every case of validate.yml's length sections and URL sections runs; each
section test prints how many of its cases ran and passed, and fails if the
file does not hold exactly the number of cases this suite was written for.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import xtext as text
from xtext import (
    MAX_WEIGHTED_LENGTH,
    V2,
    V3,
    LengthConfig,
    ParsedPost,
    contains_url,
    extract_urls,
    fits,
    length_error,
    parse_post,
    weighted_length,
)

ROOT = Path(__file__).resolve().parents[1]

# section -> (config it is checked against, number of cases in validate.yml)
LENGTH_SECTIONS = {
    "WeightedTweetsWithDiscountedEmojiCounterTest": (V3, 22),
    "UnicodeDirectionalMarkerCounterTest": (V3, 2),
    "WeightedTweetsCounterTest": (V2, 20),
}
URL_SECTIONS = {"urls": 24, "urls_without_protocol": 5}

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
URL = "https://example.com/some/long/path/that/is/longer/than/23"


@pytest.fixture(scope="module")
def suite(reference: Path) -> dict[str, list[dict[str, Any]]]:
    with (reference / "twitter-text" / "validate.yml").open(encoding="utf-8") as f:
        return yaml.safe_load(f)["tests"]


def as_twitter_text(parsed: ParsedPost) -> dict[str, Any]:
    return {
        "weightedLength": parsed.weighted_length,
        "valid": parsed.valid,
        "permillage": parsed.permillage,
        "displayRangeStart": parsed.display_range[0],
        "displayRangeEnd": parsed.display_range[1],
        "validRangeStart": parsed.valid_range[0],
        "validRangeEnd": parsed.valid_range[1],
    }


def length_mismatch(case: dict[str, Any], config: LengthConfig) -> str | None:
    got = as_twitter_text(parse_post(case["text"], config))
    diff = {key: (got[key], want) for key, want in case["expected"].items() if got[key] != want}
    return f"{case['description']}: (got, expected) {diff}" if diff else None


def url_mismatch(case: dict[str, Any]) -> str | None:
    found = extract_urls(case["text"])
    whole = found == [case["text"]]
    if whole != case["expected"] or (case["expected"] and not contains_url(case["text"])):
        return f"{case['description']}: {case['text']!r} -> {found!r}, expected valid={case['expected']}"
    return None


def report(section: str, ran: int, failures: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\n[validate.yml] {section}: {ran} cases ran, {ran - len(failures)} passed")


# --------------------------------------------------------------------------
# The conformance suite
# --------------------------------------------------------------------------


@pytest.mark.parametrize("section", LENGTH_SECTIONS)
def test_length_conformance(
    suite: dict[str, list[dict[str, Any]]], section: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config, expected_count = LENGTH_SECTIONS[section]
    ran, failures = 0, []
    for case in suite[section]:
        ran += 1
        if problem := length_mismatch(case, config):
            failures.append(problem)
    report(section, ran, failures, capsys)
    assert not failures, "\n".join(failures)
    assert ran == len(suite[section]) == expected_count > 0


@pytest.mark.parametrize("section", URL_SECTIONS)
def test_url_conformance(
    suite: dict[str, list[dict[str, Any]]], section: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A case is a valid URL exactly when extraction returns the whole text."""
    ran, failures = 0, []
    for case in suite[section]:
        ran += 1
        if problem := url_mismatch(case):
            failures.append(problem)
    report(section, ran, failures, capsys)
    assert not failures, "\n".join(failures)
    assert ran == len(suite[section]) == URL_SECTIONS[section] > 0


def test_url_sections_hold_both_verdicts(suite: dict[str, list[dict[str, Any]]]) -> None:
    verdicts = [case["expected"] for case in suite["urls"]]
    assert verdicts.count(True) == 13 and verdicts.count(False) == 11


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_embedded_configs_equal_the_reference_files(reference: Path, version: str) -> None:
    data = json.loads((reference / "twitter-text" / f"{version}.json").read_text(encoding="utf-8"))
    assert getattr(text, f"{version.upper()}_JSON") == data
    assert LengthConfig.from_json(data) == getattr(text, version.upper())


def test_v3_is_the_default_and_counts_emoji() -> None:
    assert MAX_WEIGHTED_LENGTH == V3.max_weighted_tweet_length == 280
    assert V3.emoji_parsing_enabled and not V2.emoji_parsing_enabled
    assert parse_post(FAMILY) == parse_post(FAMILY, V3)
    assert weighted_length(FAMILY) == 2 and parse_post(FAMILY, V2).weighted_length == 11


def test_nothing_is_read_from_disk_at_run_time() -> None:
    code = (
        "import builtins, io\n"
        "def refuse(*a, **k): raise AssertionError(f'file opened: {a!r}')\n"
        "builtins.open = io.open = refuse\n"
        "import xtext as t\n"
        "assert t.weighted_length('hi https://example.com ' + chr(0x1f431)) == 29\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------
# Weights beyond the suite
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("post", "v3", "v2"),
    [
        ("hello", 5, 5),
        ("cafe\u0301", 4, 4),  # NFC makes one character of e + accent
        ("日本語", 6, 6),
        ("\U0001f1ef\U0001f1f5", 2, 4),  # flag
        ("#\ufe0f\u20e3", 2, 5),  # keycap
        ("\xa9", 1, 1),  # © alone is text
        ("\xa9\ufe0f", 2, 3),  # ©️ is an emoji
        ("\u2764\ufe0f", 2, 4),  # ❤️
        ("\U0001f44d\U0001f3fd", 2, 4),  # 👍🏽
        ("\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", 2, 14),
        ("\U0001f9d1\U0001f3fd\u200d\U0001f91d\u200d\U0001f9d1\U0001f3fb", 2, 12),
        ("see www.example.org.", 28, 28),  # 4 + 23 for the link + 1
        ("mail bob@example.com", 20, 20),  # twitter-text links no e-mail address
    ],
)
def test_weights(post: str, v3: int, v2: int) -> None:
    assert weighted_length(post) == parse_post(post, V3).weighted_length == v3
    assert parse_post(post, V2).weighted_length == v2


def test_ranges_count_utf16_code_units_of_the_original_text() -> None:
    parsed = parse_post("\U0001f431" * 141)
    assert (parsed.weighted_length, parsed.valid, parsed.permillage) == (282, False, 1007)
    assert parsed.display_range == (0, 281) and parsed.valid_range == (0, 279)
    assert parse_post("").display_range == parse_post("").valid_range == (0, 0)


def test_counting_only_shortens_links_twitter_text_shortens() -> None:
    """extract_urls is broader; counting follows twitter-text (the safe side)."""
    for link in ["http://user:pw@example.com/x", "http://192.168.0.1/index.html", "http://[::1]:80/a"]:
        assert contains_url(link) and extract_urls(link) == [link]
        assert weighted_length(link) == len(link)


# --------------------------------------------------------------------------
# fits / length_error
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "post",
    ["x" * 280, "界" * 140, FAMILY * 140, "x" * 256 + " " + URL + "/" + "p" * 300, "A\u030a" * 280],
)
def test_fits(post: str) -> None:
    assert fits(post)
    assert length_error(post) is None


@pytest.mark.parametrize(
    ("post", "reason"),
    [
        ("", "empty post"),
        (" \n\t\u3000", "empty post (only whitespace)"),
        ("abcd\ufffe", "contains an invalid character U+FFFE at position 4"),
        ("\ufeffhello", "contains an invalid character U+FEFF at position 0"),
        ("x" * 312, "312 of 280 weighted characters (32 too many)"),
        ("x" * 281, "281 of 280 weighted characters (1 too many)"),
        ("界" * 141, "282 of 280 weighted characters (2 too many)"),
        ("x" * 258 + " " + URL, "282 of 280 weighted characters (2 too many)"),
    ],
)
def test_length_error(post: str, reason: str) -> None:
    assert length_error(post) == reason
    assert not fits(post)


def test_fits_agrees_with_length_error_and_parse_post(suite: dict[str, list[dict[str, Any]]]) -> None:
    posts = [case["text"] for section in LENGTH_SECTIONS for case in suite[section]]
    posts += [case["text"] for case in suite["tweets"]]
    for post in posts:
        assert fits(post) == (length_error(post) is None) == parse_post(post).valid, post[:40]


# --------------------------------------------------------------------------
# URL extraction beyond the suite
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("post", "urls"),
    [
        ("see https://example.com/a and www.foo.org.", ["https://example.com/a", "www.foo.org"]),
        ("No links. None at all.", []),
        ("https://t.co/abcdef/extra", ["https://t.co/abcdef"]),
        ("(https://en.wikipedia.org/wiki/Primer_(film))", ["https://en.wikipedia.org/wiki/Primer_(film)"]),
        ("visit 日本.example.com/path today", ["example.com/path"]),
        ("HTTPS://EXAMPLE.COM/x?q=1.", ["HTTPS://EXAMPLE.COM/x?q=1"]),
        ("mail bob@example.com", []),
    ],
)
def test_extract_urls(post: str, urls: list[str]) -> None:
    assert extract_urls(post) == urls
    assert contains_url(post) == bool(urls)
