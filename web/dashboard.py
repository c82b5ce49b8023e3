"""The dashboard (`/`): accounts and their token health, the slot editor, the queue with its cost
and the tier's warnings, the history, generators' failures, and the compose form.

Queuing goes through `bot.queue.queue_post`, the same door the CLI uses, and the time
is read by `bot.when.parse_when` as the CLI's `--at` is (the operator's zone; a time
the clocks skip is refused), so the web form refuses what the CLI refuses with the
same reason; "next free slot" is `queue_post` with `bot.queue.NEXT_SLOT`, as `tweetbot post`
without `--at` asks it for an account with slots. The live counter on the page is a port of
`xtext` (`static/counter.js`) fed by `/text-rules.json`; the server's check is the
one that counts.

"Post now" and "Retry" change the store through `bot.queue.post_now` and
`bot.queue.retry` (as `tweetbot post-now` and `tweetbot retry` do) and never call X:
the worker is the only sender, which keeps exactly-once in one place.

The form is multipart: each part may carry files (`web.form_files` names the fields),
handed to the queue as `MediaFile`s, which checks them (type from the bytes, sizes,
counts, alt text, the account's media.write scope) and stores their bytes only
once the post is accepted. After a refusal the page lists the files that were sent
(a browser never refills a file field) with the alt text typed for each.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot import queue
from bot.generators import FAILED_EVENT
from bot.media_checks import ACCEPTED, MediaFile
from bot.models import DISCONNECTED, Account, Post
from bot.post_options import CELLS, REPLY_SETTINGS, options_from_cells
from bot.schedules import NoSlots, free_slots, load_slots
from bot.when import WhenError, parse_when
from web.charts import charts_panel
from web.db import now as clock_now
from web.db import settings, store
from web.display import (
    SlotsView,
    account_hold,
    failure_view,
    local_time,
    media_count,
    refusal_words,
    slots_view,
    zone_names,
)
from web.form_files import ACCEPT, Chosen, chosen_of, files_of, limits
from web.panels import accounts_panel, back_target, clock_panel, history_panel, page_number, queue_panel
from xtext import MAX_WEIGHTED_LENGTH, V3_JSON
from xtext.tlds import ALL_TLDS

log = logging.getLogger("tweetbot.web.dashboard")
bp = Blueprint("dashboard", __name__)

SLOTS_SHOWN = 5        # next free slot times shown per account, as `tweetbot slots show` lists them
FAILURES_SHOWN = 5     # the last generator failures shown
AT, SLOT, NOW = "at", "slot", "now"  # the compose form's ways to say when
OPTION_FIELDS = CELLS  # the compose form's "Options" fields


@dataclass
class Compose:
    """What the compose form holds (kept when a post is refused, so nothing typed is lost)."""

    account: str = ""
    parts: list[str] = field(default_factory=lambda: [""])
    due_at: str = ""
    when: str = AT
    media: list[list[Chosen]] = field(default_factory=list)  # per part, what was sent (after a refusal)
    back: str = ""  # where to go once queued (the calendar a slot was picked in)
    options: dict[str, str] = field(default_factory=dict)  # the option fields as typed (OPTION_FIELDS)
    plug_files: list[MediaFile] = field(default_factory=list)  # the plug's files, as sent

    def raw_options(self) -> dict[str, Any]:
        """The options the fields ask for, as `bot.post_options` takes them."""
        raw = options_from_cells(self.options)
        if self.plug_files and "plug" in raw:
            raw["plug"]["media"] = self.plug_files
        return raw

    def chosen(self, index: int) -> list[Chosen]:
        """The files sent for part `index` (0-based), to list again after a refusal."""
        return self.media[index] if index < len(self.media) else []


@dataclass(frozen=True)
class SlotForm:
    """What one account's slot form held when it was refused, and why."""

    account_id: str
    spec: str
    tz: str
    error: str


@bp.get("/")
def index() -> ResponseReturnValue:
    """The dashboard; `?account=<id>&at=<local time>&back=/calendar…` prefill the compose form (a calendar slot)."""
    at = request.args.get("at", "")
    prefill = Compose(account=request.args.get("account", ""),
                      due_at=at if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", at) else "",
                      back=back_target(request.args.get("back")))
    return render_dashboard(prefill)


def render_dashboard(compose: Compose, error: str | None = None, status: int = 200,
                     slot_form: SlotForm | None = None) -> ResponseReturnValue:
    """The whole dashboard; `compose` and `error` (or `slot_form`) refill a form after a refusal.
    The accounts, the queue and the history are the live panels (`web.panels`), one page of each."""
    now, zone = clock_now(), settings().zone
    accounts = store().list_accounts()
    handles = {a.user_id: a.handle for a in accounts}
    postable = [a for a in accounts if a.status != DISCONNECTED]
    can_post = {a.user_id for a in postable}
    slots = [account_slots(a, now, slot_form) for a in accounts]
    clock = clock_panel(now)
    compose.due_at = compose.due_at or clock["suggested_due"]
    compose.account = compose.account or (postable[0].user_id if postable else "")
    queue = queue_panel(page_number(request.args.get("queue_page")), now, accounts)
    charts = charts_panel(store(), settings(), accounts, now, request.args.get("chart"), queue["queued_posts"])
    page = render_template(
        "dashboard.html",
        **accounts_panel(now),
        **queue,
        **history_panel(page_number(request.args.get("history_page")), now, accounts),
        **charts,
        slots=slots, slot_choices=[s for s in slots if s.next_free and s.user_id in can_post],
        zones=zone_names(), reply_choices=REPLY_SETTINGS,
        failures=[failure_view(e, handles, zone) for e in store().events(FAILURES_SHOWN, kind=FAILED_EVENT)],
        postable=postable, compose=compose, error=error,
        max_length=MAX_WEIGHTED_LENGTH,
        limits=limits(), accept=ACCEPT, accepted=ACCEPTED,
        **clock)
    return page, status


def account_slots(account: Account, now: datetime, refused: SlotForm | None) -> SlotsView:
    """The slot editor of one account: its slots, its next free slot times, the refused form if it was this one's."""
    schedule = load_slots(store(), account.user_id)
    free = islice(free_slots(store(), account.user_id, now), SLOTS_SHOWN) if schedule is not None else ()
    mine = refused if refused is not None and refused.account_id == account.user_id else None
    return slots_view(account, schedule, free, settings().zone,
                      form=(mine.spec, mine.tz) if mine else None, error=mine.error if mine else None)


@bp.post("/posts")
def compose() -> ResponseReturnValue:
    """Queue one post or thread (with its files) from the compose form, or show the form again with the reason."""
    texts = [p.replace("\r\n", "\n") for p in request.form.getlist("part")] or [""]
    sent = files_of(request.files, request.form, len(texts))
    form = Compose(account=request.form.get("account", ""), parts=texts,
                   due_at=request.form.get("due_at", "").strip(),
                   when=_when_chosen(request.form.get("when")), media=chosen_of(sent),
                   back=back_target(request.form.get("back")),
                   options={name: request.form.get(name, "") for name in OPTION_FIELDS},
                   plug_files=[MediaFile(upload.filename or "plug file", upload.read())
                               for upload in request.files.getlist("plug_media") if upload.filename])
    parts, media = kept_parts(texts, sent)
    try:
        post = _queue(form, parts, media)
    except NoSlots:
        found = store().find_account(form.account)
        handle = found.handle if found else "this account"
        return render_dashboard(form, error=f"Not queued: {handle} has no slots: set them under Slots, "
                                            f"or give a time.", status=400)
    except WhenError as exc:
        return render_dashboard(form, error=f"Not queued: {exc}.", status=400)
    except queue.QueueError as exc:
        return render_dashboard(form, error=f"Not queued: {refusal_words(exc, clock_now(), settings().zone)}.",
                                status=400)
    kind = f"a thread of {len(post.parts)} parts" if len(post.parts) > 1 else "a post"
    kind += f" with {media_count(post)}" if post.media_count else ""
    slot = " (the account's next free slot)" if form.when == SLOT else ""
    log.info("queued post %s for %s", post.id, post.due_at.isoformat())
    if form.when == NOW:
        flash(f"Queued {kind} for now: the worker sends it on its next round.", "ok")
    else:
        flash(f"Queued {kind} for {local_time(post.due_at, settings().zone)}{slot}.", "ok")
    return redirect(form.back or url_for("dashboard.index"), 303)


def _when_chosen(value: str | None) -> str:
    """The compose form's choice of when (anything else, or nothing, is a time typed)."""
    return value if value in (SLOT, NOW) else AT


def kept_parts(texts: list[str], media: list[list[MediaFile]]) -> tuple[list[str], list[list[MediaFile]]]:
    """The parts to queue: those with text or files (an empty extra box is no part), each with its files."""
    kept = [(text, files) for text, files in zip(texts, media, strict=True) if text.strip() or files]
    return [text for text, _ in kept], [files for _, files in kept]


def _queue(form: Compose, parts: list[str], media: list[list[MediaFile]]) -> Post:
    """At the time typed, now, or at the account's next free slot."""
    now = clock_now()
    when: queue.When = (queue.NEXT_SLOT if form.when == SLOT else now if form.when == NOW
                        else parse_when(form.due_at, settings().zone, now))
    return queue.queue_post(store(), form.account, parts, when, now, source="web", media=media,
                            zone=settings().zone, options=form.raw_options(), tier=settings().x_tier)


@bp.post("/posts/<int:post_id>/cancel")
def cancel(post_id: int) -> ResponseReturnValue:
    try:
        queue.cancel(store(), post_id)
    except queue.QueueError as exc:
        flash(f"Not canceled: {exc}.", "error")
    else:
        flash(f"Canceled post {post_id}.", "ok")
    return redirect(back_target(request.form.get("back")) or url_for("dashboard.index"), 303)


@bp.post("/posts/<int:post_id>/now")
def post_now(post_id: int) -> ResponseReturnValue:
    """Make a scheduled post due now; the worker sends it on its next round (this page never calls X)."""
    now = clock_now()
    try:
        post = queue.post_now(store(), post_id, now)
    except queue.QueueError as exc:
        flash(f"Not moved: {exc}.", "error")
        return redirect(back_target(request.form.get("back")) or url_for("dashboard.index"), 303)
    log.info("post %s made due now", post_id)
    flash(f"Post {post_id} is due now: the worker sends it on its next round.{_waiting(post, now)}", "ok")
    return redirect(back_target(request.form.get("back")) or url_for("dashboard.index"), 303)


@bp.post("/posts/<int:post_id>/retry")
def retry(post_id: int) -> ResponseReturnValue:
    """Queue a failed post again, due now, as a new post (refused for X's duplicate-content refusal)."""
    now = clock_now()
    try:
        post = queue.retry(store(), post_id, now, source="web")
    except queue.QueueError as exc:
        flash(f"Not retried: {exc}.", "error")
        return redirect(url_for("dashboard.index"), 303)
    log.info("failed post %s queued again as post %s", post_id, post.id)
    flash(f"Queued failed post {post_id} again as post {post.id}, due now.{_waiting(post, now)}", "ok")
    return redirect(url_for("dashboard.index"), 303)


def _waiting(post: Post, now: datetime) -> str:
    """" It waits: …" when the worker will not send the account's posts yet (a hold, a disconnect)."""
    account = store().get_account(post.account_id)
    hold = "its account is gone" if account is None else account_hold(account, now, settings().zone)
    return f" It waits: {hold}." if hold else ""


@bp.get("/text-rules.json")
def text_rules() -> ResponseReturnValue:
    """The weighting config and TLD list the page's counter needs: one source, `xtext`."""
    return jsonify(config=V3_JSON, tlds=sorted(ALL_TLDS))
