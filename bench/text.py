"""How long X's weighted length takes for a full post.

    .venv/bin/python bench/text.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xtext import weighted_length  # noqa: E402

POSTS = {
    "latin with emoji and URLs": ("Shipping tweetbot 0.2 \U0001f680 notes: https://example.com/notes?x=1 "
                                  "or www.example.org! " * 4)[:280],
    "CJK (140 characters)": "界" * 140,
    "plain ASCII": "a" * 280,
}


def median_microseconds(text: str, repeats: int = 2000) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        weighted_length(text)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1e6


def main() -> None:
    for name, text in POSTS.items():
        print(f"{name:28} weighted {weighted_length(text):>3}: median {median_microseconds(text):7.1f} µs")


if __name__ == "__main__":
    main()
