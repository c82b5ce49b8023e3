"""Post options (issue 23): a poll, who may reply, a community, the AI and paid-partnership disclosures,
a reply to someone's post, a quote. Each is queued through the real `tweetbot post` process and through
the compose form, sent by the worker's dispatcher, and read back from what the sandbox stored; each
refusal is named and queues nothing. The sandbox keeps X's 2026 rules: a reply to another author's post
only where that author mentioned the account, a quote only on the Enterprise tier.
"""
from __future__ import annotations

import io
import re
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.api_keys import create_key
from bot.expiry import expires_at
from bot.generators import load_generators, run_generator
from bot.models import FAILED, NEEDS_RECONNECT, POSTED, utcnow
from bot.post_options import REPLY_RULE
from bot.retention import forget_finished_media
from bot.settings import DEFAULT_SCOPES, load_settings
from sandbox.metrics import poll_votes
from sandbox.options import SandboxConfig
from web import create_app

from conftest import TWEETBOT
from media_support import image_bytes, write
from sandbox_helpers import SandboxControl
from test_posting import Rig
from web_support import Browser

HOUR = 3600

DEFAULTS = {"poll": None, "reply_settings": None, "community_id": None, "made_with_ai": False,
            "paid_partnership": False, "quote_tweet_id": None, "reply_to": None}
CASES = {
    "poll": (["--poll", "yes | no | maybe", "--poll-minutes", "60"], {"poll": "yes | no | maybe", "poll_minutes": "60"},
             {"poll": {"options": ["yes", "no", "maybe"], "duration_minutes": 60}}),
    "reply_settings": (["--reply-settings", "following"], {"reply_settings": "following"},
                       {"reply_settings": "following"}),
    "community": (["--community", "1234567890"], {"community_id": "1234567890"}, {"community_id": "1234567890"}),
    "disclosures": (["--made-with-ai", "--paid-partnership"], {"made_with_ai": "on", "paid_partnership": "on"},
                    {"made_with_ai": True, "paid_partnership": True}),
}


def cli(rig: Rig, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWEETBOT, "post", *args], cwd=tmp_path, env=rig.env, capture_output=True, text=True,
                          timeout=60)


def signed_in(rig: Rig) -> Browser:
    browser = Browser(create_app({"SETTINGS": load_settings(None, rig.env), "TESTING": True, "CLOCK": rig.clock}))
    browser.sign_in()
    return browser


def compose(browser: Browser, rig: Rig, text: str, fields: dict[str, str]) -> Any:
    return browser.post("/posts", {"account": rig.accounts[0].user_id, "part": text, "when": "now", **fields})


def stored(sandbox: SandboxControl, username: str) -> dict[str, dict[str, Any]]:
    """What the sandbox stored of the account's posts, by text, with the options' fields only."""
    return {row["text"]: {name: row.get(name) for name in DEFAULTS}
            for row in sandbox.posts(username)}


def sent_and_stored(rig: Rig) -> dict[str, dict[str, Any]]:
    """Send everything queued (the dispatcher then stopped); what the sandbox stored, as `stored` says."""
    try:
        rig.dispatch()
    finally:
        rig.dispatcher.shutdown()
    return stored(rig.sandbox, rig.accounts[0].username)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_option_queued_by_the_cli_and_the_form_is_what_x_stores(tmp_path: Path, sandbox: SandboxControl,
                                                                    case: str) -> None:
    flags, fields, expected = CASES[case]
    rig = Rig(tmp_path, sandbox)
    try:
        done = cli(rig, tmp_path, f"from the command line: {case}", "--at", "now", *flags)
        assert done.returncode == 0, done.stderr
        answer = compose(signed_in(rig), rig, f"from the form: {case}", fields)
        assert answer.status_code == 303, answer.get_data(as_text=True)
        rig.dispatch()
    finally:
        rig.dispatcher.shutdown()
    assert [p.status for p in rig.store.history()] == [POSTED, POSTED]
    at_x = stored(sandbox, rig.accounts[0].username)
    for text in (f"from the command line: {case}", f"from the form: {case}"):
        assert at_x[text] == {**DEFAULTS, **expected}


def alice_posts(sandbox: SandboxControl, text: str) -> str:
    """A post of sandbox_alice, another author; its id."""
    token = sandbox.grant("sandbox_alice")["access_token"]
    answer = requests.post(sandbox.url + "/2/tweets", json={"text": text}, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["data"]["id"])


def test_a_reply_to_another_author_goes_out_only_where_it_mentioned_the_account(tmp_path: Path,
                                                                                sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox)
    handle = rig.accounts[0].handle
    unsummoned = alice_posts(sandbox, "a post that mentions nobody")
    summoned = alice_posts(sandbox, f"what do you think, {handle}?")
    try:
        for target in (f"https://x.com/sandbox_alice/status/{unsummoned}", summoned):
            done = cli(rig, tmp_path, f"a reply to {target}", "--at", "now", "--reply-to", target)
            assert done.returncode == 0, done.stderr
            rig.dispatch()
        answer = compose(signed_in(rig), rig, "a reply from the form", {"reply_to": summoned})
        assert answer.status_code == 303, answer.get_data(as_text=True)
        rig.dispatch()
    finally:
        rig.dispatcher.shutdown()
    refused, replied, from_form = sorted(rig.store.history(), key=lambda p: p.id)
    assert refused.status == FAILED and REPLY_RULE in (refused.last_error or "") and unsummoned in refused.last_error
    assert replied.status == from_form.status == POSTED
    rows = sandbox.posts(rig.accounts[0].username)
    assert [(row["text"], row["reply_to"]) for row in rows] == [(f"a reply to {summoned}", summoned),
                                                                ("a reply from the form", summoned)]
    retried = subprocess.run([TWEETBOT, "retry", str(refused.id)], cwd=tmp_path, env=rig.env, capture_output=True,
                             text=True, timeout=60)
    assert retried.returncode == 0, retried.stderr
    [again] = rig.store.queued_posts()
    assert again.options == refused.options == {"reply_to": unsummoned}  # a retried reply is still a reply


def test_a_quote_is_refused_below_enterprise_and_goes_out_on_it(tmp_path: Path, sandbox: SandboxControl) -> None:
    target = alice_posts(sandbox, "worth quoting")
    rig = Rig(tmp_path, sandbox, X_TIER="enterprise")
    sandbox.configure(tier="enterprise")
    try:
        done = cli(rig, tmp_path, "quoting alice", "--at", "now", "--quote", f"https://twitter.com/a/status/{target}")
        assert done.returncode == 0, done.stderr
        answer = compose(signed_in(rig), rig, "quoting alice from the form", {"quote_tweet_id": target})
        assert answer.status_code == 303, answer.get_data(as_text=True)
        rig.dispatch()
    finally:
        rig.dispatcher.shutdown()
    assert [row["quote_tweet_id"] for row in sandbox.posts(rig.accounts[0].username)] == [target, target]


REFUSALS = {
    "one choice": (["--poll", "yes"], {"poll": "yes"}, "a poll has 2 to 4 options, not 1"),
    "a long choice": (["--poll", "yes | " + "n" * 26], {"poll": "yes | " + "n" * 26},
                      "poll option 2 ('" + "n" * 26 + "') is not 1 to 25 characters"),
    "a short poll": (["--poll", "a | b", "--poll-minutes", "4"], {"poll": "a | b", "poll_minutes": "4"},
                     "a poll runs 5 to 10,080 minutes (7 days), not 4"),
    "a poll with media": (["--poll", "a | b", "--media", "MEDIA"], None, "a poll cannot go with media"),
    "a community not an id": (["--community", "cats"], {"community_id": "cats"},
                              "community_id 'cats' is not the id of a community"),
    "a reply to no post": (["--reply-to", "https://example.com/status/1"],
                           {"reply_to": "https://example.com/status/1"},
                           "reply_to 'https://example.com/status/1' is neither a post's id nor its URL"),
    "a quote below enterprise": (["--quote", "123"], {"quote_tweet_id": "123"},
                                 "quote posts need X's Enterprise tier since 2026-04-20 (X_TIER=payg)"),
    "a repeat of one text": (["--repeat-every", "2d"], {"repeat_every": "2d"},
                             "a repeat needs variants to take in turn, or {date} in its text"),
    "a plug with no time": (["--plug", "read more"], {"plug": "read more"},
                            "a plug needs likes, after_hours, or both: when to send it"),
    "an expiry of a second": (["--expire-after", "1s"], {"expire_after": "1s"},
                              "expire_after '1s' is not a duration from 1 minute to 365 days"),
    "a plug's missing file": (["--plug", "more", "--plug-after", "1", "--plug-media", "nothing.png"], None,
                              "nothing.png"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_refusal_is_named_and_queues_nothing(tmp_path: Path, sandbox: SandboxControl, case: str) -> None:
    flags, fields, reason = REFUSALS[case]
    rig = Rig(tmp_path, sandbox, scopes=list(DEFAULT_SCOPES))  # media.write: a poll with media is the options' fault
    picture = write(tmp_path, "picture.png", image_bytes())
    done = cli(rig, tmp_path, f"refused: {case}", "--at", "now",
               *[str(picture) if flag == "MEDIA" else flag for flag in flags])
    assert done.returncode == 1 and reason in done.stderr and "Traceback" not in done.stderr, done.stderr
    if fields is not None:
        page = compose(signed_in(rig), rig, f"refused: {case}", fields).get_data(as_text=True)
        assert "Not queued: " in page and reason.replace("'", "&#39;") in page
    assert rig.store.queued_posts() == [] and rig.store.history() == []


def test_the_api_takes_and_shows_the_options_under_x_names(tmp_path: Path, sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox)
    app = create_app({"SETTINGS": load_settings(None, rig.env), "TESTING": True, "CLOCK": rig.clock})
    headers = {"Authorization": f"Bearer {create_key(rig.store, 'options', ('posts:read', 'posts:write'), utcnow())[1]}"}
    asked = {"poll": {"options": ["tea", "coffee"], "duration_minutes": 30}, "reply_settings": "mentionedUsers",
             "made_with_ai": True}
    client = app.test_client()
    made = client.post("/api/v1/posts", json={"account": rig.accounts[0].handle, "text": "tea or coffee?",
                                              "at": "now", **asked}, headers=headers)
    assert made.status_code == 201, made.get_data(as_text=True)
    refused = client.post("/api/v1/posts", json={"account": rig.accounts[0].handle, "text": "no poll",
                                                 "poll": {"options": ["only one"], "duration_minutes": 30}},
                          headers=headers)
    assert (refused.status_code, refused.json["type"]) == (422, "/api/v1/problems/option")
    shown = client.get(f"/api/v1/posts/{made.json['id']}", headers=headers).json
    assert {name: shown.get(name) for name in asked} == asked and "community_id" not in shown
    browser = Browser(app)
    browser.sign_in()
    page = browser.get("/").get_data(as_text=True)
    assert re.findall(r'<span class="option">([^<]*)</span>', page) == [
        "poll: tea / coffee (30 min)", "replies: mentionedUsers", "made with AI"]
    try:
        rig.dispatch()
    finally:
        rig.dispatcher.shutdown()
    (row,) = sandbox.posts(rig.accounts[0].username)
    assert {name: row[name] for name in asked} == asked
    assert len(rig.store.history()) == 1 and rig.store.queued_posts() == []


def test_a_csv_carries_options_in_its_columns_and_one_bad_cell_imports_nothing(tmp_path: Path,
                                                                               sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox)
    handle = rig.accounts[0].handle
    bad = tmp_path / "bad.csv"
    bad.write_text("account,due_at,text,poll,made_with_ai\n"
                   f"{handle},now,fine,yes | no,\n"
                   f"{handle},now,not fine,,maybe\n", encoding="utf-8")
    refused = subprocess.run([TWEETBOT, "import", str(bad)], cwd=tmp_path, env=rig.env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode != 0 and "line 3: made_with_ai 'maybe' is not yes or no" in refused.stderr
    assert rig.store.queued_posts() == []
    good = tmp_path / "good.csv"
    good.write_text("account,due_at,text,thread_id,poll,poll_minutes,reply_settings,made_with_ai\n"
                    f"{handle},now,which one?,,red | blue,15,,\n"
                    f"{handle},now,a thread made with AI,t1,,,verified,yes\n"
                    f"{handle},now,its second part,t1,,,,\n", encoding="utf-8")
    imported = subprocess.run([TWEETBOT, "import", str(good)], cwd=tmp_path, env=rig.env, capture_output=True,
                              text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr
    at_x = sent_and_stored(rig)
    assert at_x["which one?"] == {**DEFAULTS, "poll": {"options": ["red", "blue"], "duration_minutes": 15}}
    assert at_x["a thread made with AI"] == {**DEFAULTS, "reply_settings": "verified", "made_with_ai": True}
    assert at_x["its second part"] == {**DEFAULTS, "reply_to": at_x_id(sandbox, rig, "a thread made with AI")}


def at_x_id(sandbox: SandboxControl, rig: Rig, text: str) -> str:
    return next(row["id"] for row in sandbox.posts(rig.accounts[0].username) if row["text"] == text)


def test_a_generator_returns_options_under_x_names(tmp_path: Path, sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox)
    (tmp_path / "gen_poll.py").write_text(
        "def weekly():\n"
        "    return {'text': 'which day?', 'poll': {'options': ['sat', 'sun'], 'duration_minutes': 120},\n"
        "            'paid_partnership': True}\n", encoding="utf-8")
    (tmp_path / "tweetbot.toml").write_text(
        f'[[generator]]\naccount = "{rig.accounts[0].handle}"\nevery = "day at 09:00"\ncall = "gen_poll:weekly"\n',
        encoding="utf-8")
    [spec], problems = load_generators(tmp_path / "tweetbot.toml", "UTC")
    assert problems == [] and run_generator(spec, rig.store, rig.clock) is not None
    try:
        rig.dispatch()
    finally:
        rig.dispatcher.shutdown()
    assert stored(sandbox, rig.accounts[0].username)["which day?"] == {
        **DEFAULTS, "poll": {"options": ["sat", "sun"], "duration_minutes": 120}, "paid_partnership": True}


def test_an_expiring_post_is_deleted_once_and_never_what_a_person_deleted_or_edited(
        tmp_path: Path, sandbox: SandboxControl) -> None:
    sandbox.configure(access_token_lifetime=86400)
    rig = Rig(tmp_path, sandbox)
    thread = tmp_path / "thread.txt"
    thread.write_text("an offer until tonight\n---\nits small print\n", encoding="utf-8")
    for args in (["--thread-file", str(thread)], ["deleted by hand first"], ["edited by hand first"]):
        done = cli(rig, tmp_path, *args, "--at", "now", "--expire-after", "2h")
        assert done.returncode == 0, done.stderr
        assert "deleted from X 2h after posting" in done.stdout
    try:
        rig.dispatch()
        offer, by_hand, edited = sorted(rig.store.history(), key=lambda p: p.id)
        token = rig.worker.tokens.fresh_access_token(rig.accounts[0].user_id)
        person = {"Authorization": f"Bearer {token}"}
        assert requests.delete(f"{sandbox.url}/2/tweets/{by_hand.tweet_ids[0]}", headers=person,
                               timeout=10).status_code == 200
        assert requests.post(f"{sandbox.url}/2/tweets", headers=person, timeout=10, json={
            "text": "edited by hand, for good", "edit_options": {"previous_post_id": edited.tweet_ids[0]}}
        ).status_code == 201
        rig.clock.advance(2 * HOUR - 120)
        assert rig.worker.expirer.expire_due() == 0  # not yet
        rig.clock.advance(180)
        sandbox.fault("DELETE /2/tweets/:id", "status", status=503, times=1)
        assert rig.worker.expirer.expire_due() == 0  # X's 5xx: tried again next round
        assert rig.worker.expirer.expire_due() == 3
        assert rig.worker.expirer.expire_due() == 0  # once
    finally:
        rig.dispatcher.shutdown()
    rows = {row["id"]: row for row in sandbox.posts(rig.accounts[0].username, include_deleted=True)}
    assert [rows[t]["deleted"] for t in offer.tweet_ids] == [True, True]
    assert rows[edited.tweet_ids[0]]["deleted"] is False
    assert sandbox.state("request_counts")["request_counts"]["DELETE /2/tweets/:id"] == 1 + 1 + 2  # hand, 503, thread
    said = {e.post_id: e.detail for e in rig.store.events(kind="expired")}
    assert said == {offer.id: f"{offer.tweet_ids[0]} deleted; {offer.tweet_ids[1]} deleted",
                    by_hand.id: f"{by_hand.tweet_ids[0]} was deleted at X already",
                    edited.id: f"{edited.tweet_ids[0]} was edited at X, so it is left there"}
    page = signed_in(rig).get("/").get_data(as_text=True)
    assert f"{edited.tweet_ids[0]} was edited at X, so it is left there" in page


def test_an_account_that_cannot_delete_now_holds_up_only_its_own_expiries(tmp_path: Path,
                                                                          sandbox: SandboxControl) -> None:
    """The earliest expiry's account needs reconnecting: the other account's thread is deleted all the same.
    X stops that thread after its last part; the next round deletes the rest and says the first was ours."""
    sandbox.configure(access_token_lifetime=86400)
    rig = Rig(tmp_path, sandbox, accounts=2)
    stuck, able = rig.accounts
    thread = tmp_path / "thread.txt"
    thread.write_text("one\n---\ntwo\n---\nthree\n", encoding="utf-8")
    for account, args in ((stuck, ["stuck offer"]), (able, ["--thread-file", str(thread)])):
        done = cli(rig, tmp_path, *args, "--account", account.handle, "--at", "now", "--expire-after", "2h")
        assert done.returncode == 0, done.stderr
        rig.clock.advance(60)
    try:
        rig.dispatch()
        stuck_post, able_post = sorted(rig.store.history(), key=lambda p: p.id)
        rig.store.update_account(stuck.user_id, status=NEEDS_RECONNECT)
        rig.clock.advance(2 * HOUR + 120)
        sandbox.fault("DELETE /2/tweets/:id", "status", status=503, times=1, after=1)
        assert rig.worker.expirer.expire_due() == 0  # the stuck account waits; X's 503 stops the thread after one part
        assert rig.worker.expirer.expire_due() == 1
        assert rig.worker.expirer.expire_due() == 0
    finally:
        rig.dispatcher.shutdown()
    rows = {row["id"]: row for row in sandbox.posts(able.username, include_deleted=True)}
    assert [rows[t]["deleted"] for t in able_post.tweet_ids] == [True, True, True]
    assert sandbox.state("request_counts")["request_counts"]["DELETE /2/tweets/:id"] == 3 + 1
    said = {e.post_id: e.detail for e in rig.store.events(kind="expired")}
    assert said == {able_post.id: "; ".join(f"{t} deleted" for t in able_post.tweet_ids)}
    assert set(expires_at(rig.store)) == {stuck_post.id}


def test_a_post_repeating_every_two_days_goes_out_fifteen_times_in_a_month(tmp_path: Path,
                                                                          sandbox: SandboxControl) -> None:
    sandbox.configure(access_token_lifetime=40 * 86400)
    rig = Rig(tmp_path, sandbox, TIMEZONE="UTC")
    done = cli(rig, tmp_path, "Weekly-ish reminder for {date}: stretch!", "--at", "now", "--repeat-every", "2d")
    assert done.returncode == 0, done.stderr
    assert "repeats every 2 day(s), dated" in done.stdout
    try:
        rig.dispatch()
        for _ in range(29):  # the clocks move a day at a time through the month
            rig.clock.advance(86400)
            rig.dispatch()
    finally:
        rig.dispatcher.shutdown()
    texts = [row["text"] for row in sandbox.posts(rig.accounts[0].username)]
    first = rig.store.history(limit=100)[-1]
    assert len(texts) == 15 and len(set(texts)) == 15  # day 0, 2, …, 28: each its own date, none a duplicate
    assert texts == [f"Weekly-ish reminder for {(first.due_at + timedelta(days=2 * n)).date()}: stretch!"
                     for n in range(15)]
    [(queued)] = rig.store.queued_posts()  # the series goes on: day 30 is queued
    assert queued.due_at == first.due_at + timedelta(days=30) and queued.source == "repeat"


def test_a_plug_replies_once_when_the_post_reaches_its_likes(tmp_path: Path, sandbox: SandboxControl) -> None:
    """Two plugged posts: one at 1 like, one at 100,000. Before the analytics plan has read them nothing
    fires; once read (an hour on), the first one's plug goes out once and the other waits."""
    rig = Rig(tmp_path, sandbox, ANALYTICS_AGES="1h", ANALYTICS_BUDGET="5")
    plug = "Liked it? The newsletter: https://example.org/news"
    for text, likes in (("a post that will do well", "1"), ("a post that needs a miracle", "100000")):
        done = cli(rig, tmp_path, text, "--at", "now", "--plug", plug, "--plug-likes", likes)
        assert done.returncode == 0, done.stderr
    try:
        rig.dispatch()
        well, miracle = sorted(rig.store.history(), key=lambda p: p.id)
        rig.clock.advance(3660)
        rig.worker.fire_plugs()
        assert rig.store.queued_posts() == []  # no likes read yet: nothing fires
        assert rig.worker.analytics.read_due().posts_read == 2
        for _ in range(2):
            rig.worker.fire_plugs()
        rig.dispatch()
    finally:
        rig.dispatcher.shutdown()
    likes = rig.store.readings([well.id])[well.id].metrics["like_count"]
    assert likes >= 1
    replies = [r for r in sandbox.posts(rig.accounts[0].username) if r["reply_to"] in (*well.tweet_ids,
                                                                                        *miracle.tweet_ids)]
    assert [(r["reply_to"], r["text"]) for r in replies] == [(well.tweet_ids[0], plug)]
    [reply] = [p for p in rig.store.history() if p.source == "plug"]
    assert [(e.post_id, e.detail) for e in rig.store.events(kind="plug")] == [
        (well.id, f"{likes} likes: reply queued as post {reply.id}")]


def test_a_thread_file_sets_options_in_its_first_part_only(tmp_path: Path, sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox)
    late = tmp_path / "late.txt"
    late.write_text("first part\n---\nsecond part\npoll: yes | no\n", encoding="utf-8")
    refused = cli(rig, tmp_path, "--thread-file", str(late), "--at", "now")
    assert refused.returncode != 0 and "line 4 of late.txt: poll goes in the first part" in refused.stderr
    assert rig.store.queued_posts() == []
    good = tmp_path / "good.txt"
    good.write_text("Vote, then read on\npoll: yes | no\npoll_minutes: 90\nmade_with_ai: yes\n---\nthe rest\n",
                    encoding="utf-8")
    done = cli(rig, tmp_path, "--thread-file", str(good), "--at", "now")
    assert done.returncode == 0, done.stderr
    at_x = sent_and_stored(rig)
    assert at_x["Vote, then read on"] == {**DEFAULTS, "poll": {"options": ["yes", "no"], "duration_minutes": 90},
                                          "made_with_ai": True}
    assert at_x["the rest"]["poll"] is None and at_x["the rest"]["made_with_ai"] is False


def test_a_poll_s_votes_are_read_with_its_metrics_and_shown_on_the_post(tmp_path: Path,
                                                                        sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox, ANALYTICS_AGES="30m", ANALYTICS_BUDGET="5")
    done = cli(rig, tmp_path, "sat or sun?", "--at", "now", "--poll", "sat | sun", "--poll-minutes", "20")
    assert done.returncode == 0, done.stderr
    try:
        rig.dispatch()
        rig.clock.advance(1860)  # the poll closed ten minutes ago: its votes stay what they were at 20 min
        assert rig.worker.analytics.read_due().posts_read == 1
    finally:
        rig.dispatcher.shutdown()
    [post] = rig.store.history()
    reading = rig.store.readings([post.id])[post.id]
    expected = poll_votes(SandboxConfig().seed, post.tweet_ids[0], ["sat", "sun"], 1800, 20)
    assert reading.poll == [{"label": "sat", "votes": expected[0]}, {"label": "sun", "votes": expected[1]}]
    page = signed_in(rig).get("/").get_data(as_text=True)
    assert f"poll: sat ({expected[0]:,}) / sun ({expected[1]:,}) (20 min)" in page


def test_a_dated_repeat_queued_into_a_slot_days_ahead_is_dated_by_that_slot(tmp_path: Path,
                                                                            sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox, TIMEZONE="UTC")
    slot_day = (utcnow() + timedelta(days=3)).strftime("%a").lower()
    account = rig.accounts[0].handle
    slots = subprocess.run([TWEETBOT, "slots", "set", account, f"{slot_day} 09:00"], cwd=tmp_path, env=rig.env,
                           capture_output=True, text=True, timeout=60)
    assert slots.returncode == 0, slots.stderr
    done = cli(rig, tmp_path, "Reminder for {date}", "--account", account, "--repeat-every", "7d")
    assert done.returncode == 0, done.stderr
    [queued] = rig.store.queued_posts()
    assert queued.due_at.date() == (utcnow() + timedelta(days=3)).date()
    assert queued.parts == (f"Reminder for {queued.due_at.date()}",)


def test_a_csv_row_sets_a_repeat_and_a_plug_in_its_columns(tmp_path: Path, sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox)
    sheet = tmp_path / "series.csv"
    sheet.write_text("account,due_at,text,repeat_every,variants,plug,plug_likes,plug_after\n"
                     f"{rig.accounts[0].handle},now,Tip one,3d,Tip two | Tip three,More tips: https://example.org,"
                     "25,48\n", encoding="utf-8")
    done = subprocess.run([TWEETBOT, "import", str(sheet)], cwd=tmp_path, env=rig.env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    [post] = rig.store.queued_posts()
    assert post.options == {"repeat": {"every_days": 3, "texts": ["Tip two", "Tip three"]},
                            "plug": {"text": "More tips: https://example.org", "likes": 25, "after_hours": 48.0}}


def test_a_plug_s_media_are_kept_while_it_waits_and_go_with_its_reply(tmp_path: Path,
                                                                      sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox, scopes=list(DEFAULT_SCOPES))
    picture = write(tmp_path, "newsletter.png", image_bytes(seed=3))
    done = cli(rig, tmp_path, "a post with an illustrated plug", "--at", "now", "--plug", "The newsletter, in a picture",
               "--plug-after", "1", "--plug-media", str(picture))
    assert done.returncode == 0, done.stderr
    try:
        rig.dispatch()
        [post] = rig.store.history()
        [ref] = post.plug_media()
        forget_finished_media(rig.store, rig.clock() + timedelta(days=30), timedelta(0))  # retention of 0 days
        assert rig.store.get_media(ref.digest) == picture.read_bytes()  # the plug still waits for it
        rig.clock.advance(HOUR + 60)
        rig.worker.fire_plugs()
        rig.dispatch()
    finally:
        rig.dispatcher.shutdown()
    [reply] = [r for r in sandbox.posts(rig.accounts[0].username) if r["reply_to"] == post.tweet_ids[0]]
    assert reply["text"].startswith("The newsletter, in a picture") and len(reply["media_ids"]) == 1


def test_the_api_takes_a_plug_s_files_by_their_upload_ids(tmp_path: Path, sandbox: SandboxControl) -> None:
    rig = Rig(tmp_path, sandbox, scopes=list(DEFAULT_SCOPES))
    app = create_app({"SETTINGS": load_settings(None, rig.env), "TESTING": True, "CLOCK": rig.clock})
    key = create_key(rig.store, "plugs", ("posts:read", "posts:write"), utcnow())[1]
    client, headers = app.test_client(), {"Authorization": f"Bearer {key}"}
    uploaded = client.post("/api/v1/media", headers=headers, data={"file": (io.BytesIO(image_bytes(seed=4)), "a.png")})
    assert uploaded.status_code == 201, uploaded.get_data(as_text=True)
    made = client.post("/api/v1/posts", headers=headers, json={
        "account": rig.accounts[0].handle, "text": "plugged through the API", "at": "now",
        "plug": {"text": "more", "after_hours": 2, "media": [{"id": uploaded.json["id"], "alt": "a chart"}]}})
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.json["plug"]["media"] == [{"id": uploaded.json["id"], "type": "image", "alt": "a chart"}]
    [queued] = rig.store.queued_posts()
    assert [(ref.digest, ref.alt) for ref in queued.plug_media()] == [(uploaded.json["id"], "a chart")]
