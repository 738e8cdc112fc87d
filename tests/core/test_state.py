"""Login state (core/state.py): one-shot, short-lived, bound to the browser, no server memory."""

from __future__ import annotations

import pytest

from dingmw.core.effects import StorePut
from dingmw.core.outcome import Respond
from dingmw.core.state import MAX_PENDING
from dingmw.identity import Identity

from .helpers import (
    Browser,
    Clock,
    exchanged,
    expect,
    finish,
    header,
    make_core,
    page_context,
    reply,
    responded,
    set_cookies,
    settled_response,
    web_request,
)


def complete_oauth2(browser: Browser, state: str) -> None:
    """Run a successful oauth2 callback for `state`."""
    flow = exchanged(browser.callback(state))
    expect(next(flow), StorePut)
    flow.send(True)
    flow.send(reply(200, "oauth2_user_access_token"))
    response = browser.finish(finish(flow, reply(200, "oauth2_users_me")))
    assert response.status == 302


def callback_reason(browser: Browser, state: str | None, **extra: str) -> tuple[int, str]:
    response = responded(browser.callback(state, **extra))
    return response.status, page_context(response)["reason"]


def test_login_page_sets_a_short_lived_state_cookie_and_allocates_nothing() -> None:
    core = make_core()
    decision = core.decide(web_request("/dingtalk/login", query="next=/x"))
    # A Respond carries no flow: a page view performs no store operation at all.
    assert isinstance(decision, Respond)
    response = decision.response
    state = page_context(response)["config"]["state"]
    (cookie,) = set_cookies(response).values()
    assert cookie.name.startswith("dingmw_session_state_")
    assert cookie.value
    assert state not in cookie.name
    assert cookie.attrs["max-age"] == str(core.settings.state_max_age)
    assert cookie.attrs["path"] == "/dingtalk/"
    assert "httponly" in cookie.attrs
    assert cookie.attrs["samesite"] == "Lax"


def test_each_page_view_draws_a_new_state() -> None:
    browser = Browser(make_core())
    states = {browser.start_login("/") for _ in range(3)}
    assert len(states) == 3
    assert all(len(s) >= 32 for s in states)


def test_two_tabs_both_complete() -> None:
    browser = Browser(make_core())
    first = browser.start_login("/tab-one")
    second = browser.start_login("/tab-two")
    assert len(browser.state_cookies()) == 2

    flow = exchanged(browser.callback(second))
    put = expect(next(flow), StorePut)
    assert second in put.key
    flow.send(True)
    flow.send(reply(200, "oauth2_user_access_token"))
    response = browser.finish(finish(flow, reply(200, "oauth2_users_me")))
    assert header(response, "location") == "/tab-two"

    flow = exchanged(browser.callback(first))
    put = expect(next(flow), StorePut)
    assert first in put.key
    flow.send(True)
    flow.send(reply(200, "oauth2_user_access_token"))
    response = browser.finish(finish(flow, reply(200, "oauth2_users_me")))
    assert header(response, "location") == "/tab-one"
    assert browser.state_cookies() == {}


def test_at_most_max_pending_state_cookies_oldest_dropped() -> None:
    clock = Clock()
    browser = Browser(make_core(clock))
    states = []
    for index in range(MAX_PENDING + 2):
        states.append(browser.start_login(f"/tab-{index}"))
        clock.advance(1)
        assert len(browser.state_cookies()) <= MAX_PENDING
    assert len(browser.state_cookies()) == MAX_PENDING
    # The two oldest were deleted; the newest MAX_PENDING still work.
    for old in states[:2]:
        assert callback_reason(browser, old) == (400, "state_unknown")
    for recent in states[2:]:
        exchanged(browser.callback(recent))


def test_broken_state_cookies_are_dropped_first() -> None:
    clock = Clock()
    core = make_core(clock)
    browser = Browser(core)
    for index in range(MAX_PENDING - 1):
        browser.start_login(f"/t{index}")
        clock.advance(1)
    junk_name = f"{core.settings.cookie_name}_state_0000000000000000"
    browser.jar[junk_name] = "not-signed"
    browser.start_login("/new")
    assert junk_name not in browser.jar
    assert len(browser.state_cookies()) == MAX_PENDING


def test_state_from_another_browser_is_unknown() -> None:
    core = make_core()
    alice = Browser(core)
    state = alice.start_login("/")
    mallory = Browser(core)
    assert callback_reason(mallory, state) == (400, "state_unknown")


def test_another_browsers_cookie_does_not_fit_this_state() -> None:
    core = make_core()
    alice, bob = Browser(core), Browser(core)
    alice_state = alice.start_login("/")
    bob.start_login("/")
    # Bob's cookie, Alice's state.
    assert callback_reason(bob, alice_state) == (400, "state_unknown")


def test_tampered_state_cookie_is_unknown() -> None:
    browser = Browser(make_core())
    state = browser.start_login("/")
    ((name, value),) = browser.state_cookies().items()
    body, _, mac = value.partition(".")
    browser.jar[name] = body[:-1] + ("A" if body[-1] != "A" else "B") + "." + mac
    assert callback_reason(browser, state) == (400, "state_unknown")


def test_state_cookie_signed_with_another_key_is_unknown() -> None:
    other = Browser(make_core(secret_keys=("another-key-" + "z" * 40,)))
    state = other.start_login("/")
    browser = Browser(make_core())
    browser.jar.update(other.jar)
    assert callback_reason(browser, state) == (400, "state_unknown")


def test_session_cookie_value_is_not_a_state_cookie() -> None:
    """Signatures are per purpose: a valid session token never verifies as a state."""
    core = make_core()
    browser = Browser(core)
    state = browser.start_login("/")
    ((name, _),) = browser.state_cookies().items()
    session = core.sessions.issue(Identity(unionid="u"), secure=False)
    browser.jar[name] = session.split(";", 1)[0].partition("=")[2]
    assert callback_reason(browser, state) == (400, "state_unknown")


@pytest.mark.parametrize("bad", ["x", "a" * 31, "a" * 33, "a" * 32])
def test_malformed_or_unissued_state_is_unknown(bad: str) -> None:
    browser = Browser(make_core())
    browser.start_login("/")
    assert callback_reason(browser, bad) == (400, "state_unknown")


def test_expired_state() -> None:
    clock = Clock()
    core = make_core(clock)
    browser = Browser(core)
    state = browser.start_login("/")
    clock.advance(core.settings.state_max_age - 1)
    exchanged(browser.callback(state))  # still fine just before the end
    clock.advance(1)
    assert callback_reason(browser, state) == (400, "state_expired")


def test_missing_state() -> None:
    browser = Browser(make_core())
    browser.start_login("/")
    assert callback_reason(browser, None) == (400, "state_missing")
    assert callback_reason(browser, "") == (400, "state_missing")


def test_dingtalk_refusal_is_a_4xx_page_and_clears_the_state_cookie() -> None:
    browser = Browser(make_core())
    state = browser.start_login("/")
    response = settled_response(browser.callback(state, code="", error="access_denied"))
    assert 400 <= response.status < 500
    context = page_context(response)
    assert context["reason"] == "dingtalk_denied"
    assert context["detail"] == "access_denied"
    (cleared,) = set_cookies(response).values()
    assert cleared.deleted
    assert "dingmw_session" not in set_cookies(response)


def test_dingtalk_refusal_without_state_is_still_a_page() -> None:
    browser = Browser(make_core())
    response = responded(browser.get("/dingtalk/callback", "error=server_error"))
    assert response.status == 400
    assert page_context(response)["reason"] == "dingtalk_denied"


def test_state_is_single_use_in_the_browser_too() -> None:
    """After a completed callback the state cookie is gone, so a replay is refused early."""
    browser = Browser(make_core())
    state = browser.start_login("/")
    complete_oauth2(browser, state)
    assert callback_reason(browser, state) == (400, "state_unknown")


def test_used_nonce_is_recorded_for_the_rest_of_its_life() -> None:
    clock = Clock()
    core = make_core(clock)
    browser = Browser(core)
    state = browser.start_login("/")
    clock.advance(100)
    put = expect(next(exchanged(browser.callback(state))), StorePut)
    assert put.value
    # Long enough to outlive the cookie (so a replay is caught), not much longer.
    assert core.settings.state_max_age - 100 <= put.ttl <= core.settings.state_max_age - 100 + 5
