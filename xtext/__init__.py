"""xtext: X's weighted post length and URL detection, in pure Python.

A package of its own, imported by both the bot (which refuses or warns about a
post before X would) and the sandbox (which refuses what X would): it imports
nothing from either, only the standard library.

X does not count characters: it counts *weight*. This module ports the
twitter-text v3 algorithm (`parseTweet`):

* the text is NFC-normalised first;
* each code point weighs `defaultWeight` (200, i.e. 2 characters) unless a
  config range gives it 100 (Latin, Cyrillic, Greek, Hebrew, Arabic, … and a
  few General Punctuation blocks);
* with `emojiParsingEnabled` (v3) every emoji *sequence* (ZWJ families, skin
  tones, flags, keycaps, tag flags) weighs 200 once;
* every URL weighs `transformedURLLength` (23) because X rewrites it to t.co;
* U+FFFE, U+FEFF and U+FFFF make a post invalid;
* ranges are inclusive UTF-16 code-unit indices into the *original* text,
  exactly as twitter-text reports them.

The conformance suite (`reference/twitter-text/validate.yml`) is the spec;
`tests/test_text.py` runs all of its length and URL cases. Both configs are
embedded below (`V2_JSON`, `V3_JSON`) so nothing outside the package is read.

URL detection comes in two strengths. Counting uses twitter-text's exact
extractor, so lengths match X. `extract_urls` additionally accepts what a
reader would call a link but twitter-text does not: `user:pass@` userinfo,
IPv4 and `[IPv6]` hosts and a query ending in `+` (the `urls` cases of
validate.yml require these). The stricter rule for counting is the safe one:
a link X does not shorten is counted at its full length.
"""
from __future__ import annotations

import functools
import ipaddress
import math
import re
import unicodedata
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from xtext.tlds import ALL_TLDS

MAX_WEIGHTED_LENGTH = 280

# twitter-text config/v2.json and config/v3.json, verbatim.
V2_JSON: dict[str, Any] = {
    "version": 2,
    "maxWeightedTweetLength": 280,
    "scale": 100,
    "defaultWeight": 200,
    "transformedURLLength": 23,
    "ranges": [
        {"start": 0, "end": 4351, "weight": 100},
        {"start": 8192, "end": 8205, "weight": 100},
        {"start": 8208, "end": 8223, "weight": 100},
        {"start": 8242, "end": 8247, "weight": 100},
    ],
}
V3_JSON: dict[str, Any] = {
    "version": 3,
    "maxWeightedTweetLength": 280,
    "scale": 100,
    "defaultWeight": 200,
    "emojiParsingEnabled": True,
    "transformedURLLength": 23,
    "ranges": [
        {"start": 0, "end": 4351, "weight": 100},
        {"start": 8192, "end": 8205, "weight": 100},
        {"start": 8208, "end": 8223, "weight": 100},
        {"start": 8242, "end": 8247, "weight": 100},
    ],
}


# --------------------------------------------------------------------------
# Configuration and result types
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightRange:
    """Code units `start`..`end` (inclusive) weigh `weight`."""

    start: int
    end: int
    weight: int


@dataclass(frozen=True)
class LengthConfig:
    """One twitter-text weighting config (see `V2`, `V3`)."""

    version: int
    max_weighted_tweet_length: int
    scale: int
    default_weight: int
    transformed_url_length: int
    ranges: tuple[WeightRange, ...]
    emoji_parsing_enabled: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LengthConfig:
        """Build from a twitter-text config dict (the JSON file's content)."""
        return cls(
            version=data["version"],
            max_weighted_tweet_length=data["maxWeightedTweetLength"],
            scale=data["scale"],
            default_weight=data["defaultWeight"],
            transformed_url_length=data["transformedURLLength"],
            ranges=tuple(WeightRange(r["start"], r["end"], r["weight"]) for r in data["ranges"]),
            emoji_parsing_enabled=bool(data.get("emojiParsingEnabled", False)),
        )


V2 = LengthConfig.from_json(V2_JSON)
V3 = LengthConfig.from_json(V3_JSON)


@dataclass(frozen=True)
class ParsedPost:
    """twitter-text's `parseTweet` result; ranges are inclusive UTF-16 indices."""

    weighted_length: int
    valid: bool
    permillage: int
    display_range: tuple[int, int]
    valid_range: tuple[int, int]


# --------------------------------------------------------------------------
# Character classes (twitter-text js/src/regexp, 3.1). Patterns spell out both
# letter cases: re.IGNORECASE on the whole URL pattern doubles match time.
# --------------------------------------------------------------------------

_INVALID_CHARS = "\ufffe\ufeff\uffff"
_DIRECTIONAL = r"\u202a-\u202e\u061c\u200e\u200f\u2066-\u2069"
_SPACES = r"\x09-\x0d\x20\x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# twitter-text's `punct` (which, sic, has neither '"' nor '`') minus '-' and '_'.
_PUNCT = r"!'#%&()*+,\\./:;<=>?@\[\]\^{|}~$"
_LATIN_ACCENTS = (
    r"\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
    r"\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_CYRILLIC = r"\u0400-\u04ff"
_NOT_IN_SUBDOMAIN = _PUNCT + _SPACES + _INVALID_CHARS + _DIRECTIONAL
_NOT_IN_DOMAIN_NAME = _NOT_IN_SUBDOMAIN + "_"
_DOMAIN_CHAR = f"[^{_NOT_IN_DOMAIN_NAME}\\-]"

_BLANK = re.compile(r"[\s\u180e]*")
_INVALID = re.compile(f"[{_INVALID_CHARS}]")
_SPACE_RUN = re.compile(f"[{_SPACES}]+")


# --------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------


def _trie_pattern(words: Iterable[str]) -> str:
    """An alternation of `words`, factored as a trie: it matches far faster."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word.lower():
            node = node.setdefault(ch, {})
        node[""] = {}
    return _node_pattern(trie)


def _node_pattern(node: Mapping[str, Any]) -> str:
    branches = [re.escape(ch) + _node_pattern(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = "(?:" + "|".join(branches) + ")"
    return body + "?" if "" in node else body


# A label and its '.': possessive runs keep this linear and match exactly what
# twitter-text's backtracking form does, since '.' never belongs to a label.
_SUBDOMAIN = f"(?:{_DOMAIN_CHAR}[^{_NOT_IN_SUBDOMAIN}]*+(?<={_DOMAIN_CHAR})\\.)"
_DOMAIN_NAME = f"(?:{_DOMAIN_CHAR}[^{_NOT_IN_DOMAIN_NAME}]*+(?<={_DOMAIN_CHAR})\\.)"


def _tld() -> str:
    return f"(?:(?i:{_trie_pattern(ALL_TLDS)})(?![0-9a-zA-Z@+\\-])|[xX][nN]--[\\-0-9a-zA-Z]+)"


def _domain(tld: str) -> str:
    return f"(?:{_SUBDOMAIN}*{_DOMAIN_NAME}{tld})"


_PROTOCOL = "[hH][tT][tT][pP][sS]?://"
_PATH_CHAR = f"[a-zA-Z{_CYRILLIC}0-9!*';:=+,.$/%#\\[\\]\\-\u2013_~@|&{_LATIN_ACCENTS}]"
_PARENS = f"\\((?:{_PATH_CHAR}+|(?:{_PATH_CHAR}*\\({_PATH_CHAR}+\\){_PATH_CHAR}*))\\)"
_PATH_END = f"(?:[+\\-a-zA-Z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]|{_PARENS})"
_PATH = f"(?:(?:{_PATH_CHAR}*(?:{_PARENS}{_PATH_CHAR}*)*{_PATH_END})|(?:@{_PATH_CHAR}+/))"
_QUERY_CHAR = r"[a-zA-Z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
_QUERY_END = r"[a-zA-Z0-9\-_&=#/]"
_BEFORE = f"(?P<before>[^A-Za-z0-9@\uff20$#\uff03{_INVALID_CHARS}]|[{_DIRECTIONAL}]|^)"

# Only in `extract_urls`, and only after a protocol.
_USERINFO = r"(?:[a-zA-Z0-9\-._~!$&'()*+,;=:]|%[0-9a-fA-F]{2})*@"
_IPV4 = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9a-zA-Z_\-]|\.[0-9a-zA-Z])"
_IPV6 = r"\[[0-9a-fA-F:.]+\]"
_IP_HOST = re.compile(r"[0-9.]+|\[.*\]")


def _url_regex(extended: bool, tld: str) -> re.Pattern[str]:
    """twitter-text's `extractUrl` (`tld`: the pattern of a top-level domain); `extended` adds userinfo,
    IP hosts, `+`."""
    domain = _domain(tld)
    if extended:
        userinfo = f"(?(protocol)(?:{_USERINFO})?)"
        host = f"(?P<domain>{domain}|(?(protocol)(?:{_IPV4}|{_IPV6})|(?!)))"
        query_end = _QUERY_END[:-1] + "+]"
    else:
        userinfo, host, query_end = "", f"(?P<domain>{domain})", _QUERY_END
    return re.compile(
        f"{_BEFORE}(?P<url>(?P<protocol>{_PROTOCOL})?{userinfo}{host}"
        f"(?::[0-9]+)?(?P<path>/{_PATH}*)?(?:\\?{_QUERY_CHAR}*{query_end})?)"
    )


class _UrlPatterns(NamedTuple):
    url: re.Pattern[str]
    url_extended: re.Pattern[str]
    hint: re.Pattern[str]
    ascii_domain: re.Pattern[str]


@functools.cache
def _url_patterns() -> _UrlPatterns:
    """The patterns that hold the TLD trie, built and compiled on first use: that takes a tenth of a
    second, which every process that never looks for a URL (a worker's start, most CLI commands)
    would pay at import."""
    tld = _tld()
    return _UrlPatterns(url=_url_regex(False, tld), url_extended=_url_regex(True, tld),
                        hint=re.compile(f"\\.{tld}"),
                        ascii_domain=re.compile(f"(?:[\\-a-zA-Z0-9{_LATIN_ACCENTS}]+\\.)+{tld}"))


_TCO = re.compile(f"{_PROTOCOL}[tT]\\.[cC][oO]/([a-zA-Z0-9]+)(?:\\?{_QUERY_CHAR}*{_QUERY_END})?")
_NO_PROTOCOL_BAD_BEFORE = frozenset("-_./")
_LABEL_SEPARATORS = re.compile("[.\u3002\uff0e\uff61]")
_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG_LENGTH = 40
_MAX_LABEL_LENGTH = 63


@dataclass(frozen=True)
class _Url:
    start: int  # code point index, inclusive
    end: int  # code point index, exclusive
    url: str


def _utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _punycode_label(label: str) -> str:
    """What punycode.js `toASCII` makes of one label."""
    parts = _LABEL_SEPARATORS.split(label)
    return ".".join(p if p.isascii() else "xn--" + p.encode("punycode").decode("ascii") for p in parts)


def _valid_ip_host(host: str) -> bool:
    try:
        if host.startswith("["):
            ipaddress.IPv6Address(host[1:-1])
        else:
            ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _valid_domain(domain: str) -> bool:
    """Every DNS label, punycode-encoded, is 1 to 63 characters long."""
    if domain.startswith("xn--") and not _url_patterns().ascii_domain.search(domain):
        return False
    return all(1 <= len(_punycode_label(label)) <= _MAX_LABEL_LENGTH for label in domain.split("."))


def _valid_host(url: str, protocol: str | None, domain: str) -> bool:
    """twitter-text `isValidUrl`: a sound host and at most 4096 characters."""
    sound = _valid_ip_host(domain) if _IP_HOST.fullmatch(domain) else _valid_domain(domain)
    return sound and len(protocol or "https://") + _utf16_len(url) <= _MAX_URL_LENGTH


def _without_protocol(match: re.Match[str]) -> Iterator[_Url]:
    """The ASCII domains inside a protocol-less match (twitter-text's rule)."""
    if match["before"] in _NO_PROTOCOL_BAD_BEFORE:
        return
    url, domain, start = match["url"], match["domain"], match.start("url")
    found = list(_url_patterns().ascii_domain.finditer(domain))
    for ascii_match in found[:-1]:
        yield _Url(start + ascii_match.start(), start + ascii_match.end(), ascii_match[0])
    if found:
        last = found[-1]
        if match["path"]:
            yield _Url(start + last.start(), match.end("url"), last[0] + url[len(domain):])
        else:
            yield _Url(start + last.start(), start + last.end(), last[0])


def _with_protocol(match: re.Match[str]) -> Iterator[_Url]:
    url, start = match["url"], match.start("url")
    tco = _TCO.match(url)
    if tco:
        if len(tco[1]) > _MAX_TCO_SLUG_LENGTH:
            return
        url = tco[0]
    yield _Url(start, start + len(url), url)


def _windows(text: str, extended: bool) -> Iterator[tuple[int, int]]:
    """Whitespace-free stretches that may hold a URL, with the character before.

    No part of a URL matches whitespace, so scanning only the stretches that
    contain '.' + TLD (or '://') finds the same URLs much faster.
    """
    start = 0
    for gap in [*_SPACE_RUN.finditer(text), None]:
        end = gap.start() if gap else len(text)
        if _url_patterns().hint.search(text, start, end) or (extended and "://" in text[start:end]):
            yield max(start - 1, 0), end
        start = gap.end() if gap else end


def _find_urls(text: str, extended: bool = False) -> list[_Url]:
    """twitter-text `extractUrlsWithIndices`, indices in code points."""
    if "." not in text and not (extended and "://" in text):
        return []
    patterns = _url_patterns()
    pattern = patterns.url_extended if extended else patterns.url
    urls: list[_Url] = []
    for start, end in _windows(text, extended):
        for match in pattern.finditer(text, start, end):
            if _valid_host(match["url"], match["protocol"], match["domain"]):
                urls.extend(_with_protocol(match) if match["protocol"] else _without_protocol(match))
    return urls


def extract_urls(text: str) -> list[str]:
    """The links in `text`, in order, as written (with or without `https://`)."""
    return [u.url for u in _find_urls(text, extended=True)]


def contains_url(text: str) -> bool:
    """Whether `text` contains at least one link (see `extract_urls`)."""
    return bool(_find_urls(text, extended=True))


# --------------------------------------------------------------------------
# Emoji
# --------------------------------------------------------------------------

# A compact grammar rather than the list of RGI sequences twemoji-parser
# uses: any pictographic character with an optional VS16 or skin tone, joined
# by ZWJ; flags; keycaps; tag flags. It also accepts emoji newer than a fixed
# list would, at the price of counting a made-up ZWJ join (cat+ZWJ+dog) as 2
# where X may count 5. The class is Extended_Pictographic, generously:
# over-inclusion is harmless since these characters weigh 200 alone as well.
_PICTOGRAPHIC = (
    "\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u2388\u23cf"
    "\u23e9-\u23f3\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u27bf"
    "\u2934\u2935\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001faff\U0001fc00-\U0001fffd"
)
_SKIN_TONE = "\U0001f3fb-\U0001f3ff"
_EMOJI_ELEMENT = (
    "(?:[\U0001f1e6-\U0001f1ff]{2}"  # flag: two regional indicators
    "|\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f"  # tag flag (England, …)
    "|[#*0-9]\ufe0f?\u20e3"  # keycap
    "|[\xa9\xae]\ufe0f"  # text-default symbols in emoji presentation
    f"|[{_PICTOGRAPHIC}](?:\ufe0f|[{_SKIN_TONE}])?)"
)
_EMOJI = re.compile(f"{_EMOJI_ELEMENT}(?:\u200d{_EMOJI_ELEMENT})*")


# --------------------------------------------------------------------------
# Length
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _unit_weights(config: LengthConfig) -> array[int]:
    """The weight of every UTF-16 code unit under `config`.

    twitter-text weighs a surrogate pair by its trailing surrogate, so leading
    surrogates weigh 0 here and a pair costs what its trailing half costs.
    """
    table = array("I", [config.default_weight]) * 0x10000
    for r in reversed(config.ranges):  # the first matching range wins
        low, high = max(r.start, 0), min(r.end, 0xFFFF)
        if low <= high:
            table[low : high + 1] = array("I", [r.weight]) * (high - low + 1)
    table[0xD800:0xDC00] = array("I", [0]) * 0x400
    return table


def _code_units(text: str) -> memoryview:
    return memoryview(text.encode("utf-16-le", "surrogatepass")).cast("H")


class _Tally:
    """The running state of twitter-text's per-character loop."""

    def __init__(self, config: LengthConfig) -> None:
        self.weights = _unit_weights(config)
        self.limit = config.max_weighted_tweet_length * config.scale
        self.total = 0
        self.units = 0  # UTF-16 code units seen
        self.valid = True  # no invalid character yet
        self.last_valid = 0  # UTF-16 index of the last unit within limits

    def step(self, piece: str, weight: int) -> None:
        """One turn of the loop: a character, a URL or an emoji sequence."""
        self.total += weight
        self.units += _utf16_len(piece)
        self.valid = self.valid and piece[-1] not in _INVALID_CHARS
        if self.valid and self.total <= self.limit:
            self.last_valid = self.units - 1

    def run(self, text: str) -> None:
        """Characters that are neither URL nor emoji, all at once if possible."""
        units = _code_units(text)
        weight = sum(map(self.weights.__getitem__, units))
        clean = _INVALID.search(text) is None
        tracking = self.valid and self.total <= self.limit
        if tracking and not (clean and self.total + weight <= self.limit):
            for ch in text:  # the limit or an invalid character falls in here
                self.step(ch, sum(map(self.weights.__getitem__, _code_units(ch))))
            return
        self.total += weight
        self.units += len(units)
        self.valid = self.valid and clean
        if tracking:
            self.last_valid = self.units - 1


def _entity_steps(text: str, config: LengthConfig) -> Iterator[tuple[int, int, int]]:
    """(start, end, weight) of the URLs and emoji the loop meets, in order."""
    url_weight = config.transformed_url_length * config.scale
    steps = [(u.start, 0, u.end, url_weight) for u in _find_urls(text)]
    if config.emoji_parsing_enabled:
        steps += [(m.start(), 1, m.end(), config.default_weight) for m in _EMOJI.finditer(text)]
    position = 0
    for start, _, end, weight in sorted(steps):  # a URL wins over an emoji at the same start
        if start >= position:
            yield start, end, weight
            position = end


def _weigh(text: str, config: LengthConfig) -> _Tally:
    tally = _Tally(config)
    position = 0
    for start, end, weight in _entity_steps(text, config):
        if start > position:
            tally.run(text[position:start])
        tally.step(text[start:end], weight)
        position = end
    if position < len(text):
        tally.run(text[position:])
    return tally


def parse_post(text: str, config: LengthConfig = V3) -> ParsedPost:
    """twitter-text `parseTweet`: weighted length, validity and ranges of `text`."""
    normalized = unicodedata.normalize("NFC", text)
    tally = _weigh(normalized, config)
    weighted = tally.total / config.scale
    offset = _utf16_len(text) - _utf16_len(normalized)
    return ParsedPost(
        weighted_length=math.ceil(weighted),
        valid=tally.valid and 0 < tally.total <= tally.limit,
        permillage=math.floor(weighted / config.max_weighted_tweet_length * 1000),
        display_range=(0, max(_utf16_len(text) - 1, 0)),
        valid_range=(0, tally.last_valid + offset),
    )


def weighted_length(text: str) -> int:
    """X's (v3) weighted length of `text`; at most `MAX_WEIGHTED_LENGTH` may be posted."""
    return parse_post(text).weighted_length


def _is_blank(text: str) -> bool:
    return _BLANK.fullmatch(text) is not None


def fits(text: str) -> bool:
    """Whether X (v3) accepts `text`: not blank, no invalid character, ≤ 280."""
    return not _is_blank(text) and parse_post(text).valid


def length_error(text: str) -> str | None:
    """None if `text` fits, else a one-line reason (position = Python index)."""
    if not text:
        return "empty post"
    if _is_blank(text):
        return "empty post (only whitespace)"
    bad = _INVALID.search(text)
    if bad:
        return f"contains an invalid character U+{ord(bad[0]):04X} at position {bad.start()}"
    parsed = parse_post(text)
    if parsed.weighted_length > MAX_WEIGHTED_LENGTH:
        over = parsed.weighted_length - MAX_WEIGHTED_LENGTH
        return f"{parsed.weighted_length} of {MAX_WEIGHTED_LENGTH} weighted characters ({over} too many)"
    return None if parsed.valid else "not a valid post"
