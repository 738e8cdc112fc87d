"""Sessions bound to one site, re-checked, revocable (core/flow.py with core/revocation.py):
each attack from the review, rerun against the core with a shared memory store."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from dingmw.core.flow import Core
from dingmw.core.http import WebResponse
from dingmw.core.outcome import Exchange, Forward
from dingmw.core.revocation import hub_audience, person_key, session_key, site_audience
from dingmw.identity import Identity
from dingmw.stores.memory import MemoryStore

from .helpers import (
    Browser,
    Clock,
    body_json,
    header,
    make_core,
    make_settings,
    page_context,
    parse_set_cookie,
    responded,
    set_cookies,
    settled,
    settled_response,
    web_request,
)

ZHANGSAN = Identity(unionid="u-zhangsan", userid="zhangsan", name="张三", flow="oauth2")
LISI = Identity(unionid="u-lisi", userid="lisi", name="李四", flow="oauth2")
SAME_ORIGIN = {"sec-fetch-site": "same-origin"}
JSON = "application/json"


def cookie_for(core: Core, identity: Identity = ZHANGSAN) -> dict[str, str]:
    value = parse_set_cookie(core.sessions.issue(identity, secure=False)).value
    return {core.settings.cookie_name: value}


def app_request(core: Core, cookies: dict[str, str], store: MemoryStore) -> Forward | int:
    """What a protected page answers: the forward, or the status of the response."""
    result = settled(core.decide(web_request("/private", cookies=cookies, accept=JSON)), store)
    return result if isinstance(result, Forward) else result.status


# Bound to one site ---------------------------------------------------------------


def test_two_sites_sharing_the_secret_key_do_not_share_sessions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    open_site = make_core(base_url="https://open.example")
    strict = make_core(base_url="https://strict.example", allowed_users=frozenset({"u-lisi"}))
    cookies = cookie_for(open_site)
    assert isinstance(app_request(open_site, cookies, store), Forward)
    with caplog.at_level(logging.INFO, logger="dingmw"):
        assert app_request(strict, cookies, store) == 401
    assert "issued for another site" in caplog.text


def test_sites_that_share_an_audience_share_sessions() -> None:
    store = MemoryStore()
    a = make_core(base_url="https://a.example", session_audience="corp-portal")
    b = make_core(base_url="https://b.example", session_audience="corp-portal")
    result = app_request(b, cookie_for(a), store)
    assert isinstance(result, Forward)
    assert result.identity == ZHANGSAN


def test_the_default_audience_follows_the_app_key_base_url_and_cookie_name() -> None:
    base = make_settings(base_url="https://a.example")
    assert site_audience(base) == site_audience(make_settings(base_url="https://a.example"))
    for other in (
        make_settings(base_url="https://b.example"),
        make_settings(base_url="https://a.example", app_key="other-app"),
        make_settings(base_url="https://a.example", cookie_name="other_session"),
    ):
        assert site_audience(other) != site_audience(base)


def test_a_login_state_from_another_site_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    site_a = make_core(base_url="https://a.example")
    site_b = make_core(base_url="https://b.example")
    browser = Browser(site_a)
    state = browser.start_login("/")
    browser.core = site_b
    with caplog.at_level(logging.INFO, logger="dingmw"):
        response = responded(browser.callback(state))
    assert response.status == 400
    assert page_context(response)["reason"] == "state_unknown"
    assert "started on another site" in caplog.text


# Re-checked ----------------------------------------------------------------------


def test_allow_lists_apply_when_a_process_first_sees_a_session() -> None:
    store = MemoryStore()
    before = make_core()
    cookies = cookie_for(before)
    restarted = make_core(allowed_users=frozenset({"u-lisi"}))  # tightened, then restarted
    assert app_request(restarted, cookies, store) == 403
    page = settled_response(restarted.decide(web_request("/private", cookies=cookies)), store)
    assert page_context(page)["reason"] == "user_not_allowed"


def test_a_removed_person_loses_access_within_the_recheck_window() -> None:
    clock = Clock()
    store = MemoryStore()
    allowed = {"u-zhangsan"}
    core = make_core(clock, allowed_users=frozenset(allowed), session_recheck=60)
    cookies = cookie_for(core)
    assert isinstance(app_request(core, cookies, store), Forward)
    # The allow-list shrinks (as a settings reload would make it): still cached for now...
    object.__setattr__(core.settings, "allowed_users", frozenset({"u-lisi"}))
    clock.advance(59)
    header_ = "; ".join(f"{k}={v}" for k, v in cookies.items())
    assert core.quick("/private", header_) is not None
    # ...and refused once the re-check is due.
    clock.advance(1)
    assert core.quick("/private", header_) is None
    assert app_request(core, cookies, store) == 403


def test_the_hot_path_is_a_cache_hit_between_rechecks() -> None:
    clock = Clock()
    store = MemoryStore()
    core = make_core(clock)
    cookies = cookie_for(make_core(clock))  # issued elsewhere: first sight here
    header_ = "; ".join(f"{k}={v}" for k, v in cookies.items())
    assert core.quick("/private", header_) is None
    first = core.decide(web_request("/private", cookies=cookies))
    assert isinstance(first, Exchange)  # the store is asked once...
    assert isinstance(settled(first, store), Forward)
    for _ in range(3):
        clock.advance(19)
        assert core.quick("/private", header_) == Forward(ZHANGSAN)  # ...then not for 60 s
    clock.advance(4)
    assert core.quick("/private", header_) is None


def test_recheck_zero_asks_the_store_every_time() -> None:
    core = make_core(session_recheck=0)
    cookies = cookie_for(core)
    header_ = "; ".join(f"{k}={v}" for k, v in cookies.items())
    assert core.quick("/private", header_) is None
    assert isinstance(core.decide(web_request("/private", cookies=cookies)), Exchange)


def test_a_store_outage_during_a_recheck_is_a_503() -> None:
    from dingmw.errors import StoreError

    class Down(MemoryStore):
        def get(self, key: str) -> str | None:
            raise StoreError("redis://cache:6379: connection refused")

    core = make_core()
    cookies = cookie_for(make_core())
    assert app_request(core, cookies, Down()) == 503


def test_a_store_outage_at_a_due_recheck_asks_the_store_once() -> None:
    """A cached session whose re-check falls due while the store is down: one attempt, then
    the 503 (asking again would double the wait, about two seconds for a hung Redis)."""
    from collections.abc import Sequence

    from dingmw.errors import StoreError
    from dingmw.stores import BatchOp, StoreReply

    attempts = {"n": 0}

    class Down(MemoryStore):
        def get(self, key: str) -> str | None:
            attempts["n"] += 1
            raise StoreError("redis://cache:6379: timed out")

        def batch(self, ops: Sequence[BatchOp]) -> list[StoreReply]:
            attempts["n"] += 1
            raise StoreError("redis://cache:6379: timed out")

    clock = Clock()
    core = make_core(clock)
    cookies = cookie_for(core)
    store = MemoryStore()
    assert isinstance(app_request(core, cookies, store), Forward)  # cached, checked
    clock.advance(61)  # the re-check is due
    header_ = "; ".join(f"{k}={v}" for k, v in cookies.items())
    due = core.quick("/private", header_, lambda: web_request("/private", cookies=cookies))
    assert isinstance(due, Exchange)
    answer = settled(due, Down())
    assert isinstance(answer, WebResponse)
    assert answer.status == 503
    assert attempts["n"] == 1


# Revocable -----------------------------------------------------------------------


def logout(
    core: Core, cookies: dict[str, str], store: MemoryStore, query: str = "", **kwargs: Any
) -> Any:
    request = web_request(
        "/dingtalk/logout", method="POST", query=query, cookies=cookies, headers=SAME_ORIGIN
    )
    return settled(core.decide(request), store)


def test_logout_revokes_the_cookie_on_every_instance() -> None:
    store = MemoryStore()
    one = make_core()
    cookies = cookie_for(one)
    response = logout(one, cookies, store)
    assert response.status == 302
    assert set_cookies(response)["dingmw_session"].deleted
    assert store.get(session_key(_sid(cookies))) == "1"
    assert app_request(one, cookies, store) == 401  # the same cookie, replayed
    assert app_request(make_core(), cookies, store) == 401  # on another instance


def _sid(cookies: dict[str, str]) -> str:
    found = make_core().sessions.lookup("; ".join(f"{k}={v}" for k, v in cookies.items()))
    assert found is not None
    return found[1].session.sid


def test_logout_reaches_a_cached_instance_at_its_next_recheck() -> None:
    clock = Clock()
    store = MemoryStore()
    one, two = make_core(clock), make_core(clock)
    cookies = cookie_for(one)
    assert isinstance(app_request(two, cookies, store), Forward)
    sid = _sid(cookies)
    logout(one, cookies, store)
    assert store.get(session_key(sid)) == "1"
    assert isinstance(app_request(two, cookies, store), Forward)  # within the window
    clock.advance(60)
    assert app_request(two, cookies, store) == 401


def test_logout_everywhere_revokes_every_session_of_the_person() -> None:
    clock = Clock()
    store = MemoryStore()
    site = make_core(clock, session_audience="portal")
    other_site = make_core(clock, session_audience="portal", base_url="https://b.example")
    unrelated = make_core(clock)
    phone, laptop, other = cookie_for(site), cookie_for(site), cookie_for(site, LISI)
    elsewhere = cookie_for(unrelated)
    for cookies in (phone, laptop, other):
        assert isinstance(app_request(other_site, cookies, store), Forward)
    response = logout(site, phone, store, "everywhere=1")
    assert response.status == 302
    assert app_request(site, laptop, store) == 401  # this process: at once
    clock.advance(60)
    assert app_request(other_site, laptop, store) == 401  # another site of the audience
    assert app_request(other_site, phone, store) == 401
    assert isinstance(app_request(other_site, other, store), Forward)  # another person
    assert isinstance(app_request(unrelated, elsewhere, store), Forward)  # another audience
    # A new login after it works.
    clock.advance(1)
    assert isinstance(app_request(other_site, cookie_for(site), store), Forward)


def test_an_admin_tool_can_revoke_a_person_everywhere() -> None:
    from dingmw.revoke import revoke_everywhere

    clock = Clock()
    store = MemoryStore()
    core = make_core(clock)
    cookies = cookie_for(core)
    revoke_everywhere("u-zhangsan", core.settings, store=store, now=clock() + 0.001)
    assert store.get(person_key(core.audience, "u-zhangsan")) is not None
    clock.advance(60)
    assert app_request(core, cookies, store) == 401


async def test_an_admin_tool_can_revoke_a_person_everywhere_with_an_async_store() -> None:
    from dingmw.revoke import arevoke_everywhere
    from dingmw.stores.memory import AsyncMemoryStore

    clock = Clock()
    store = MemoryStore()
    core = make_core(clock)
    cookies = cookie_for(core)
    await arevoke_everywhere(
        "u-zhangsan", core.settings, store=AsyncMemoryStore(store), now=clock() + 0.001
    )
    assert store.get(person_key(core.audience, "u-zhangsan")) is not None
    clock.advance(60)
    assert app_request(core, cookies, store) == 401


def test_a_hub_logout_reaches_the_sites_that_log_in_through_it() -> None:
    clock = Clock()
    store = MemoryStore()
    site = make_core(clock, flow="hub", hub_url="https://hub.example")
    cookies = cookie_for(site)
    hub = make_core(clock)
    flow = hub.revoke_everywhere("u-zhangsan", audiences=(hub_audience("https://hub.example"),))
    settled(Exchange(_returning(flow)), store)
    clock.advance(60)
    assert app_request(site, cookies, store) == 401


def _returning(flow: Any) -> Any:
    from dingmw.core.http import WebResponse

    yield from flow
    return WebResponse(status=204)


# Logout by the person only ---------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"referer": "https://evil.example/page"},
        {},
    ],
)
def test_a_cross_site_post_does_not_log_out(headers: dict[str, str]) -> None:
    store = MemoryStore()
    core = make_core()
    cookies = cookie_for(core)
    request = web_request("/dingtalk/logout", method="POST", cookies=cookies, headers=headers)
    response = responded(core.decide(request))
    assert response.status == 403
    assert page_context(response)["reason"] == "cross_site_logout"
    assert set_cookies(response) == {}
    assert isinstance(app_request(core, cookies, store), Forward)


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://app.example"},
        {"sec-fetch-site": "same-origin"},
        {"referer": "http://app.example/settings"},
    ],
)
def test_a_same_origin_post_logs_out(headers: dict[str, str]) -> None:
    core = make_core()
    request = web_request(
        "/dingtalk/logout", method="POST", cookies=cookie_for(core), headers=headers
    )
    assert settled_response(core.decide(request), MemoryStore()).status == 302


@pytest.mark.parametrize(
    ("method", "headers", "query"),
    [
        ("GET", {"sec-fetch-site": "cross-site"}, ""),
        ("GET", {}, ""),
        ("HEAD", {"sec-fetch-site": "same-origin"}, ""),
        ("GET", {"sec-fetch-site": "same-origin"}, "everywhere=1"),
    ],
)
def test_a_get_from_elsewhere_shows_a_confirm_page(
    method: str, headers: dict[str, str], query: str
) -> None:
    store = MemoryStore()
    core = make_core()
    cookies = cookie_for(core)
    request = web_request(
        "/dingtalk/logout", method=method, query=query, cookies=cookies, headers=headers
    )
    page = responded(core.decide(request))
    assert page.status == 200
    assert set_cookies(page) == {}
    context = page_context(page)
    assert context["action"].startswith("/dingtalk/logout?next=/")
    assert context["everywhere"] is bool(query)
    assert isinstance(app_request(core, cookies, store), Forward)


def test_a_top_level_same_origin_get_logs_out() -> None:
    core = make_core()
    for site in ("same-origin", "none"):
        request = web_request(
            "/dingtalk/logout", cookies=cookie_for(core), headers={"sec-fetch-site": site}
        )
        assert settled_response(core.decide(request), MemoryStore()).status == 302


# Smaller items -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["__Host-dingmw", "__Secure-dingmw"])
def test_prefixed_cookie_names_follow_the_prefix_rules(name: str) -> None:
    """Browsers keep `__Host-` only with Secure, Path=/, no Domain; `__Secure-` with Secure."""
    core = make_core(cookie_name=name)
    browser = Browser(core)
    state = browser.start_login("/")
    login_cookies = set_cookies(responded(browser.get("/dingtalk/login")))
    for cookie_name, cookie in login_cookies.items():
        assert_prefix_rules(cookie_name, cookie.attrs)
    session = parse_set_cookie(core.sessions.issue(ZHANGSAN, secure=False))
    assert session.name == name
    assert_prefix_rules(session.name, session.attrs)
    assert state


def assert_prefix_rules(name: str, attrs: dict[str, str]) -> None:
    if name.startswith("__Host-"):
        assert "secure" in attrs
        assert attrs["path"] == "/"
        assert "domain" not in attrs
    if name.startswith("__Secure-"):
        assert "secure" in attrs


def test_host_prefix_with_a_domain_is_refused_at_start_up() -> None:
    from dingmw.errors import ConfigError

    with pytest.raises(ConfigError, match="__Host- cookie cannot have a domain"):
        make_settings(cookie_name="__Host-s", cookie_domain="example.com")
    with pytest.raises(ConfigError, match="always Secure"):
        make_settings(cookie_name="__Secure-s", cookie_secure="false")


def test_pages_carry_a_nonce_based_script_policy() -> None:
    core = make_core()
    first = responded(core.decide(web_request("/dingtalk/login")))
    second = responded(core.decide(web_request("/dingtalk/login")))
    policy = header(first, "content-security-policy")
    assert policy is not None
    nonce = page_context(first)["csp_nonce"]
    assert f"script-src 'nonce-{nonce}' 'strict-dynamic'" in policy
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in policy
    assert page_context(second)["csp_nonce"] != nonce
    error = responded(core.decide(web_request("/dingtalk/nope")))
    assert "script-src 'nonce-" in (header(error, "content-security-policy") or "")


def test_the_widget_script_is_pinned_with_its_integrity() -> None:
    integrity = "sha384-" + "A" * 64
    core = make_core(login_script_integrity=integrity)
    context = page_context(responded(core.decide(web_request("/dingtalk/login"))))
    assert context["script_integrity"] == integrity
    assert context["jsapi_integrity"] is None  # not inside the DingTalk client


def test_refused_integrity_values_at_start_up() -> None:
    from dingmw.errors import ConfigError

    with pytest.raises(ConfigError, match="Subresource Integrity"):
        make_settings(login_script_integrity="md5-abc")


@pytest.mark.parametrize(
    "prefix",
    [
        "/a/../b",
        "/a/./b",
        "/%2F%2Fevil.example",
        "/a%2fb",
        "/a%5Cb",
        "//evil.example",
        "/a//b",
        "/%2e%2e/admin",
        "/a/b//",
    ],
)
def test_forwarded_prefix_tricks_are_refused(prefix: str) -> None:
    core = make_core(trust_proxy=True)
    request = web_request("/dingtalk/login", headers={"x-forwarded-prefix": prefix}, accept=JSON)
    response = responded(core.decide(request))
    assert response.status == 400
    assert body_json(response)["error"] == "bad_forwarded"


def test_a_plain_forwarded_prefix_still_works() -> None:
    core = make_core(trust_proxy=True)
    request = web_request("/dingtalk/login", headers={"x-forwarded-prefix": "/app/"})
    config = page_context(responded(core.decide(request)))["config"]
    assert config["redirect_uri"] == "http://app.example/app/dingtalk/callback"


def test_an_error_callback_uses_up_its_state() -> None:
    store = MemoryStore()
    core = make_core()
    browser = Browser(core)
    state = browser.start_login("/")
    jar_before = dict(browser.jar)
    denied = settled_response(browser.callback(state, code="", error="access_denied"), store)
    assert denied.status == 400
    # The state cookie and the state itself are spent: a replay with a code fails.
    browser.jar = jar_before
    replay = browser.callback(state)
    assert isinstance(replay, Exchange)
    assert settled_response(replay, store).status == 400


# The periodic re-check on the hot path ---------------------------------------------------


class Builds:
    """The `request` builder `quick` takes: counts how often the full request was needed."""

    def __init__(self, cookies: dict[str, str]) -> None:
        self.cookies = cookies
        self.count = 0

    def __call__(self) -> Any:
        self.count += 1
        return web_request("/private", cookies=self.cookies, accept=JSON)


def due_session(**settings: Any) -> tuple[Core, dict[str, str], str]:
    clock = Clock()
    core = make_core(clock, session_recheck=60, **settings)
    cookies = cookie_for(core)
    header_ = "; ".join(f"{k}={v}" for k, v in cookies.items())
    assert core.quick("/private", header_) == Forward(ZHANGSAN)
    clock.advance(60)
    return core, cookies, header_


def test_a_due_recheck_of_a_good_session_needs_no_request_and_forwards() -> None:
    core, cookies, header_ = due_session()
    store = MemoryStore()
    build = Builds(cookies)
    decision = core.quick("/private", header_, build)
    assert isinstance(decision, Exchange)
    assert settled(decision, store) == Forward(ZHANGSAN)
    assert build.count == 0
    assert core.quick("/private", header_) == Forward(ZHANGSAN)  # checked: a hit again


def test_a_due_recheck_of_a_revoked_session_is_decided_in_full() -> None:
    core, cookies, header_ = due_session()
    store = MemoryStore()
    store.put(session_key(_sid(cookies)), "1", 60)
    build = Builds(cookies)
    decision = core.quick("/private", header_, build)
    assert isinstance(decision, Exchange)
    answer = settled(decision, store)
    assert not isinstance(answer, Forward)
    assert answer.status == 401
    assert build.count == 1
    assert core.quick("/private", header_, build) is None  # forgotten: not a session any more


def test_a_due_recheck_refused_by_the_allow_lists_answers_their_403() -> None:
    core, cookies, header_ = due_session(allowed_users=frozenset({"u-zhangsan"}))
    object.__setattr__(core.settings, "allowed_users", frozenset({"u-lisi"}))
    decision = core.quick("/private", header_, Builds(cookies))
    assert isinstance(decision, Exchange)
    answer = settled(decision, MemoryStore())
    assert not isinstance(answer, Forward)
    assert answer.status == 403


def test_a_store_outage_during_a_due_recheck_is_a_503() -> None:
    from dingmw.errors import StoreError

    class Down(MemoryStore):
        def get(self, key: str) -> str | None:
            raise StoreError("redis://cache:6379: connection refused")

    core, cookies, header_ = due_session()
    decision = core.quick("/private", header_, Builds(cookies))
    assert isinstance(decision, Exchange)
    answer = settled(decision, Down())
    assert not isinstance(answer, Forward)
    assert answer.status == 503
