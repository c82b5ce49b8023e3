"""The file store's append-only logs and the counts kept over them (what /metrics reads on the file store).

Real files in `tmp_path`. The tally is asked as the store asks it: at a committed length, which may be
behind what another thread already counted, and across a log replaced by a restore.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from bot.store.file.store import _LogTally
from bot.store.files import AppendLog


def records(statuses: str) -> list[dict[str, str]]:
    return [{"account_id": "1" if n % 2 else "2", "status": status} for n, status in enumerate(statuses)]


def by_hand(log: AppendLog, committed: int) -> Counter[tuple[str, str]]:
    return Counter((r["account_id"], r["status"]) for r in log.read_all(committed))


def test_read_from_starts_at_a_record_and_stops_at_the_committed_length(tmp_path: Path) -> None:
    log = AppendLog(tmp_path / "history.jsonl")
    first = log.append(records("pf"))
    committed = log.append(records("pp"))
    log.append(records("c"))  # a transaction that has not committed
    assert [r["status"] for r in log.read_from(first, committed)] == ["p", "p"]
    assert [r["status"] for r in log.read_from(0, committed)] == ["p", "f", "p", "p"]
    assert list(log.read_from(committed, committed)) == []


def test_the_tally_counts_forward_answers_an_older_length_and_starts_over_on_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    log, tally = AppendLog(path), _LogTally(lambda r: (r["account_id"], r["status"]))
    early = log.append(records("pfpf"))
    assert tally.at(log, early) == by_hand(log, early)
    late = log.append(records("ppc"))
    assert tally.at(log, late) == by_hand(log, late) != by_hand(log, early)
    assert tally.at(log, early) == by_hand(log, early)  # a reader whose snapshot is older
    assert tally.at(log, late) == by_hand(log, late)  # and the kept counts are untouched by it

    replaced = tmp_path / "restored.jsonl"
    restored = AppendLog(replaced)
    length = restored.append(records("f"))
    os.replace(replaced, path)  # a restore puts another file in its place
    assert tally.at(log, length) == by_hand(log, length) == Counter({("2", "f"): 1})
