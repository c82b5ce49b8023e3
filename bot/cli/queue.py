"""The queue's commands: `post`, `import`, `count`, `slots`, `queue`, `cancel`, `post-now`, `retry`, `history`,
`generators`.

Every post goes in through `bot.queue`, so what the command line refuses (a
past time, an unknown account, a text too long, a bad CSV row) is what every
other way in refuses. A refusal prints its reason on stderr, exits 1 and
queues nothing. Times are typed and shown on the operator's clock (TIMEZONE).
The commands get their records from a `bot.cli.sources.Source`: the local store,
or a deployed bot's API (TWEETBOT_URL or --url), rendered by the same code.

`bot.cli` imports this module and adds its `COMMANDS`; what both need is in
`bot.cli.common`, so neither imports the other's module and either can be imported first.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import click

from bot.cli.common import fail, settings_or_exit, store_or_exit
from bot.cli.sources import Source, open_source, remote_option
from bot.importer import ImportRefused
from bot.limits import queue_warnings
from bot.media_checks import MediaError, MediaFile, read_file
from bot.models import ACTIVE, POSTED, Account, Post, from_iso, utcnow
from bot.post_options import CELLS, REPLY_SETTINGS, described, options_from_cells, parsed_flags
from bot.pricing import cost_line, dollars, post_cost, unsent_cost
from bot.queue import QueueError, control_problem
from bot.schedules import SlotSchedule, SlotSpecError, parse_slots
from bot.settings import Settings
from bot.store import Reading, Repository
from bot.when import WhenError, format_local, parse_when, relative
from xtext import MAX_WEIGHTED_LENGTH, length_error, parse_post, weighted_length

THREAD_SEPARATOR = "---"
HISTORY_LIMIT = 50
HISTORY_TEXT = 32  # characters of a post's first part shown in `history`
COST_DAYS = 30
SLOTS_SHOWN = 5
RELATIVE_WITHIN = timedelta(hours=48)


# -- shared helpers ------------------------------------------------------------------------


def open_queue() -> tuple[Settings, Repository]:
    """Settings and the verified store (exit 2 with one line if it cannot be used)."""
    settings = settings_or_exit()
    return settings, store_or_exit(settings)


def handles_by_id(source: Source) -> dict[str, str]:
    return {account.user_id: account.handle for account in source.list_accounts()}


def pick_account(source: Source, handle: str | None) -> Account:
    """The account `--account` names, or the only one there is; refuses otherwise."""
    accounts = source.list_accounts()
    known = ", ".join(a.handle for a in accounts) or "none yet"
    if handle:
        found = source.find_account(handle)
        if found is None:
            fail(f"no account {handle} (connected: {known})")
        return found
    if len(accounts) == 1:
        return accounts[0]
    if not accounts:
        fail("no accounts yet: sign in to the web app and press Connect first")
    fail(f"there are several accounts: say which with --account ({known})")


class ThreadFileError(ValueError):
    """A thread file that cannot be read as a thread; the message names the part."""


def read_thread_file(path: Path) -> tuple[list[str], list[list[MediaFile]], dict[str, str]]:
    """The parts of a thread file, each part's media, and the post's options.

    Texts are separated by lines holding only `---`. In a part, a line `media: FILE`
    (relative to the thread file) attaches a file, and a line `alt: TEXT` right after
    it gives that file's alt text; a part of media lines only is a part. In the first
    part, a line `poll: a | b`, `reply_to: URL`, `expire_after: 3d` (any of
    `bot.post_options.CELLS`) sets that option; in a later part it is refused, since
    the options are the first part's. An empty part before the last one is refused
    (`ThreadFileError`, naming it and its line) rather than dropped, which would
    renumber the parts after it; empty parts after the last one (a closing `---`) end
    the file.
    """
    parts: list[list[str]] = [[]]
    media: list[list[MediaFile]] = [[]]
    options: dict[str, str] = {}
    starts = [1]  # the line each part begins on
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        key, _, value = line.partition(":")
        if line.strip() == THREAD_SEPARATOR:
            parts.append([])
            media.append([])
            starts.append(number + 1)
        elif key.strip() in CELLS and value.strip():
            if len(parts) > 1:
                raise ThreadFileError(f"line {number} of {path.name}: {key.strip()} goes in the first part "
                                      "(a post's options are its first part's)")
            options[key.strip()] = value.strip()
        elif key.strip() == "media" and value.strip():
            media[-1].append(read_file(path.parent / value.strip()))
        elif key.strip() == "alt" and media[-1] and media[-1][-1].alt is None:
            media[-1][-1] = replace(media[-1][-1], alt=value.strip())
        else:
            parts[-1].append(line)
    texts = ["\n".join(lines).strip() for lines in parts]
    filled = [index for index, (text, files) in enumerate(zip(texts, media, strict=True)) if text or files]
    if not filled:
        raise ThreadFileError(f"{path.name} is empty: write the parts, separated by lines holding only ---")
    for index in range(filled[-1]):
        if index not in filled:
            raise ThreadFileError(f"part {index + 1} of {path.name} (line {starts[index]}) is empty: "
                                  "write it, or remove the --- that starts or ends it")
    last = filled[-1] + 1
    return texts[:last], media[:last], options


def given_media(paths: Sequence[Path], alts: Sequence[str]) -> list[list[MediaFile]]:
    """`--media` files with their `--alt` texts paired in order, as the media of a one-part post."""
    if len(alts) > len(paths):
        fail(f"{len(alts)} --alt texts for {len(paths)} --media files: the n-th --alt goes with the n-th --media")
    padded: list[str | None] = [*alts, *[None] * (len(paths) - len(alts))]
    return [[read_file(path, alt) for path, alt in zip(paths, padded, strict=True)]] if paths else []


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def length_text(post: Post) -> str:
    longest = max(weighted_length(part) for part in post.parts)
    return f"{longest}/{MAX_WEIGHTED_LENGTH}"


def media_text(post: Post) -> str:
    """How many files a post carries, "-" for none."""
    return str(post.media_count) if post.media_count else "-"


def describe_due(due: datetime, zone: tzinfo) -> str:
    """The due time on the operator's clock, with "in 3 h 5 min" when that is near enough to help."""
    shown = format_local(due, zone)
    return f"{shown} ({relative(due)})" if abs(due - utcnow()) < RELATIVE_WITHIN else shown


# -- post ------------------------------------------------------------------------------------


@click.command("post")
@click.argument("text", required=False)
@click.option("--at", "when", metavar="WHEN",
              help='"2026-12-01 09:00", "tomorrow 09:00", "mon 09:00", "now", "in 2 hours"; '
                   "TIMEZONE unless a zone follows. Default: the account's next free slot, else now.")
@click.option("--account", "handle", metavar="@USER", help="Default: the only connected account.")
@click.option("--thread-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A thread: parts separated by lines holding only ---; `media: FILE` lines attach files.")
@click.option("--media", "media_paths", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="An image (up to 4), GIF or video to attach; repeat for several.")
@click.option("--alt", "alts", multiple=True, metavar="TEXT", help="Alt text for the --media before it.")
@click.option("--poll", metavar='"A | B"', help="A poll of 2 to 4 options (1 to 25 characters each), split by |.")
@click.option("--poll-minutes", type=int, metavar="N", help="How long the poll runs: 5 to 10080 (default 1440).")
@click.option("--reply-settings", type=click.Choice(["everyone", *REPLY_SETTINGS]),
              help="Who may reply (default everyone).")
@click.option("--community", "community_id", metavar="ID", help="Post into this X Community.")
@click.option("--made-with-ai", is_flag=True, help="Disclose that the post was made with AI.")
@click.option("--paid-partnership", is_flag=True, help="Disclose a paid partnership.")
@click.option("--reply-to", metavar="URL|ID", help="Reply to this post (X takes replies to another author's post "
                                                   "only where that author mentioned the account).")
@click.option("--quote", "quote_tweet_id", metavar="URL|ID", help="Quote this post (X's Enterprise tier only).")
@click.option("--repeat-every", metavar="DAYS", help="Post it again every DAYS days (e.g. 2d), each time a new post.")
@click.option("--variant", "variants", multiple=True, metavar="TEXT",
              help="A text the repeats take in turn with TEXT (X refuses the same text again); or put {date} in TEXT.")
@click.option("--plug", "plug_text", metavar="TEXT", help="Reply to the post once with TEXT, at --plug-likes or "
                                                         "--plug-after, whichever comes first.")
@click.option("--plug-likes", type=int, metavar="N", help="Send the plug once the post has N likes (as last read).")
@click.option("--plug-after", type=float, metavar="HOURS", help="Send the plug HOURS after the post went out.")
@click.option("--plug-media", "plug_media", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="An image, GIF or video the plug's reply carries; repeat for several.")
@click.option("--expire-after", metavar="DURATION", help="Delete the post from X this long after it went out "
                                                        "(e.g. 12h, 3d): an offer that ends, a status that goes stale.")
@remote_option
def post_command(text: str | None, when: str | None, handle: str | None, thread_file: Path | None,
                 media_paths: tuple[Path, ...], alts: tuple[str, ...], poll: str | None, poll_minutes: int | None,
                 reply_settings: str | None, community_id: str | None, made_with_ai: bool, paid_partnership: bool,
                 reply_to: str | None, quote_tweet_id: str | None, repeat_every: str | None,
                 variants: tuple[str, ...], plug_text: str | None, plug_likes: int | None, plug_after: float | None,
                 plug_media: tuple[Path, ...], expire_after: str | None, url: str | None) -> None:
    """Queue TEXT (or the thread in --thread-file) for one account, with the post options given."""
    if variants and not repeat_every:
        fail("--variant goes with --repeat-every (the texts a repeat takes in turn)")
    if (plug_likes or plug_after or plug_media) and not plug_text:
        fail("--plug-likes, --plug-after and --plug-media go with --plug TEXT")
    if (text is None) == (thread_file is None):
        fail("give either TEXT or --thread-file (one of them)")
    if thread_file is not None and media_paths:
        fail("a thread file names its media on `media:` lines; --media is for TEXT")
    try:
        options = parsed_flags(poll, poll_minutes, [
            ("reply_settings", reply_settings), ("community_id", community_id), ("made_with_ai", made_with_ai),
            ("paid_partnership", paid_partnership), ("reply_to", reply_to), ("quote_tweet_id", quote_tweet_id),
            ("expire_after", expire_after),
            ("repeat", {"every_days": repeat_every, "texts": list(variants)} if repeat_every else None),
            ("plug", {"text": plug_text, "likes": plug_likes, "after_hours": plug_after,
                      "media": given_media(plug_media, ())[0] if plug_media else []} if plug_text else None)])
        parts, media, written = ([text], given_media(media_paths, alts), {}) if text is not None else \
            read_thread_file(thread_file)  # type: ignore[arg-type]
        options = {**options_from_cells(written), **options}
    except (MediaError, ThreadFileError, QueueError) as exc:
        fail(str(exc))
    source = open_source(url)
    account = pick_account(source, handle)
    now = utcnow()
    try:
        due = parse_when(when, source.zone, now) if when is not None else None
        post = source.queue_post(account, parts, media, due, now, options)
    except (QueueError, WhenError) as exc:
        fail(str(exc))
    kind = f"thread {post.id} ({len(post.parts)} parts)" if len(post.parts) > 1 else f"post {post.id}"
    attached = f", {plural(post.media_count, 'media file')}" if post.media_count else ""
    extras = "".join(f", {words}" for words in described(post.options))
    click.echo(f"Queued {kind} for {account.handle}, due {describe_due(post.due_at, source.zone)}, "
               f"{length_text(post)}{attached}{extras}, {dollars(post_cost(post))} under pay-per-use.")


# -- import ---------------------------------------------------------------------------------


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@remote_option
def import_command(file: Path, url: str | None) -> None:
    """Queue every row of FILE (CSV: account,due_at,text[,thread_id]); all rows or none."""
    source = open_source(url)
    try:
        posts = source.import_csv(file, utcnow(), show_progress=True)
    except ImportRefused as exc:
        for problem in exc.problems:
            click.echo(f"{file.name}: {problem}", err=True)
        fail(str(exc))
    names = handles_by_id(source)
    threads = sum(1 for post in posts if len(post.parts) > 1)
    accounts = sorted({names.get(post.account_id, post.account_id) for post in posts})
    first, last = min(p.due_at for p in posts), max(p.due_at for p in posts)
    thread_note = f" ({plural(threads, 'thread')})" if threads else ""
    click.echo(f"Queued {plural(len(posts), 'post')}{thread_note} for {', '.join(accounts)}: "
               f"first due {format_local(first, source.zone)}, last {format_local(last, source.zone)}.")


# -- count ------------------------------------------------------------------------------------


@click.command("count")
@click.argument("text")
def count_command(text: str) -> None:
    """Print TEXT's weighted length, the limit and whether it can be posted (exit 1 if not)."""
    parsed = parse_post(text)
    stripped = text.replace("\r\n", "\n").strip()  # what the queue would keep
    control, reason = control_problem(stripped), length_error(stripped)
    over = parsed.weighted_length - MAX_WEIGHTED_LENGTH
    if not stripped:
        verdict = "cannot be posted: it is empty"
    elif control:
        verdict = f"cannot be posted: it {control}"
    elif reason and over > 0:
        verdict = f"does not fit ({over} too many)"
    elif reason:
        verdict = f"cannot be posted: {'it ' if reason.startswith('contains') else ''}{reason}"
    else:
        verdict = "fits"
    click.echo(f"{parsed.weighted_length}/{MAX_WEIGHTED_LENGTH} weighted characters: {verdict}")
    sys.exit(0 if verdict == "fits" else 1)



# -- slots ----------------------------------------------------------------------------------


@click.group("slots", invoke_without_command=True)
@click.pass_context
def slots_group(context: click.Context) -> None:
    """An account's weekly posting times: a post queued without --at takes the next free one.
    Alone, `tweetbot slots` shows every account's (as `slots show`)."""
    if context.invoked_subcommand is None:
        context.invoke(slots_show, handle=None, url=None)


@slots_group.command("set")
@click.argument("handle", metavar="@USER")
@click.argument("spec", metavar='"mon-fri 09:00,13:00; sat 11:00"')
@click.option("--tz", default=None, help="The slots' time zone. Default: one the text ends with, else TIMEZONE.")
@remote_option
def slots_set(handle: str, spec: str, tz: str | None, url: str | None) -> None:
    """Set @USER's slots (replacing any it had)."""
    source = open_source(url)
    account = pick_account(source, handle)
    try:
        schedule = parse_slots(spec, tz, default_tz=source.timezone)
        upcoming = source.save_slots(account, schedule, SLOTS_SHOWN)
    except SlotSpecError as exc:
        fail(str(exc))
    click.echo(f"{account.handle}: {schedule.spec} ({schedule.zone})")
    _print_next_slots(source, schedule, upcoming)


@slots_group.command("show")
@click.argument("handle", metavar="[@USER]", required=False)
@remote_option
def slots_show(handle: str | None, url: str | None) -> None:
    """Show the slots of @USER (default: every account) and the next free ones."""
    source = open_source(url)
    accounts = [pick_account(source, handle)] if handle else source.list_accounts()
    if not accounts:
        click.echo("No accounts yet.")
    for account in accounts:
        schedule, upcoming = source.slots(account, SLOTS_SHOWN)
        if schedule is None:
            click.echo(f"{account.handle}: no slots (posts without --at go out at once)")
            continue
        click.echo(f"{account.handle}: {schedule.spec} ({schedule.zone})")
        _print_next_slots(source, schedule, upcoming)


@slots_group.command("clear")
@click.argument("handle", metavar="@USER")
@remote_option
def slots_clear(handle: str, url: str | None) -> None:
    """Remove @USER's slots (queued posts keep their times)."""
    source = open_source(url)
    account = pick_account(source, handle)
    source.clear_slots(account)
    click.echo(f"{account.handle}: no slots")


def _print_next_slots(source: Source, schedule: SlotSchedule, upcoming: list[datetime]) -> None:
    for moment in upcoming:
        shown = format_local(moment, schedule.zone)
        if schedule.zone != source.timezone:
            shown += f"  ({format_local(moment, source.zone)})"
        click.echo(f"  next free: {shown}")


# -- queue, cancel, history -------------------------------------------------------------------


@click.command("queue")
@remote_option
def queue_command(url: str | None) -> None:
    """The queued posts: due time, status, length, pay-per-use cost; the next 30 days' total; tier warnings."""
    source = open_source(url)
    posts = source.queued_posts()
    names = handles_by_id(source)
    if not posts:
        click.echo("The queue is empty.")
        return
    click.echo(f"{'ID':>6}  {'ACCOUNT':16} {'DUE':22} {'STATUS':10} {'PARTS':>5} {'MEDIA':>5} {'LENGTH':>7} "
               f"{'COST':>7}  NOTE")
    for post in posts:
        click.echo(f"{post.id:>6}  {names.get(post.account_id, post.account_id):16} "
                   f"{format_local(post.due_at, source.zone):22} {post.status:10} {len(post.parts):>5} "
                   f"{media_text(post):>5} {length_text(post):>7} {dollars(post_cost(post)):>7}  "
                   f"{post.last_error or ''}".rstrip())
    click.echo(cost_line(posts, utcnow(), source.x_tier, COST_DAYS))
    for warning in queue_warnings(posts, source.x_tier, names, source.zone):
        click.secho(f"warning: {warning}", fg="yellow")


@click.command("cancel")
@click.argument("post_id", metavar="ID", type=int)
@remote_option
def cancel_command(post_id: int, url: str | None) -> None:
    """Cancel queued post ID (one not yet going out)."""
    source = open_source(url)
    try:
        post = source.cancel(post_id)
    except QueueError as exc:
        fail(str(exc))
    handle = handles_by_id(source).get(post.account_id, post.account_id)
    click.echo(f"Canceled post {post.id} ({handle}, was due {format_local(post.due_at, source.zone)}).")


@click.command("post-now")
@click.argument("post_id", metavar="ID", type=int)
@remote_option
def post_now_command(post_id: int, url: str | None) -> None:
    """Make queued post ID due now: the worker sends it on its next round (a held account still waits)."""
    source = open_source(url)
    was = source.get_post(post_id)
    try:
        post = source.post_now(post_id)
    except QueueError as exc:
        fail(str(exc))
    account = source.get_account(post.account_id)
    handle = account.handle if account else post.account_id
    was_due = format_local(was.due_at if was else None, source.zone)
    click.echo(f"Post {post.id} ({handle}) is due now (was due {was_due}); a running worker sends it within seconds.")
    hold = _hold_note(account, utcnow(), source.zone)
    if hold:
        click.secho(f"note: {hold}", fg="yellow")


@click.command("retry")
@click.argument("post_id", metavar="ID", type=int)
@remote_option
def retry_command(post_id: int, url: str | None) -> None:
    """Queue failed post ID again, due now, as a new post (not for X's duplicate-content refusal)."""
    source = open_source(url)
    try:
        post = source.retry(post_id)
    except QueueError as exc:
        fail(str(exc))
    handle = handles_by_id(source).get(post.account_id, post.account_id)
    kind = f"thread {post.id} ({len(post.parts)} parts)" if len(post.parts) > 1 else f"post {post.id}"
    sent = sum(1 for tweet_id in post.tweet_ids if tweet_id)
    resume = f", resuming after the {plural(sent, 'part')} X already has" if sent else ""
    click.echo(f"Queued failed post {post_id} again as {kind} for {handle}, due now{resume}, "
               f"{dollars(unsent_cost(post))} under pay-per-use.")


def _hold_note(account: Account | None, now: datetime, zone: tzinfo) -> str | None:
    """Why the worker will not send the account's posts yet, if it will not."""
    if account is None:
        return "the post's account is gone: it will not go out"
    if account.status != ACTIVE:
        return f"{account.handle} is {account.status.replace('_', ' ')}: its posts are held until it is reconnected"
    if account.hold_until is not None and account.hold_until > now:
        reason = f" ({account.hold_reason})" if account.hold_reason else ""
        return f"{account.handle} is held until {format_local(account.hold_until, zone)}{reason}"
    return None


@click.command("history")
@remote_option
def history_command(url: str | None) -> None:
    """The last 50 finished posts: when, status, how they did (likes, reposts, replies, views, as last read
    from X, and when), the start of the text, link, error."""
    source = open_source(url)
    posts = source.history(HISTORY_LIMIT)
    if not posts:
        click.echo("Nothing has been posted yet.")
        return
    accounts = {a.user_id: a for a in source.list_accounts()}
    readings = source.readings(posts)
    click.echo(f"{'ID':>6}  {'ACCOUNT':16} {'POSTED':22} {'STATUS':9} {'MEDIA':>5} {'LIKES':>6} {'REPOSTS':>7} "
               f"{'REPLIES':>7} {'VIEWS':>7} {'READ':14} {'TEXT':{HISTORY_TEXT}} {'LINK':45} ERROR")
    for post in posts:
        account = accounts.get(post.account_id)
        link = source.link(post, account) or "-"
        posted = format_local(post.posted_at, source.zone) if post.status == POSTED else "-"
        click.echo(f"{post.id:>6}  {account.handle if account else post.account_id:16} {posted:22} "
                   f"{post.status:9} {media_text(post):>5} {metrics_columns(readings.get(post.id))} "
                   f"{shortened(post, HISTORY_TEXT):{HISTORY_TEXT}} {link:45} {post.last_error or ''}".rstrip())


def metrics_columns(reading: Reading | None) -> str:
    """Likes, reposts, replies and views as last read from X, and how long ago; dashes before a first read."""
    if reading is None:
        return f"{'-':>6} {'-':>7} {'-':>7} {'-':>7} {'-':14}"
    counts = [reading.metrics.get(name, 0) for name in ("like_count", "retweet_count", "reply_count",
                                                        "impression_count")]
    return (f"{counts[0]:>6,} {counts[1]:>7,} {counts[2]:>7,} {counts[3]:>7,} "
            f"{relative(reading.read_at):14}")


def shortened(post: Post, width: int) -> str:
    """A post's first part on one line, cut to `width` with "…" (and "+N" for a thread's other parts)."""
    more = f" +{len(post.parts) - 1}" if len(post.parts) > 1 else ""
    line = " ".join(post.parts[0].split()) if post.parts else ""
    room = width - len(more)
    return (line if len(line) <= room else line[:room - 1] + "…") + more


# -- generators ---------------------------------------------------------------------------------


@click.command("generators")
def generators_command() -> None:
    """Check the generators file (tweetbot.toml) and show when each generator runs next."""
    import schedule

    from bot.generators import generators_path, job_for, load_generators, resolve_call

    settings, _ = open_queue()
    path = generators_path(settings)
    specs, problems = load_generators(path, settings.timezone)
    if not path.is_file():
        click.echo(f"No generators: {path} does not exist (set GENERATORS_FILE to use another file).")
    elif not specs and not problems:
        click.echo(f"No generators ({path} has no [[generator]] entries).")
    for spec in specs:
        job = job_for(schedule.Scheduler(), spec).do(lambda: None)
        next_run = job.next_run.astimezone() if job.next_run else None  # the library's naive local time
        try:
            resolve_call(spec.call, spec.folder)
            note = ""
        except Exception as exc:
            note = f"  (cannot load {spec.call}: {type(exc).__name__}: {exc})"
            problems.append(f"{spec.name}: cannot load {spec.call}")
        click.echo(f"{spec.describe()}: next run {format_local(next_run, settings.zone)}{note}")
    for problem in problems:
        click.secho(f"tweetbot: {problem}", fg="red", err=True)
    sys.exit(1 if problems else 0)


@click.command("feeds")
def feeds_command() -> None:
    """The feeds of the generators file ([[feed]]): when each was read, what it holds, its error."""
    from bot.feeds import feed_state, load_feeds

    settings, store = open_queue()
    specs, problems = load_feeds(settings.generators_file, settings.timezone)
    if not specs and not problems:
        click.echo(f"No feeds ({settings.generators_file} has no [[feed]] entries).")
    broken = list(problems)
    for spec in specs:
        state = feed_state(store, spec)
        read = from_iso(state.get("read_at"))
        seen = len(state.get("seen") or [])
        said = (f"read {format_local(read, settings.zone)}, {seen} entr{'y' if seen == 1 else 'ies'} seen" if read
                else "not read yet")
        if state.get("error"):
            said += f"; failing since {format_local(from_iso(state.get('failed_at')), settings.zone)}: {state['error']}"
            broken.append(f"feed {spec.name}: {state['error']}")
        click.echo(f"{spec.describe()}: {said}")
    for problem in problems:
        click.secho(f"tweetbot: {problem}", fg="red", err=True)
    sys.exit(1 if broken else 0)


COMMANDS: tuple[click.Command, ...] = (post_command, import_command, count_command, slots_group, queue_command,
                                       cancel_command, post_now_command, retry_command, history_command,
                                       generators_command, feeds_command)
