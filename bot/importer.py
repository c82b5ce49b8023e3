"""Importing a CSV of posts: `account,due_at,text`, and optionally `thread_id`, `media`, `alt` and the post
options' columns (`OPTION_COLUMNS`: `poll` as "a | b", `poll_minutes`, `reply_settings`, `community_id`,
`made_with_ai` and `paid_partnership` as yes or no, `reply_to`, `quote_tweet_id`; a thread's on its first row).

All rows or none: a file is checked whole, and one bad row among a thousand
queues nothing, because half a campaign is worse than none and re-importing the
fixed file must not double the good half. Every bad row is named by its line in
the file (as an editor numbers it, the header being line 1) with its reason, all
of them at once, so one round of fixes is enough.

Rows sharing a `thread_id` become one thread, parts in row order, posted at the
first of those rows' times. An empty `due_at` takes the account's next free slot
(the slots this file fills count as taken). Times are read like `--at`: the
operator's zone unless the cell names one. A row's `media` names its files, separated
by `|` and relative to the CSV's folder; its `alt` gives their alt texts in the same
order, also separated by `|`.

`import_csv` checks and queues in one transaction on the store; `check_rows` is the checking alone,
against any `AccountBook` and `SlotFinder`, so the remote CLI (`bot.remote`) checks a file the same
way before it sends any row to a deployed bot.
"""
from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol

import click

from bot.media_checks import MediaError, MediaFile, read_file
from bot.models import Account, Post, utcnow
from bot.post_options import CELLS, options_from_cells
from bot.queue import PAST_GRACE, QueueError, draft_for, save_posts, text_problem
from bot.schedules import free_slots
from bot.store import Repository
from bot.when import WhenError, parse_when

REQUIRED_COLUMNS = ("account", "due_at", "text")
OPTION_COLUMNS = CELLS  # a post's options (`bot.post_options`), on its first row
OPTIONAL_COLUMNS = ("thread_id", "media", "alt", *OPTION_COLUMNS)
MEDIA_SEPARATOR = "|"
PROGRESS_ABOVE = 1000  # rows; smaller files are checked before a bar would be worth drawing
SOURCE = "csv"


@dataclass(frozen=True, order=True)
class RowProblem:
    """Why one line of the file cannot be queued."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class ImportRefused(QueueError):
    """The file was not imported; `problems` holds every bad line, in file order."""

    def __init__(self, problems: Iterable[RowProblem], summary: str | None = None) -> None:
        self.problems = sorted(set(problems))
        count = len({problem.line for problem in self.problems})
        super().__init__(summary or f"{count} bad row{'s' if count != 1 else ''}; nothing was queued")


@dataclass(frozen=True)
class Row:
    """One data row of the file, with the line it starts on."""

    line: int
    account: str
    due_at: str
    text: str
    thread_id: str = ""
    media: str = ""
    alt: str = ""
    options: tuple[tuple[str, str], ...] = ()  # the option columns' cells, as written

    def post_options(self) -> dict[str, Any]:
        """The options its cells ask for, as `bot.post_options` takes them, or `OptionRefused`."""
        return options_from_cells(dict(self.options))

    def media_files(self, folder: Path) -> list[MediaFile]:
        """The row's files with their alt texts, or `MediaError` naming the file."""
        paths = [cell.strip() for cell in self.media.split(MEDIA_SEPARATOR)] if self.media.strip() else []
        alts = [cell.strip() or None for cell in self.alt.split(MEDIA_SEPARATOR)] if self.alt.strip() else []
        if len(alts) > len(paths):
            raise MediaError(f"{len(alts)} alt texts for {len(paths)} media files (both are separated by |)")
        alts += [None] * (len(paths) - len(alts))
        return [read_file(folder / path, alt) for path, alt in zip(paths, alts, strict=True)]


@dataclass
class _Group:
    """The rows that become one post: one row, or the parts of one thread."""

    rows: list[Row] = field(default_factory=list)
    account: Account | None = None
    due_at: datetime | None = None

    @property
    def line(self) -> int:
        return self.rows[0].line


def read_rows(path: Path) -> list[Row]:
    """The file's data rows, or `ImportRefused` when its shape (header, columns, encoding) is wrong."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets often write a BOM
            reader = csv.reader(handle)
            try:
                return list(_rows(reader, lambda: reader.line_num))
            except csv.Error as exc:
                raise ImportRefused([RowProblem(reader.line_num, f"not valid CSV: {exc}")]) from None
    except UnicodeDecodeError as exc:
        raise ImportRefused([RowProblem(1, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None


def _rows(reader: Iterator[list[str]], lines_read: Callable[[], int]) -> Iterator[Row]:
    """Data rows with the line each starts on (a quoted text may span lines); blank lines skipped."""
    header: list[str] | None = None
    bad: list[RowProblem] = []
    previous_end = 0
    for cells in reader:
        line, previous_end = previous_end + 1, lines_read()
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = _header(cells, line)
            continue
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header):]):
            bad.append(RowProblem(line, f"expected {len(header)} columns ({','.join(header)}), found {len(cells)}: "
                                        "put a text that holds commas in double quotes"))
            continue
        # Spreadsheets drop trailing empty cells or add empty ones: both mean "empty".
        values = dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=False))
        yield Row(line, values["account"].strip(), values["due_at"].strip(), values["text"],
                  values.get("thread_id", "").strip(), values.get("media", ""), values.get("alt", ""),
                  tuple((name, values[name]) for name in OPTION_COLUMNS if values.get(name, "").strip()))
    if header is None:
        return  # an empty file: `import_csv` says there is nothing to queue, as for a header alone
    if bad:
        raise ImportRefused(bad)


def _header(cells: list[str], line: int) -> list[str]:
    names = [cell.strip().lower() for cell in cells]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    unknown = [name for name in names if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown or len(set(names)) != len(names):
        found = ",".join(names)
        raise ImportRefused([RowProblem(line, f"the header must be account,due_at,text with optional thread_id, "
                                              f"media, alt and option ({', '.join(OPTION_COLUMNS)}) columns, "
                                              f"in any order; found {found!r}")])
    return names


class AccountBook(Protocol):
    """Where an import looks the rows' accounts up: the store, or the deployed bot's API (`bot.remote`)."""

    def list_accounts(self) -> list[Account]: ...
    def find_account(self, handle: str) -> Account | None: ...


#: An account's free slot times after the import's now, skipping the times given (`NoSlots` without slots).
SlotFinder = Callable[[Account, Collection[datetime]], Iterator[datetime]]


@dataclass(frozen=True)
class Drafted:
    """A checked, unsaved post and the line of the file it starts on."""

    line: int
    post: Post


def import_csv(store: Repository, path: Path, zone: tzinfo | str, now: datetime | None = None,
               show_progress: bool = False, tier: str = "payg") -> list[Post]:
    """Check the whole file, then queue every post in one transaction; the queued posts.

    Raises `ImportRefused` (nothing queued) listing every bad line. Checking and
    queueing share the store's lock, so the free slots found are still free when
    the posts land.
    """
    moment = now or utcnow()
    rows = rows_of(path)

    def slots(account: Account, also_taken: Collection[datetime]) -> Iterator[datetime]:
        return free_slots(store, account.user_id, moment, also_taken=also_taken)

    with store.transaction():
        drafted = check_rows(rows, path.parent, store, slots, zone, moment, show_progress, tier)
        return save_posts(store, [item.post for item in drafted])


def rows_of(path: Path) -> list[Row]:
    """The file's data rows; `ImportRefused` when it has none or its shape is wrong."""
    rows = read_rows(path)
    if not rows:
        raise ImportRefused([], f"{path.name} has no rows to queue (it is empty, or holds only its header "
                                f"line); nothing was queued")
    return rows


def check_rows(rows: list[Row], folder: Path, book: AccountBook, slots: SlotFinder, zone: tzinfo | str,
               now: datetime, show_progress: bool = False, tier: str = "payg") -> list[Drafted]:
    """Every row checked (accounts in `book`, times, texts, files relative to `folder`, free `slots` for
    rows without a time, options as X_TIER `tier` allows), as drafts carrying their files' bytes;
    `ImportRefused` listing every bad line."""
    groups = _group(rows)
    problems: list[RowProblem] = []
    accounts = _AccountCache(book)
    for group in groups:
        problems.extend(_check_group(group, accounts, zone, now))
    problems.extend(_assign_slots(slots, groups))
    bad_lines = {problem.line for problem in problems}
    sound = [group for group in groups if not any(row.line in bad_lines for row in group.rows)]
    drafts = _draft_all(sound, now, show_progress and len(rows) > PROGRESS_ABOVE, folder, tier)
    problems.extend(problem for problem in drafts if isinstance(problem, RowProblem))
    if problems:
        raise ImportRefused(problems)
    return [item for item in drafts if isinstance(item, Drafted)]


def _group(rows: list[Row]) -> list[_Group]:
    """One group per row, except rows sharing a thread_id, which share a group (in row order)."""
    groups: list[_Group] = []
    threads: dict[str, _Group] = {}
    for row in rows:
        if row.thread_id and row.thread_id in threads:
            threads[row.thread_id].rows.append(row)
            continue
        group = _Group([row])
        groups.append(group)
        if row.thread_id:
            threads[row.thread_id] = group
    return groups


class _AccountCache:
    """Accounts by the name a row gives, looked up once per file rather than once per row."""

    def __init__(self, store: AccountBook) -> None:
        self.store = store
        self.found: dict[str, Account | None] = {}
        self.handles: str | None = None

    def known(self) -> str:
        """The connected accounts' handles, for a row naming another ("none yet" without any)."""
        if self.handles is None:
            self.handles = ", ".join(account.handle for account in self.store.list_accounts()) or "none yet"
        return self.handles

    def get(self, name: str) -> Account | None:
        key = name.lstrip("@").lower()
        if key not in self.found:
            self.found[key] = self.store.find_account(name) if key else None
        return self.found[key]


def _check_group(group: _Group, accounts: _AccountCache, zone: tzinfo | str, now: datetime) -> list[RowProblem]:
    """Each row's own faults (account, time, text), and a thread's rows agreeing on account and time."""
    problems: list[RowProblem] = []
    due_line = 0
    for row in group.rows:
        account = accounts.get(row.account)
        if account is None:
            named = f"no account {row.account}" if row.account else "no account"
            problems.append(RowProblem(row.line, f"{named} (connected: {accounts.known()})"))
        elif group.account is None:
            group.account = account
        elif account.user_id != group.account.user_id:
            problems.append(RowProblem(row.line, f"thread {row.thread_id!r} belongs to {group.account.handle} "
                                                 f"(line {group.line}), not {account.handle}"))
        if row.due_at:
            try:
                due = parse_when(row.due_at, zone, now)
            except WhenError as exc:
                problems.append(RowProblem(row.line, f"due_at {exc}"))
            else:
                if due < now - PAST_GRACE:
                    problems.append(RowProblem(row.line, f"due_at {row.due_at!r} is in the past"))
                if group.due_at is None:
                    group.due_at, due_line = due, row.line
                elif due != group.due_at:
                    problems.append(RowProblem(row.line, f"thread {row.thread_id!r} is due at the time on line "
                                                         f"{due_line}; a part cannot have another ({row.due_at})"))
        problem = text_problem(row.text.replace("\r\n", "\n").strip())
        if problem:
            problems.append(RowProblem(row.line, f"text {problem}"))
    return problems


def _assign_slots(finder: SlotFinder, groups: list[_Group]) -> list[RowProblem]:
    """Give each group without a time its account's next free slot, skipping times this file already fills."""
    problems: list[RowProblem] = []
    slots: dict[str, Iterator[datetime] | QueueError] = {}
    for group in groups:
        account = group.account
        if account is None or any(row.due_at for row in group.rows):
            continue
        if account.user_id not in slots:
            fixed = {g.due_at for g in groups
                     if g.due_at is not None and g.account is not None and g.account.user_id == account.user_id}
            try:
                slots[account.user_id] = finder(account, fixed)
            except QueueError as exc:
                slots[account.user_id] = exc
        source = slots[account.user_id]
        if isinstance(source, QueueError):
            problems.append(RowProblem(group.line, f"no due_at, and {source}"))
        else:
            group.due_at = next(source)  # endless: a schedule has at least one slot a week
    return problems


def _draft_all(groups: list[_Group], now: datetime, show_progress: bool, folder: Path,
               tier: str) -> list[Drafted | RowProblem]:
    """Each group through the queue's own checks (`bot.queue.draft`): a post, or the reason it cannot be one."""
    results: list[Drafted | RowProblem] = []
    with _progress(show_progress, sum(len(group.rows) for group in groups)) as advance:
        for group in groups:
            results.append(_draft_group(group, now, folder, tier))
            advance(len(group.rows))
    return results


def _draft_group(group: _Group, now: datetime, folder: Path, tier: str) -> Drafted | RowProblem:
    """One group as a checked post; a bad file is named with the row that names it."""
    assert group.account is not None and group.due_at is not None
    media: list[list[MediaFile]] = []
    for row in group.rows:
        try:
            media.append(row.media_files(folder))
        except MediaError as exc:
            return RowProblem(row.line, str(exc))
    later = next((row for row in group.rows[1:] if row.options), None)
    if later is not None:
        return RowProblem(later.line, "a thread's options go on its first row (they are the first part's)")
    try:
        return Drafted(group.line, draft_for(group.account, [row.text for row in group.rows], group.due_at, now,
                                             source=SOURCE, media=media, options=group.rows[0].post_options(),
                                             tier=tier))
    except QueueError as exc:
        return RowProblem(group.line, str(exc))


@contextmanager
def _progress(shown: bool, length: int) -> Iterator[Callable[[int], None]]:
    """A click progress bar on stderr (stdout stays for the summary), or a no-op."""
    if not shown:
        yield lambda steps: None
        return
    with click.progressbar(length=length, label="Checking rows", file=sys.stderr) as bar:
        yield bar.update
