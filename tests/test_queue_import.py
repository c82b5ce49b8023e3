"""`tweetbot import FILE.csv`: all rows or none, every bad row named by its line."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
from test_queue_support import BotFolder, make_folder, utc

from bot.importer import ImportRefused, import_csv
from bot.schedules import parse_slots, save_slots


def write_csv(path: Path, rows: list[list[str]], header: tuple[str, ...] = ("account", "due_at", "text")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> BotFolder:
    folder = make_folder(tmp_path, "Europe/Berlin")
    folder.connect("alice", "101")
    folder.connect("bob", "202")
    return folder


def thousand_rows() -> list[list[str]]:
    return [["@alice" if n % 2 else "bob", f"2099-12-{1 + n % 28:02d} {n % 24:02d}:{n % 60:02d}", f"post number {n}"]
            for n in range(1000)]


def test_one_bad_row_among_a_thousand_queues_nothing_and_is_named(folder: BotFolder) -> None:
    rows = thousand_rows()
    rows[516][2] = "x" * 281  # data row 517 is line 518 of the file (the header is line 1)
    path = write_csv(folder.path / "posts.csv", rows)
    result = folder.run("import", str(path))
    assert result.returncode == 1
    assert "posts.csv: line 518: text is too long or invalid: 281 of 280 weighted characters" in result.stderr
    assert "1 bad row; nothing was queued" in result.stderr
    assert "Checking rows" not in result.stderr  # 1,000 rows: no progress bar yet
    assert folder.store().queued_posts() == []


def test_the_same_thousand_rows_fixed_are_all_queued(folder: BotFolder) -> None:
    path = write_csv(folder.path / "posts.csv", thousand_rows())
    result = folder.run("import", str(path))
    assert result.returncode == 0, result.stderr
    assert "Queued 1,000 posts for @alice, @bob" in result.stdout
    posts = folder.store().queued_posts()
    assert len(posts) == 1000 and {p.source for p in posts} == {"csv"}
    first = next(p for p in posts if p.text == "post number 1")
    assert first.account_id == "101" and first.due_at == utc(2099, 12, 2, 0, 1)  # 01:01 CET


def test_every_bad_row_is_named_with_its_reason(folder: BotFolder) -> None:
    rows = [
        ["@alice", "2099-12-01 09:00", "fine"],                  # line 2
        ["@carol", "2099-12-01 09:00", "who is carol"],          # line 3
        ["@alice", "someday", "bad time"],                       # line 4
        ["@alice", "2020-01-01 09:00", "in the past"],           # line 5
        ["@alice", "2099-12-01 09:00", "界" * 141],              # line 6
        ["@alice", "2099-12-01 09:00", "   "],                   # line 7
        ["@alice", "", "no time and no slots"],                  # line 8
        ["@alice", "2099-12-01 09:00", "short", "extra"],        # line 9: a column too many
    ]
    path = write_csv(folder.path / "bad.csv", rows)
    with pytest.raises(ImportRefused) as refused:
        import_csv(folder.store(), path, "Europe/Berlin")
    assert [problem.line for problem in refused.value.problems] == [9]  # the file's shape is checked first
    rows.pop()
    path = write_csv(folder.path / "bad.csv", rows)
    with pytest.raises(ImportRefused) as refused:
        import_csv(folder.store(), path, "Europe/Berlin")
    found = {problem.line: problem.reason for problem in refused.value.problems}
    assert sorted(found) == [3, 4, 5, 6, 7, 8]
    assert found[3] == "no account @carol (connected: @alice, @bob)"  # as `post` says it
    assert "not a time we understand" in found[4]
    assert "is in the past" in found[5]
    assert "282 of 280 weighted characters" in found[6]
    assert found[7] == "text is empty"
    assert "@alice has no slots" in found[8]
    assert str(refused.value) == "6 bad rows; nothing was queued"
    assert folder.store().queued_posts() == []


def test_a_bad_header_is_refused(folder: BotFolder) -> None:
    path = write_csv(folder.path / "header.csv", [["@alice", "2099-12-01 09:00", "hi"]],
                     header=("account", "when", "text"))
    result = folder.run("import", str(path))
    assert result.returncode == 1
    assert "line 1: the header must be account,due_at,text" in result.stderr


def test_rows_sharing_a_thread_id_become_one_thread_in_row_order(folder: BotFolder) -> None:
    rows = [
        ["@bob", "2099-12-01 09:00", "part one", "t1"],
        ["@alice", "2099-12-01 10:00", "a single post", ""],
        ["@bob", "", "part two", "t1"],
        ["@bob", "2099-12-01 09:00", "part three", "t1"],
    ]
    path = write_csv(folder.path / "thread.csv", rows, header=("account", "due_at", "text", "thread_id"))
    result = folder.run("import", str(path))
    assert result.returncode == 0, result.stderr
    assert "Queued 2 posts (1 thread)" in result.stdout
    posts = {p.account_id: p for p in folder.store().queued_posts()}
    assert posts["202"].parts == ("part one", "part two", "part three")
    assert posts["202"].due_at == utc(2099, 12, 1, 8, 0)
    assert posts["101"].parts == ("a single post",)


def test_a_thread_mixing_accounts_or_times_is_refused(folder: BotFolder) -> None:
    rows = [
        ["@bob", "2099-12-01 09:00", "part one", "t1"],
        ["@alice", "", "part two", "t1"],
        ["@bob", "2099-12-01 11:00", "part three", "t1"],
    ]
    path = write_csv(folder.path / "thread.csv", rows, header=("account", "due_at", "text", "thread_id"))
    with pytest.raises(ImportRefused) as refused:
        import_csv(folder.store(), path, "Europe/Berlin")
    found = {problem.line: problem.reason for problem in refused.value.problems}
    assert found[3] == "thread 't1' belongs to @bob (line 2), not @alice"
    assert "a part cannot have another" in found[4]


def test_empty_due_at_takes_the_next_free_slots_around_the_files_own_times(folder: BotFolder) -> None:
    store = folder.store()
    save_slots(store, "101", parse_slots("daily 09:00", "Europe/Berlin"))
    now = utc(2099, 11, 30, 12, 0)  # Monday 30 Nov 2099, after that day's slot
    rows = [
        ["@alice", "", "first free slot"],
        ["@alice", "2099-12-02 09:00", "takes Wednesday's slot by time"],
        ["@alice", "", "second free slot"],
    ]
    posts = import_csv(store, write_csv(folder.path / "slots.csv", rows), "Europe/Berlin", now)
    due = {post.text: post.due_at for post in posts}
    assert due == {"first free slot": utc(2099, 12, 1, 8, 0),
                   "takes Wednesday's slot by time": utc(2099, 12, 2, 8, 0),
                   "second free slot": utc(2099, 12, 3, 8, 0)}
    again = import_csv(store, write_csv(folder.path / "more.csv", [["@alice", "", "after those"]]),
                       "Europe/Berlin", now)
    assert again[0].due_at == utc(2099, 12, 4, 8, 0)  # the slots the first file took are taken


@pytest.mark.slow
def test_more_than_a_thousand_rows_show_a_progress_bar(folder: BotFolder) -> None:
    rows = thousand_rows() + [["@alice", "2099-12-31 23:00", "one more"]]
    result = folder.run("import", str(write_csv(folder.path / "big.csv", rows)))
    assert result.returncode == 0, result.stderr
    assert "Checking rows" in result.stderr
    assert "Queued 1,001 posts" in result.stdout
    assert len(folder.store().queued_posts()) == 1001


def test_line_numbers_are_the_files_own_when_a_text_spans_lines(folder: BotFolder) -> None:
    path = folder.path / "multiline.csv"
    path.write_text('account,due_at,text\n\n@alice,2099-12-01 09:00,"one\ntwo\nthree"\n@nobody,2099-12-01 09:00,x\n',
                    encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        import_csv(folder.store(), path, "UTC")
    assert [str(problem) for problem in refused.value.problems] == ["line 6: no account @nobody (connected: @alice, @bob)"]


@pytest.mark.parametrize("content", ["", "account,due_at,text\n", "\n\n"])
def test_a_file_without_rows_says_so_instead_of_counting_a_bad_row(folder: BotFolder, content: str) -> None:
    path = folder.path / "empty.csv"
    path.write_text(content, encoding="utf-8")
    result = folder.run("import", str(path))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(
        "empty.csv has no rows to queue (it is empty, or holds only its header line); nothing was queued")
    assert "bad row" not in result.stderr
    assert folder.store().queued_posts() == []
