"""Shared fixtures. The reference material lives in ../shared/reference/ beside the clone."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    """`../shared/reference` next to the clone, or `$TWEETBOT_REFERENCE`."""
    path = Path(os.environ.get("TWEETBOT_REFERENCE", ROOT.parent / "shared" / "reference"))
    if not path.is_dir():
        raise RuntimeError(f"reference material not found at {path}: set TWEETBOT_REFERENCE")
    return path


@pytest.fixture(scope="session")
def reference() -> Path:
    return reference_dir()
