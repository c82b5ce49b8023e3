"""Logging for every tweetbot process: one line per event, a stable `tweetbot.<part>` prefix, no secrets."""
from __future__ import annotations

import logging
from typing import TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# These libraries log request headers and bodies, tokens included, at DEBUG.
TOKEN_LOGGING_LIBRARIES = ("requests_oauthlib", "oauthlib", "tweepy")


def configure_logging(stream: TextIO) -> None:
    """Log to `stream` (unless logging is set up already), holding token-leaking libraries at INFO."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=stream, format=LOG_FORMAT)
    for name in TOKEN_LOGGING_LIBRARIES:
        library = logging.getLogger(name)
        if library.getEffectiveLevel() < logging.INFO:
            library.setLevel(logging.INFO)
