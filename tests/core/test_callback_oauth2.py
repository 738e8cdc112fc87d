"""The oauth2 callback, stepped effect by effect (dingtalk-api.md §4.2, §4.3)."""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import pytest

from dingmw.core.effects import CALL_EXTENSION, StorePut
from dingmw.core.flow import Core
from dingmw.core.http import WebResponse
from dingmw.errors import UpstreamError

from .helpers import (
    APP_KEY,
    APP_SECRET,
    Browser,
    Clock,
    body_json,
    exchanged,
    expect,
    finish,
    finish_by_throwing,
    header,
    identity_of,
    json_of,
    make_core,
    page_context,
    reply,
    responded,
    set_cookies,
)

TOKEN_CALL = "oauth2/userAccessToken"
ME_CALL = "contact/users/me"


def begin(core: Core, next_path: str = "/reports?year=2024") -> tuple[Browser, str]:
    browser = Browser(core)
    state = browser.start_login(next_path)
    return browser, state


def test_full_login_steps_and_session_cookie() -> None:
    clock = Clock()
    core = make_core(clock)
    browser, state = begin(core)
    flow = exchanged(browser.callback(state, code="auth-code-1"))

    put = expect(next(flow), StorePut)
    assert state in put.key
    assert put.only_if_absent is True
    assert 0 < put.ttl <= core.settings.state_max_age + 1

    token_req = expect(flow.send(True), httpx.Request)
    assert token_req.method == "POST"
    assert str(token_req.url) == "https://api.dingtalk.com/v1.0/oauth2/userAccessToken"
    assert token_req.headers["content-type"] == "application/json"
    assert json_of(token_req) == {
        "clientId": APP_KEY,
        "clientSecret": APP_SECRET,
        "code": "auth-code-1",
        "grantType": "authorization_code",
    }
    assert token_req.extensions[CALL_EXTENSION] == TOKEN_CALL

    me_req = expect(flow.send(reply(200, "oauth2_user_access_token")), httpx.Request)
    assert me_req.method == "GET"
    assert str(me_req.url) == "https://api.dingtalk.com/v1.0/contact/users/me"
    assert me_req.headers["x-acs-dingtalk-access-token"] == "user-access-token-abc"
    assert "authorization" not in me_req.headers
    assert me_req.content == b""
    assert me_req.extensions[CALL_EXTENSION] == ME_CALL

    response = browser.finish(finish(flow, reply(200, "oauth2_users_me")))
    assert response.status == 302
    assert header(response, "location") == "/reports?year=2024"

    cookies = set_cookies(response)
    session = cookies["dingmw_session"]
    assert session.value
    assert session.attrs["path"] == "/"
    assert session.attrs["max-age"] == "28800"
    assert "httponly" in session.attrs
    assert session.attrs["samesite"] == "Lax"
    assert "secure" not in session.attrs  # plain http, cookie_secure=auto
    (state_cookie,) = (c for name, c in cookies.items() if name != "dingmw_session")
    assert state_cookie.deleted
    assert state_cookie.attrs["path"] == "/dingtalk/"

    # The browser is now logged in with what users/me said.
    identity = identity_of(core, browser.jar)
    assert identity is not None
    assert identity.unionid == "unionid-zhangsan"
    assert identity.openid == "openid-zhangsan"
    assert identity.nick == "张三"
    assert identity.email == "zhangsan@example.com"
    assert identity.mobile == "155****3240"
    assert identity.avatar_url == "https://static-legacy.dingtalk.com/media/zhangsan.png"
    assert identity.corp_id == "dingcorp0001"
    assert identity.flow == "oauth2"
    assert browser.state_cookies() == {}


def test_session_cookie_is_secure_over_https() -> None:
    core = make_core()
    browser = Browser(core, scheme="https")
    state = browser.start_login("/")
    flow = exchanged(browser.callback(state))
    next(flow)
    flow.send(True)
    flow.send(reply(200, "oauth2_user_access_token"))
    response = finish(flow, reply(200, "oauth2_users_me"))
    for cookie in set_cookies(response).values():
        assert "secure" in cookie.attrs


def test_callback_falls_back_to_code_param() -> None:
    core = make_core()
    browser, state = begin(core)
    flow = exchanged(browser.get("/dingtalk/callback", f"code=plain-code&state={state}"))
    next(flow)
    token_req = expect(flow.send(True), httpx.Request)
    assert json_of(token_req)["code"] == "plain-code"


def test_missing_code_is_400() -> None:
    core = make_core()
    browser, state = begin(core)
    page = responded(browser.callback(state, code=""))
    assert page.status == 400
    assert page_context(page)["reason"] == "code_missing"


def assert_upstream_page(response: WebResponse, call: str) -> None:
    assert response.status == 502
    context = page_context(response)
    assert context["status"] == 502
    assert context["params"]["call"] == call
    assert APP_SECRET.encode() not in response.body
    assert b"Traceback" not in response.body
    # The pending login's cookie is cleared even when the login fails.
    assert all(c.deleted for c in set_cookies(response).values())


@pytest.mark.parametrize(
    ("answer", "detail_part"),
    [
        pytest.param(
            reply(400, "api_error_auth_code_not_found"),
            "invalidParameter.authCode.notFound",
            id="api-4xx-code-message",
        ),
        pytest.param(
            httpx.Response(200, content=b"<html>gateway</html>"), "not JSON", id="non-json-200"
        ),
        pytest.param(
            httpx.Response(500, content=b"<html>oops</html>"), "HTTP 500", id="http-500-html"
        ),
        pytest.param(httpx.Response(503, json=["not", "an", "object"]), "503", id="http-503-list"),
        pytest.param(reply(200, accessToken=None), "accessToken", id="no-access-token"),
    ],
)
def test_token_call_failures_are_502_naming_the_call(
    answer: httpx.Response, detail_part: str
) -> None:
    browser, state = begin(make_core())
    flow = exchanged(browser.callback(state))
    next(flow)
    expect(flow.send(True), httpx.Request)
    response = finish(flow, answer)
    assert_upstream_page(response, TOKEN_CALL)
    assert detail_part in page_context(response)["detail"]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(reply(400, "api_error_invalid_authentication"), id="api-400"),
        pytest.param(httpx.Response(502, content=b"bad gateway"), id="http-502"),
        pytest.param(httpx.Response(200, content=b"{not json"), id="non-json"),
        pytest.param(reply(200, "oauth2_users_me", unionId=None), id="no-union-id"),
    ],
)
def test_me_call_failures_are_502_naming_the_call(answer: httpx.Response) -> None:
    browser, state = begin(make_core())
    flow = exchanged(browser.callback(state))
    next(flow)
    flow.send(True)
    expect(flow.send(reply(200, "oauth2_user_access_token")), httpx.Request)
    assert_upstream_page(finish(flow, answer), ME_CALL)


def test_network_failure_thrown_in_is_502() -> None:
    browser, state = begin(make_core())
    flow = exchanged(browser.callback(state))
    next(flow)
    flow.send(True)
    response = finish_by_throwing(
        flow, UpstreamError(TOKEN_CALL, "timed out", reason="upstream_timeout")
    )
    assert_upstream_page(response, TOKEN_CALL)
    assert page_context(response)["reason"] == "upstream_timeout"


def test_upstream_error_is_json_for_api_clients() -> None:
    core = make_core()
    browser, state = begin(core)
    flow = exchanged(
        browser.get("/dingtalk/callback", f"authCode=c&state={state}", accept="application/json")
    )
    next(flow)
    flow.send(True)
    response = finish(flow, reply(400, "api_error_auth_code_not_found"))
    assert response.status == 502
    data = body_json(response)
    assert data["error"] == "upstream"
    assert data["call"] == TOKEN_CALL
    assert APP_SECRET not in response.body.decode()


def test_reused_state_is_400_state_used_and_no_call_is_made() -> None:
    browser, state = begin(make_core())
    flow = exchanged(browser.callback(state))
    expect(next(flow), StorePut)
    response = finish(flow, False)  # the store already had the nonce: a replay
    assert response.status == 400
    assert page_context(response)["reason"] == "state_used"
    assert "dingmw_session" not in set_cookies(response)


def finish_oauth2(core: Core, *, token: httpx.Response, me: httpx.Response) -> WebResponse:
    browser, state = begin(core)
    flow = exchanged(browser.callback(state))
    next(flow)
    flow.send(True)
    flow.send(token)
    return finish(flow, me)


def test_allowed_corp_ids_admits_members() -> None:
    core = make_core(allowed_corp_ids=frozenset({"dingcorp0001"}))
    response = finish_oauth2(
        core, token=reply(200, "oauth2_user_access_token"), me=reply(200, "oauth2_users_me")
    )
    assert response.status == 302
    assert "dingmw_session" in set_cookies(response)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(reply(200, "oauth2_user_access_token", corpId="dingother"), id="other-corp"),
        pytest.param(reply(200, "oauth2_user_access_token", corpId=None), id="no-corp"),
    ],
)
def test_allowed_corp_ids_refuses_others_with_403(token: httpx.Response) -> None:
    core = make_core(allowed_corp_ids=frozenset({"dingcorp0001"}))
    response = finish_oauth2(core, token=token, me=reply(200, "oauth2_users_me"))
    assert response.status == 403
    context = page_context(response)
    assert context["reason"] == "corp_not_allowed"
    assert context["params"]["unionid"] == "unionid-zhangsan"
    assert "dingmw_session" not in set_cookies(response)


def test_allowed_users_by_unionid() -> None:
    allowed = make_core(allowed_users=frozenset({"unionid-zhangsan"}))
    ok = finish_oauth2(
        allowed, token=reply(200, "oauth2_user_access_token"), me=reply(200, "oauth2_users_me")
    )
    assert ok.status == 302

    refused = make_core(allowed_users=frozenset({"unionid-someone-else", "boss"}))
    no = finish_oauth2(
        refused, token=reply(200, "oauth2_user_access_token"), me=reply(200, "oauth2_users_me")
    )
    assert no.status == 403
    assert page_context(no)["reason"] == "user_not_allowed"
    assert "dingmw_session" not in set_cookies(no)


def test_scope_asks_for_corpid_when_corp_allow_list_is_set() -> None:
    plain = Browser(make_core())
    plain.start_login("/")
    with_corp = Browser(make_core(allowed_corp_ids=frozenset({"dingcorp0001"})))
    with_corp.start_login("/")

    plain_cfg = page_context(responded(plain.get("/dingtalk/login")))["config"]
    corp_cfg = page_context(responded(with_corp.get("/dingtalk/login")))["config"]
    assert "scope=openid&" in plain_cfg["authorize_url"]
    assert "scope=openid%20corpid&" in corp_cfg["authorize_url"]


def test_callback_redirect_to_a_non_ascii_next_is_a_valid_header() -> None:
    """`next=/中文` is accepted, but `Location` must reach the adapter as an ASCII URI.

    ASGI and WSGI servers encode header values as latin-1; a raw CJK `Location`
    makes the adapter crash with a 500 after a successful login.
    """
    browser, state = begin(make_core(), "/中文")
    flow = exchanged(browser.callback(state))
    next(flow)
    flow.send(True)
    flow.send(reply(200, "oauth2_user_access_token"))
    response = finish(flow, reply(200, "oauth2_users_me"))
    location = header(response, "location")
    assert location is not None
    assert location.isascii(), location
    assert unquote(location) == "/中文"
