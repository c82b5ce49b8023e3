"""The dashboard's live panels as HTML fragments, which `static/live.js` polls and swaps in.

Each fragment is the partial template the full page includes, rendered from the same
values (`web.panels`, `web.charts`, `web.calendar`), so a poll shows what a reload would. A fragment answer carries
`X-Fragment: 1`: the script swaps in only such answers, never the sign-in page a
signed-out session is sent to. No single-page framework: the server renders, the
script replaces one element's children.
"""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from web.calendar import calendar_context
from web.charts import charts_panel
from web.db import now, settings, store
from web.panels import accounts_panel, clock_panel, history_panel, page_number, queue_panel

bp = Blueprint("fragments", __name__, url_prefix="/fragments")


def fragment(template: str, values: dict[str, object]) -> ResponseReturnValue:
    return render_template(template, **values), 200, {"X-Fragment": "1"}


@bp.get("/accounts")
def accounts() -> ResponseReturnValue:
    return fragment("_accounts.html", accounts_panel(now()))


@bp.get("/clock")
def clock() -> ResponseReturnValue:
    return fragment("_clock.html", clock_panel(now()))


@bp.get("/queue")
def queue() -> ResponseReturnValue:
    return fragment("_queue.html", queue_panel(page_number(request.args.get("page")), now()))


@bp.get("/history")
def history() -> ResponseReturnValue:
    return fragment("_history.html", history_panel(page_number(request.args.get("page")), now()))


@bp.get("/charts")
def charts() -> ResponseReturnValue:
    return fragment("_charts.html", charts_panel(store(), settings(), store().list_accounts(), now(),
                                                 request.args.get("chart")))


@bp.get("/calendar")
def calendar() -> ResponseReturnValue:
    return fragment("_calendar.html", calendar_context(request.args.get("account")))
