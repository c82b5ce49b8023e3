"""What a post may carry besides its text and media (issue 23), checked when it is queued.

The options go with a post's first part (a thread's later parts are replies to it), under X's own
names (`POST /2/tweets`, x-api-facts §"Posting"): a `poll` (`options`, `duration_minutes`),
`reply_settings` (who may reply; none: everyone), `community_id` (post into an X Community),
the `made_with_ai` and `paid_partnership` disclosures, `quote_tweet_id`; and two of ours: `reply_to` (a
post's URL or id: the first part is a reply to it) and `expire_after` (seconds after posting that the
post is deleted from X: `bot.expiry`). Every front end parses its own words (CLI flags, CSV
columns, form fields, JSON) into the same `dict` and `check_options` refuses what X would, with
the reason, before anything is queued.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from bot.media_checks import MediaFile
from bot.refusals import OptionRefused
from bot.series import DATE, SAMPLE_DATE
from bot.settings import duration_text, parse_duration
from xtext import length_error

REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")  # none: everyone may reply
POLL_OPTIONS = (2, 4)  # how many a poll has
POLL_OPTION_LENGTH = 25
POLL_MINUTES = (5, 10_080)  # five minutes to seven days
QUOTE_TIER = "enterprise"  # quote posts left every self-serve tier on 2026-04-20
NAMES = ("poll", "reply_settings", "community_id", "made_with_ai", "paid_partnership", "quote_tweet_id", "reply_to",
         "expire_after", "repeat", "plug")
OURS = ("reply_to", "expire_after", "repeat", "plug")  # the options that are not fields of X's body (`bot.series`)
REPEAT_DAYS = (1, 365)
PLUG_HOURS = (0.1, 24 * 30)
EXPIRY_RANGE = (timedelta(minutes=1), timedelta(days=365))
_POST_URL = re.compile(r"^https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/(?:[A-Za-z0-9_]+|i/web|i)/status(?:es)?/"
                       r"(\d{1,19})(?:[/?#].*)?$")
_ID = re.compile(r"^\d{1,19}$")


def check_options(raw: Mapping[str, Any], first_has_media: bool, tier: str, first_text: str = "",
                  parts: int = 1) -> dict[str, Any]:
    """The options of `raw` (X's names; empty and false values dropped) as a post keeps them, or
    `OptionRefused` saying what is wrong. `first_has_media`: the first part carries media (X takes no
    poll with media); `tier`: X_TIER (quote posts need Enterprise); `first_text` and `parts`: the post's
    (a repeat must vary its text; a thread does not repeat)."""
    unknown = set(raw) - set(NAMES)
    if unknown:
        raise OptionRefused(f"{sorted(unknown)[0]!r} is not a post option (they are: {', '.join(NAMES)})")
    options: dict[str, Any] = {}
    if raw.get("poll"):
        options["poll"] = _poll(raw["poll"], first_has_media)
    if raw.get("reply_settings") and raw["reply_settings"] != "everyone":
        if raw["reply_settings"] not in REPLY_SETTINGS:
            raise OptionRefused(f"reply_settings {raw['reply_settings']!r} is not one of everyone, "
                                f"{', '.join(REPLY_SETTINGS)}")
        options["reply_settings"] = raw["reply_settings"]
    if raw.get("community_id"):
        options["community_id"] = _id(raw["community_id"], "community_id", "a community")
    for flag in ("made_with_ai", "paid_partnership"):
        if raw.get(flag) not in (None, False, True):
            raise OptionRefused(f"{flag} is true or false, not {raw[flag]!r}")
        if raw.get(flag):
            options[flag] = True
    if raw.get("reply_to"):
        options["reply_to"] = post_id_of(raw["reply_to"], "reply_to")
    if raw.get("expire_after"):
        options["expire_after"] = _expiry(raw["expire_after"])
    if raw.get("quote_tweet_id"):
        options["quote_tweet_id"] = _quote(raw["quote_tweet_id"], options, first_has_media, tier)
    if raw.get("repeat"):
        options["repeat"] = _repeat(raw["repeat"], first_text, parts)
    if raw.get("plug"):
        options["plug"] = _plug(raw["plug"])
    return options


def _repeat(repeat: Any, first_text: str, parts: int) -> dict[str, Any]:
    if not isinstance(repeat, Mapping):
        raise OptionRefused("a repeat has every_days and, optionally, texts (variants)")
    if parts > 1:
        raise OptionRefused("a thread cannot repeat: repeat a single post")
    every = repeat.get("every_days")
    if isinstance(every, str) and parse_duration(every) is not None:
        every = parse_duration(every).days  # type: ignore[union-attr]
    if not isinstance(every, int) or isinstance(every, bool) or not REPEAT_DAYS[0] <= every <= REPEAT_DAYS[1]:
        raise OptionRefused(f"a repeat comes every 1 to 365 days, not {repeat.get('every_days')!r}")
    texts = [str(text).strip() for text in repeat.get("texts") or () if str(text).strip()]
    for number, text in enumerate(texts, start=1):
        problem = length_error(text.replace(DATE, SAMPLE_DATE))
        if problem:
            raise OptionRefused(f"repeat variant {number} is too long or invalid: {problem}")
    if not texts and DATE not in first_text:
        raise OptionRefused("X refuses the same text again from an account for a while (duplicate content), so "
                            "a repeat needs variants to take in turn, or {date} in its text")
    return {"every_days": every, "texts": texts}


def _plug(plug: Any) -> dict[str, Any]:
    if not isinstance(plug, Mapping) or not str(plug.get("text") or "").strip():
        raise OptionRefused("a plug has a text, and likes or after_hours (when it is sent)")
    text = str(plug["text"]).strip()
    problem = length_error(text)
    if problem:
        raise OptionRefused(f"the plug's text is too long or invalid: {problem}")
    kept: dict[str, Any] = {"text": text}
    likes, hours = plug.get("likes"), plug.get("after_hours")
    if likes not in (None, ""):
        if not str(likes).isdigit() or int(str(likes)) < 1:
            raise OptionRefused(f"a plug's likes is a whole number from 1, not {likes!r}")
        kept["likes"] = int(str(likes))
    if hours not in (None, ""):
        try:
            kept["after_hours"] = float(str(hours))
        except ValueError:
            raise OptionRefused(f"a plug's after_hours is a number of hours, not {hours!r}") from None
        if not PLUG_HOURS[0] <= kept["after_hours"] <= PLUG_HOURS[1]:
            raise OptionRefused(f"a plug comes 0.1 to 720 hours after the post, not {hours!r}")
    if len(kept) == 1:
        raise OptionRefused("a plug needs likes, after_hours, or both: when to send it")
    if plug.get("media"):
        if not all(isinstance(item, MediaFile) for item in plug["media"]):
            raise OptionRefused("a plug's media are files: --plug-media, the form's field, or the API's upload ids")
        kept["media"] = list(plug["media"])  # `bot.queue` checks them for the account
    return kept


def _poll(poll: Any, first_has_media: bool) -> dict[str, Any]:
    if not isinstance(poll, Mapping):
        raise OptionRefused("a poll has options and duration_minutes")
    choices = [str(choice).strip() for choice in poll.get("options") or ()]
    low, high = POLL_OPTIONS
    if not low <= len(choices) <= high:
        raise OptionRefused(f"a poll has {low} to {high} options, not {len(choices)}")
    for number, choice in enumerate(choices, start=1):
        if not 1 <= len(choice) <= POLL_OPTION_LENGTH:
            raise OptionRefused(f"poll option {number} ({choice!r}) is not 1 to {POLL_OPTION_LENGTH} characters")
    if len(set(choices)) < len(choices):
        raise OptionRefused("a poll's options must differ")
    given = poll.get("duration_minutes")
    try:
        minutes = int(str(given))
    except ValueError:
        raise OptionRefused(f"a poll runs a whole number of minutes, not {given!r}") from None
    if not POLL_MINUTES[0] <= minutes <= POLL_MINUTES[1]:
        raise OptionRefused(f"a poll runs {POLL_MINUTES[0]} to {POLL_MINUTES[1]:,} minutes (7 days), not {minutes}")
    if first_has_media:
        raise OptionRefused("a poll cannot go with media: X takes one of media, a poll or a quote")
    return {"options": choices, "duration_minutes": minutes}


def _quote(value: Any, options: dict[str, Any], first_has_media: bool, tier: str) -> str:
    if tier != QUOTE_TIER:
        raise OptionRefused(f"quote posts need X's Enterprise tier since 2026-04-20 (X_TIER={tier}); post the "
                            "link to it instead")
    if "poll" in options or first_has_media:
        raise OptionRefused("a quote cannot go with a poll or media: X takes one of media, a poll or a quote")
    return post_id_of(value, "quote_tweet_id")


def _expiry(value: Any) -> int:
    """Seconds after posting that the post is deleted from X: a duration ("3d", "12h") or seconds."""
    span = timedelta(seconds=value) if isinstance(value, int) and not isinstance(value, bool) else \
        parse_duration(str(value))
    low, high = EXPIRY_RANGE
    if span is None or not low <= span <= high:
        raise OptionRefused(f"expire_after {value!r} is not a duration from 1 minute to 365 days (such as 12h or 3d)")
    return int(span.total_seconds())


def _id(value: Any, name: str, what: str) -> str:
    text = str(value).strip()
    if not _ID.match(text):
        raise OptionRefused(f"{name} {text!r} is not the id of {what} (1 to 19 digits)")
    return text


def post_id_of(value: Any, name: str) -> str:
    """A post's id from its id or its URL on x.com or twitter.com, or `OptionRefused` naming `name`."""
    text = str(value).strip()
    if _ID.match(text):
        return text
    found = _POST_URL.match(text)
    if found is None:
        raise OptionRefused(f"{name} {text!r} is neither a post's id nor its URL (https://x.com/name/status/123…)")
    return found[1]


def split_choices(text: str) -> list[str]:
    """A poll's options as a person types them on one line: "yes | no | maybe"."""
    return [choice.strip() for choice in text.split("|") if choice.strip()]


def body_options(options: Mapping[str, Any], index: int) -> dict[str, Any]:
    """What part `index` of a post adds to its `POST /2/tweets` body: the first part every option
    (`reply_to` as X's `reply`), the others none (they reply to the part before)."""
    if index or not options:
        return {}
    body = {name: value for name, value in options.items() if name not in OURS}
    if options.get("reply_to"):
        body["reply"] = {"in_reply_to_tweet_id": options["reply_to"]}
    return body


REPLY_RULE = ("X takes a reply to another author's post only when that author mentioned this account or "
              "quoted one of its posts (X's rule for self-serve apps since 2026-02-23)")


def refusal_words(detail: str, options: Mapping[str, Any], index: int) -> str:
    """X's refusal of part `index`, said so a person knows what to do: a reply refused under X's 2026 rule
    says the rule before X's words; anything else is X's words as they are."""
    if index == 0 and options.get("reply_to") and "reply to this conversation is not allowed" in detail.lower():
        return f"{REPLY_RULE}; the post it replies to ({options['reply_to']}) did neither. X said: {detail}"
    return detail


def described(options: Mapping[str, Any], votes: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    """The options in words, one phrase each, for the dashboard and the CLI (a poll with its `votes`, as
    last read from X, when given)."""
    words = []
    if "poll" in options:
        poll = options["poll"]
        counted = {str(option["label"]): int(option["votes"]) for option in votes}
        choices = [f"{label} ({counted[label]:,})" if label in counted else label for label in poll["options"]]
        words.append(f"poll: {' / '.join(choices)} ({poll['duration_minutes']:,} min)")
    if "reply_settings" in options:
        words.append(f"replies: {options['reply_settings']}")
    if "community_id" in options:
        words.append(f"in community {options['community_id']}")
    if options.get("made_with_ai"):
        words.append("made with AI")
    if options.get("paid_partnership"):
        words.append("paid partnership")
    if "reply_to" in options:
        words.append(f"a reply to post {options['reply_to']}")
    if "quote_tweet_id" in options:
        words.append(f"quotes post {options['quote_tweet_id']}")
    if "repeat" in options:
        variants = len(options["repeat"]["texts"])
        words.append(f"repeats every {options['repeat']['every_days']} day(s)"
                     + (f", {variants + 1} texts in turn" if variants else ", dated"))
    if "plug" in options:
        plug = options["plug"]
        when = ([f"{plug['likes']} likes"] if "likes" in plug else []) + \
            ([f"{plug['after_hours']:g} h"] if "after_hours" in plug else [])
        words.append(f"plug after {' or '.join(when)}: {plug['text']}")
    if "expire_after" in options:
        words.append(f"deleted from X {duration_text(timedelta(seconds=options['expire_after']))} after posting")
    return words


# The options as words: CSV columns, thread-file lines, the compose form's fields.
CELLS = ("poll", "poll_minutes", "reply_settings", "community_id", "made_with_ai", "paid_partnership", "reply_to",
         "quote_tweet_id", "expire_after", "repeat_every", "variants", "plug", "plug_likes", "plug_after")
YES, NO = ("yes", "true", "1", "x", "on"), ("", "no", "false", "0", "off")


def options_from_cells(cells: Mapping[str, str]) -> dict[str, Any]:
    """The raw options that words ask for (`CELLS`: "a | b" for a poll or a repeat's variants, yes or no for
    a disclosure), or `OptionRefused` naming the cell that is neither."""
    flags = []
    for name in ("made_with_ai", "paid_partnership"):
        value = str(cells.get(name) or "").strip().lower()
        if value not in YES + NO:
            raise OptionRefused(f"{name} {cells[name]!r} is not yes or no")
        flags.append((name, value in YES))
    minutes = str(cells.get("poll_minutes") or "").strip()
    if minutes and not minutes.isdigit():
        raise OptionRefused(f"poll_minutes {minutes!r} is not a whole number of minutes")
    def cell(name: str) -> str:
        return str(cells.get(name) or "").strip()
    return parsed_flags(cell("poll"), int(minutes) if minutes else None, [
        *flags, *((name, cell(name)) for name in ("reply_settings", "community_id", "reply_to", "quote_tweet_id",
                                                  "expire_after")),
        ("repeat", {"every_days": cell("repeat_every"), "texts": re.split(r"\s*\|\s*|\n", cell("variants"))}
         if cell("repeat_every") else None),
        ("plug", {"text": cell("plug"), "likes": cell("plug_likes"), "after_hours": cell("plug_after")}
         if cell("plug") else None)])


def parsed_flags(poll: str | None, poll_minutes: int | None, values: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """The raw options of a front end that has one field per option (the CLI, a CSV row, the form)."""
    raw: dict[str, Any] = {name: value for name, value in values if value not in (None, "", False)}
    if poll:
        raw["poll"] = {"options": split_choices(poll), "duration_minutes": poll_minutes if poll_minutes else 1440}
    return raw
