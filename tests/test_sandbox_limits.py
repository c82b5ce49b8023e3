"""Rate limits, usage cap and credits: X's windows, headers and bodies (x-api-facts §3, §4)."""
from __future__ import annotations

import pytest
import requests
import tweepy

from bot.transport import mount_api_base

from sandbox_helpers import SandboxControl, SpecRecorder

TOO_MANY = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}


def session_for(sandbox: SandboxControl, xcheck: SpecRecorder, user: str) -> requests.Session:
    http = xcheck.attach(requests.Session())
    http.headers["Authorization"] = "Bearer " + sandbox.grant(user)["access_token"]
    return http


def post(sandbox: SandboxControl, http: requests.Session, text: str) -> requests.Response:
    return http.post(sandbox.url + "/2/tweets", json={"text": text}, timeout=10)


def test_every_answer_carries_the_payg_headers(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    http = session_for(sandbox, xcheck, "sandbox_alice")
    now = sandbox.now()
    answer = post(sandbox, http, "counted")
    assert answer.headers["x-rate-limit-limit"] == "100"
    assert answer.headers["x-rate-limit-remaining"] == "99"
    assert now + 899 <= int(answer.headers["x-rate-limit-reset"]) <= now + 901
    assert answer.headers["x-app-limit-24hour-limit"] == "10000"
    assert answer.headers["x-app-limit-24hour-remaining"] == "9999"
    assert "x-user-limit-24hour-limit" not in answer.headers  # payg has no per-user daily cap
    refused = post(sandbox, http, "counted")  # a refusal (duplicate) still answers with the headers
    assert refused.status_code == 403 and refused.headers["x-rate-limit-remaining"] == "98"
    me = http.get(sandbox.url + "/2/users/me", timeout=10)
    assert me.headers["x-rate-limit-limit"] == "75" and me.headers["x-rate-limit-remaining"] == "74"


def test_over_the_limit_answers_429_until_the_window_resets(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    sandbox.limit("GET /2/users/me", {"scope": "user", "window": 60, "limit": 3})
    http = session_for(sandbox, xcheck, "sandbox_bob")
    remaining = [http.get(sandbox.url + "/2/users/me", timeout=10).headers["x-rate-limit-remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    refused = http.get(sandbox.url + "/2/users/me", timeout=10)
    assert refused.status_code == 429 and refused.json() == TOO_MANY
    assert refused.headers["x-rate-limit-remaining"] == "0"
    reset = int(refused.headers["x-rate-limit-reset"])

    # Another user has a window of their own.
    other = session_for(sandbox, xcheck, "sandbox_carol")
    assert other.get(sandbox.url + "/2/users/me", timeout=10).status_code == 200

    sandbox.advance(reset - sandbox.now() + 1)
    again = http.get(sandbox.url + "/2/users/me", timeout=10)
    assert again.status_code == 200 and again.headers["x-rate-limit-remaining"] == "2"


def test_tweepy_sees_too_many_requests_with_the_reset_time(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    sandbox.limit("POST /2/tweets", {"scope": "user", "window": 900, "limit": 1})
    client = tweepy.Client(bearer_token=sandbox.grant("sandbox_alice")["access_token"])
    mount_api_base(client.session, sandbox.url)
    xcheck.attach(client.session)
    client.create_tweet(text="one", user_auth=False)
    with pytest.raises(tweepy.TooManyRequests) as raised:
        client.create_tweet(text="two", user_auth=False)
    assert raised.value.reset_time == int(raised.value.response.headers["x-rate-limit-reset"])
    assert [p["text"] for p in sandbox.posts()] == ["one"]


def test_the_app_window_is_shared_by_all_users(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    sandbox.limit("POST /2/tweets", {"scope": "user", "window": 900, "limit": 5},
                  {"scope": "app", "window": 86400, "limit": 3})
    alice, bob = session_for(sandbox, xcheck, "sandbox_alice"), session_for(sandbox, xcheck, "sandbox_bob")
    assert post(sandbox, alice, "a1").status_code == 201
    assert post(sandbox, alice, "a2").status_code == 201
    last = post(sandbox, bob, "b1")
    assert last.headers["x-app-limit-24hour-remaining"] == "0"
    refused = post(sandbox, bob, "b2")
    assert refused.status_code == 429
    # Bob's own window has room: only the daily app headers say why.
    assert refused.headers["x-rate-limit-remaining"] == "4"
    assert refused.headers["x-app-limit-24hour-remaining"] == "0"


def test_free_tier_has_a_daily_cap_per_user(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    sandbox.configure(tier="free")
    http = session_for(sandbox, xcheck, "sandbox_carol")
    answers = [post(sandbox, http, f"free {n}") for n in range(18)]
    assert [a.status_code for a in answers] == [201] * 17 + [429]
    assert answers[0].headers["x-user-limit-24hour-limit"] == "17"
    assert answers[0].headers["x-app-limit-24hour-limit"] == "17"
    assert answers[16].headers["x-user-limit-24hour-remaining"] == "0"
    reset = int(answers[17].headers["x-user-limit-24hour-reset"])
    assert reset - sandbox.now() > 86000


def test_basic_and_pro_presets(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    sandbox.configure(tier="basic")
    basic = post(sandbox, session_for(sandbox, xcheck, "sandbox_alice"), "basic")
    assert basic.headers["x-user-limit-24hour-limit"] == "100"
    assert basic.headers["x-app-limit-24hour-limit"] == "1667"
    sandbox.configure(tier="pro")
    pro = post(sandbox, session_for(sandbox, xcheck, "sandbox_alice"), "pro")
    assert pro.headers["x-rate-limit-limit"] == "100" and "x-user-limit-24hour-limit" not in pro.headers
    assert sandbox.limits()["windows"]["POST /2/tweets"][0] == {"scope": "user", "window": 900, "limit": 100}


def test_limits_can_be_switched_off(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    sandbox.configure(rate_limits=False)
    answer = post(sandbox, session_for(sandbox, xcheck, "sandbox_alice"), "unlimited")
    assert answer.status_code == 201 and "x-rate-limit-limit" not in answer.headers


def test_usage_cap_and_credits(sandbox: SandboxControl, xcheck: SpecRecorder) -> None:
    http = session_for(sandbox, xcheck, "sandbox_alice")
    sandbox.configure(usage_capped=True)
    capped = post(sandbox, http, "capped")
    assert capped.status_code == 429
    assert capped.json() == {"title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly product cap",
                             "period": "Monthly", "scope": "Product",
                             "type": "https://api.twitter.com/2/problems/usage-capped"}
    sandbox.configure(usage_capped=False, credits_depleted=True)
    broke = post(sandbox, http, "broke")
    assert broke.status_code == 402 and broke.json()["title"] == "CreditsDepleted"
    sandbox.configure(credits_depleted=False)
    assert post(sandbox, http, "fine").status_code == 201
    assert [p["text"] for p in sandbox.posts()] == ["fine"]


def test_bad_config_is_refused(sandbox: SandboxControl) -> None:
    from sandbox_helpers import ControlError
    for options in ({"tier": "platinum"}, {"access_token_lifetime": 0}, {"nonsense": 1},
                    {"limit_overrides": {"POST /2/tweets": [{"scope": "team", "limit": 1}]}}):
        with pytest.raises(ControlError, match="400"):
            sandbox.configure(**options)
    assert sandbox.state("config")["config"]["tier"] == "payg"
