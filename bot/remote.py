"""A deployed bot, driven through its `/api/v1` (`web.api`): what the command line uses when `TWEETBOT_URL`
(or a command's `--url`) names one, so a laptop queues to a Heroku bot with an API key and neither
`DATABASE_URL` nor `TOKEN_KEY`.

`Remote` gives the commands what the local layer gives them (`bot.cli.sources.Source`): `Account` and
`Post` records rebuilt from the API's JSON, and the same `bot.refusals` exceptions, rebuilt from a
problem's `type` through `REFUSALS` (derived from the classes' own `kind`), so `bot.cli.queue` renders
either source with one piece of code. Every request goes through `Remote._call`, the one seam: a network
failure, a 5xx, or a key the bot refuses is a `RemoteError` (one line, never a traceback).

Before a post is sent, the checks that need no store run here, as the local layer runs them (the
account's state, the time, the texts, the files), so a refusal reads as it does locally and no file
is uploaded for a post that would be refused. The bot checks everything again, and its word is final.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from bot.importer import Drafted, ImportRefused, RowProblem, check_rows, rows_of
from bot.media_checks import PartsMedia
from bot.models import Account, MediaRef, Post, from_iso, to_iso
from bot.post_options import NAMES as OPTION_NAMES
from bot.queue import draft_for
from bot.refusals import NoSuchPost, QueueError
from bot.schedules import SlotSchedule, SlotSpecError, open_slots, parse_slots
from bot.settings import RemoteSettings
from bot.store.records import Reading

PAGE = 200  # posts per request: the most GET /api/v1/posts answers with
PROBLEM_TYPE = "/api/v1/problems/"  # a problem's `type` is this and the refusal's kind


class RemoteError(Exception):
    """The bot could not be asked, or would not answer: unreachable, a server error, a key it refuses.
    The message is one line, for a person."""


def _refusal_classes(base: type[QueueError]) -> dict[str, type[QueueError]]:
    """Every refusal class under `base` by the `kind` it declares itself (one that only inherits its
    parent's kind is not the class that kind names)."""
    table: dict[str, type[QueueError]] = {}
    pending = [base]
    while pending:
        cls = pending.pop()
        if "kind" in vars(cls):
            table.setdefault(cls.kind, cls)
        pending.extend(cls.__subclasses__())
    return table


#: A problem's kind → the refusal class whose `kind` it is (`SlotSpecError` included: imported above).
REFUSALS: dict[str, type[QueueError]] = _refusal_classes(QueueError)
assert SlotSpecError.kind in REFUSALS


def refusal(kind: str, detail: str) -> QueueError:
    """The refusal a problem of `kind` stands for, with the bot's words (a kind this CLI does not know: a
    plain `QueueError`). Built without the class's own `__init__`: a problem carries the words, not the
    facts some classes keep beside them (`InThePast`'s times)."""
    cls = REFUSALS.get(kind, QueueError)
    error = cls.__new__(cls)
    QueueError.__init__(error, detail)
    return error


# -- records from JSON ------------------------------------------------------------------------------

def account_from_json(doc: dict[str, Any]) -> Account:
    """An `Account` as `GET /api/v1/accounts` shows it (no tokens: they never leave the bot)."""
    return Account(user_id=doc["id"], username=doc["handle"].lstrip("@"), status=doc["status"],
                   scopes=tuple(doc.get("scopes") or ()), expires_at=from_iso(doc.get("expires_at")),
                   refreshed_at=from_iso(doc.get("refreshed_at")),
                   refresh_failures=doc.get("refresh_failures") or 0, last_error=doc.get("error"),
                   hold_until=from_iso(doc.get("hold_until")), hold_reason=doc.get("hold_reason"))


def post_from_json(doc: dict[str, Any]) -> Post:
    """A `Post` as the API shows it: its parts, their tweet ids and media (named by id), its state."""
    parts = doc["parts"]
    media = tuple(tuple(MediaRef(digest=item["id"], kind=item["type"], mime="", size=0, alt=item.get("alt"))
                        for item in part["media"]) for part in parts)
    return Post(id=doc["id"], account_id=doc["account"], parts=tuple(part["text"] for part in parts),
                due_at=_time(doc["due_at"]), status=doc["status"], attempts=doc.get("attempts") or 0,
                tweet_ids=tuple(part["tweet_id"] for part in parts), posted_at=from_iso(doc.get("posted_at")),
                last_error=doc.get("error"), created_at=from_iso(doc.get("created_at")),
                source=doc.get("source") or "api", media=media if any(media) else (),
                failure_kind=doc.get("failure_kind"), requeued_as=doc.get("requeued_as"),
                options={name: doc[name] for name in OPTION_NAMES if doc.get(name) is not None})


def _time(text: str) -> datetime:
    moment = from_iso(text)
    assert moment is not None
    return moment


def _named(ref: MediaRef, media_ids: dict[str, str]) -> dict[str, str]:
    """A file as the API names it: its upload id, and its alt text if it has one."""
    return {"id": media_ids[ref.digest], **({"alt": ref.alt} if ref.alt else {})}


def post_body(account: Account, post: Post, media_ids: dict[str, str]) -> dict[str, Any]:
    """A checked draft as `POST /api/v1/posts` takes it, at its due time; files named by their upload ids."""
    parts = [{"text": text, "media": [_named(ref, media_ids) for ref in post.media_of(index)]}
             for index, text in enumerate(post.parts)]
    options = dict(post.options)
    if options.get("repeat", {}).get("template"):  # a dated repeat: the bot dates it (again) by its own clock
        parts[0]["text"] = options["repeat"]["template"]
        options["repeat"] = {k: v for k, v in options["repeat"].items() if k != "template"}
    if post.plug_media():
        options["plug"] = {**options["plug"], "media": [_named(ref, media_ids) for ref in post.plug_media()]}
    return {"account": account.user_id, "parts": parts, "at": to_iso(post.due_at), **options}


# -- the client ------------------------------------------------------------------------------------

class Remote:
    """The deployed bot at `settings.url`, through one `requests` session and the key in it."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        self.zone, self.timezone, self.x_tier = settings.zone, settings.timezone, settings.x_tier
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {settings.api_key}", "User-Agent": "tweetbot-cli"})
        self._accounts: dict[str, Any] | None = None
        self._links: dict[int, str | None] = {}
        self._readings: dict[int, Reading] = {}

    # The one seam: every request, and every way one can fail.

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's JSON; a refusal (a problem of a kind the queue has) raised as that refusal;
        anything else that is not an answer, a `RemoteError`."""
        url = f"{self.settings.url}/api/v1{path}"
        try:
            answer = self.http.request(method, url, timeout=self.settings.http_timeout, allow_redirects=False,
                                       **kwargs)
        except requests.RequestException as exc:
            raise RemoteError(f"cannot reach {self.settings.url}: {_network_reason(exc, self.settings)}") from None
        body = _json(answer)
        if answer.status_code < 300 and body is not None:
            return body
        raise self._failure(answer, body)

    def _failure(self, answer: requests.Response, body: Any) -> Exception:
        detail = body.get("detail") if isinstance(body, dict) else None
        kind = str(body.get("type", "")).removeprefix(PROBLEM_TYPE) if isinstance(body, dict) else ""
        where = self.settings.url
        if answer.status_code == 401:
            return RemoteError(f"{where} refused the key in TWEETBOT_API_KEY ({_prefix(self.settings.api_key)}): "
                               "it does not know it, or it was revoked (tweetbot keys list, on the bot)")
        if answer.status_code == 403 and detail:
            return RemoteError(f"{where} refused: {detail} (give the CLI a key that has it: "
                               "`tweetbot keys create --name … --scope …` on the bot)")
        if answer.is_redirect:  # not followed: a POST would come back a GET, and the key may not go along
            return RemoteError(f"{where} redirects to {answer.headers.get('Location')}: set TWEETBOT_URL "
                               "(or --url) to where it leads")
        if answer.status_code >= 500:
            return RemoteError(f"{where} failed to answer ({answer.status_code} {answer.reason}): try again, "
                               "or see the web app's log")
        if detail and kind and answer.status_code in (404, 409, 422):
            return refusal(kind, detail)
        if detail:
            return RemoteError(f"{where} refused the request ({answer.status_code}): {detail}")
        return RemoteError(f"{where} is not a tweetbot API (it answered {answer.status_code} "
                           f"{answer.headers.get('Content-Type', 'without a type')} to {answer.request.method} "
                           f"{answer.request.path_url})")

    # -- accounts -----------------------------------------------------------------------------------

    def _account_list(self) -> dict[str, Any]:
        if self._accounts is None:  # one command reads them once, as it would read one store
            self._accounts = self._call("GET", "/accounts")
        return self._accounts

    def list_accounts(self) -> list[Account]:
        return [account_from_json(doc) for doc in self._account_list()["accounts"]]

    def find_account(self, handle: str) -> Account | None:
        """By user id, username or @username, any case (as `Repository.find_account`)."""
        name = handle.lstrip("@").lower()
        return next((a for a in self.list_accounts() if name in (a.user_id, a.username.lower())), None)

    def get_account(self, user_id: str) -> Account | None:
        return next((a for a in self.list_accounts() if a.user_id == user_id), None)

    def sending_workers(self) -> dict[str, str]:
        """The worker sending one of each account's posts right now, by account id."""
        return {doc["id"]: doc["posting_worker"] for doc in self._account_list()["accounts"]
                if doc.get("posting_worker")}

    def workers(self) -> dict[str, datetime]:
        """Every worker heard from lately, and its last heartbeat."""
        return {doc["name"]: _time(doc["heartbeat_at"]) for doc in self._account_list()["workers"]}

    # -- posts --------------------------------------------------------------------------------------

    def _posts(self, status: str, account_id: str | None = None, limit: int | None = None) -> list[Post]:
        """Posts of `status` (queued, finished), page by page, up to `limit`; their links kept for `link`."""
        found: list[Post] = []
        cursor: str | None = "0"
        while cursor is not None and (limit is None or len(found) < limit):
            params = {"status": status, "limit": PAGE if limit is None else min(PAGE, limit - len(found)),
                      "cursor": cursor, **({"account": account_id} if account_id else {})}
            page = self._call("GET", "/posts", params=params)
            found.extend(self._kept(doc) for doc in page["posts"])
            cursor = page["next_cursor"]
        return found

    def _kept(self, doc: dict[str, Any]) -> Post:
        """The post, its first link remembered (the bot knows where X shows it)."""
        self._links[doc["id"]] = next((part["url"] for part in doc["parts"] if part["url"]), None)
        if doc.get("metrics") is not None:
            self._readings[doc["id"]] = Reading(doc["id"], doc["account"], _time(doc["metrics_read_at"]), -1,
                                                doc["metrics"])
        return post_from_json(doc)

    def queued_posts(self, account_id: str | None = None) -> list[Post]:
        return self._posts("queued", account_id)

    def history(self, limit: int) -> list[Post]:
        return self._posts("finished", limit=limit)

    def link(self, post: Post, account: Account | None) -> str | None:
        """Where X shows the post's first part, as the bot said when it listed it."""
        return self._links.get(post.id)

    def readings(self, posts: Sequence[Post]) -> dict[int, Reading]:
        """How the posts did when last read, as the bot said when it listed them (`age` is not shown: -1)."""
        return {post.id: self._readings[post.id] for post in posts if post.id in self._readings}

    def get_post(self, post_id: int) -> Post | None:
        try:
            return self._kept(self._call("GET", f"/posts/{post_id}"))
        except NoSuchPost:
            return None

    def queue_post(self, account: Account, parts: Sequence[str], media: PartsMedia, due: datetime | None,
                   now: datetime, options: dict[str, Any] | None = None) -> Post:
        """Check what needs no store (as `bot.queue` does), upload the files, queue it at `due` (None: the
        account's next free slot, else now, chosen by the bot)."""
        draft = draft_for(account, parts, due or now, now, media=media, zone=self.zone, options=options,
                          tier=self.x_tier)
        body = post_body(account, draft, self._upload([draft]))
        if due is None:
            del body["at"]
        return self._kept(self._call("POST", "/posts", json=body))

    def _upload(self, drafts: Sequence[Post]) -> dict[str, str]:
        """Each distinct file the drafts carry, uploaded once: the bot's id for each digest."""
        ids: dict[str, str] = {}
        for ref in (ref for post in drafts for ref in [*(r for part in post.media for r in part), *post.plug_media()]):
            if ref.digest not in ids and ref.data is not None:
                kept = self._call("POST", "/media", files={"file": (ref.name or "upload", ref.data, ref.mime)})
                ids[ref.digest] = kept["id"]
        return ids

    def cancel(self, post_id: int) -> Post:
        return self._kept(self._call("DELETE", f"/posts/{post_id}"))

    def post_now(self, post_id: int) -> Post:
        return self._kept(self._call("POST", f"/posts/{post_id}/post-now"))

    def retry(self, post_id: int) -> Post:
        return self._kept(self._call("POST", f"/posts/{post_id}/retry"))

    # -- an import: checked here whole, then sent -------------------------------------------------

    def import_csv(self, path: Path, now: datetime, show_progress: bool = False) -> list[Post]:
        """Every row checked as the local import checks it (accounts, times, texts, files, free slots from
        what the bot holds), then each post sent at the time found; `ImportRefused` before any is sent.
        Should the bot refuse one anyway (the queue changed meanwhile), those sent are canceled."""
        rows = rows_of(path)

        def slots(account: Account, also_taken: Collection[datetime]) -> Iterator[datetime]:
            schedule, _ = self.slots(account, 0)
            taken = {post.due_at for post in self.queued_posts(account.user_id)} | set(also_taken)
            return open_slots(schedule, account.handle, now, taken)

        drafted = check_rows(rows, path.parent, self, slots, self.zone, now, show_progress, self.x_tier)
        ids = self._upload([item.post for item in drafted])
        return self._send_all(drafted, ids)

    def _send_all(self, drafted: Sequence[Drafted], ids: dict[str, str]) -> list[Post]:
        """Each draft queued in file order; a refusal cancels those sent before it (all or nothing, as
        far as the API allows); a bot gone mid-way is said with the posts it already holds."""
        sent: list[Post] = []
        for item in drafted:
            account = self.get_account(item.post.account_id)
            assert account is not None  # the rows were checked against these accounts
            try:
                sent.append(self._kept(self._call("POST", "/posts", json=post_body(account, item.post, ids))))
            except QueueError as exc:
                for post in sent:
                    self.cancel(post.id)
                undone = f"; the {len(sent)} posts sent before it were canceled" if sent else ""
                raise ImportRefused([RowProblem(item.line, f"the bot refused it: {exc}{undone}")]) from None
            except RemoteError as exc:
                held = f" (it holds posts {', '.join(str(post.id) for post in sent)} of this file)" if sent else ""
                raise RemoteError(f"{exc}, at line {item.line}{held}") from None
        return sent

    # -- slots --------------------------------------------------------------------------------------

    def slots(self, account: Account, count: int) -> tuple[SlotSchedule | None, list[datetime]]:
        """The account's slots as the bot keeps them, and its next `count` free slot times."""
        found = self._call("GET", f"/accounts/{quote(account.user_id)}/slots")
        return _schedule(found), [_time(moment) for moment in islice(found["next_free"], count)]

    def save_slots(self, account: Account, schedule: SlotSchedule, count: int) -> list[datetime]:
        """Replace the account's slots (as read here: the zone already decided); its next free slot times."""
        found = self._call("PUT", f"/accounts/{quote(account.user_id)}/slots",
                           json={"spec": schedule.spec, "tz": schedule.zone})
        return [_time(moment) for moment in islice(found["next_free"], count)]

    def clear_slots(self, account: Account) -> None:
        self._call("DELETE", f"/accounts/{quote(account.user_id)}/slots")


def _schedule(found: dict[str, Any]) -> SlotSchedule | None:
    return parse_slots(found["spec"], found["tz"]) if found.get("spec") else None


def _json(answer: requests.Response) -> Any:
    """The answer's JSON body, or None when it has none (a proxy's error page, another site)."""
    if answer.headers.get("Content-Type", "").split(";")[0] not in ("application/json", "application/problem+json"):
        return None
    try:
        return answer.json()
    except ValueError:
        return None


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _network_reason(exc: requests.RequestException, settings: RemoteSettings) -> str:
    """Why a request got no answer, in a few words ("Connection refused"), not urllib3's nested reprs."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {settings.http_timeout:g} s (HTTP_TIMEOUT)"
    found = _ERRNO.search(str(exc))
    return found.group(1).strip() if found else type(exc).__name__


def _prefix(key: str) -> str:
    """A key as it may be shown: its id, never its secret."""
    return "_".join(key.split("_")[:2]) + "_…" if key.startswith("tb_") else "not a tb_… key"
